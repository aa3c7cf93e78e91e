"""``KEY=VALUE`` command-line overrides shared by the benchmark scripts."""

from __future__ import annotations

import argparse
import json


def key_values(pairs: list[str], parser: argparse.ArgumentParser, option: str) -> dict:
    """``["lr=2e-3", "lr_schedule=cosine"]`` -> ``{"lr": 0.002, "lr_schedule": "cosine"}``.

    A value that parses as JSON (numbers, true/false/null, lists) is taken as such, anything else as a
    string; a pair without ``=`` stops the script through ``parser.error`` (one line, exit 2).

    >>> key_values(["a=1", "b=none", "c=true"], argparse.ArgumentParser(), "--model")
    {'a': 1, 'b': 'none', 'c': True}
    """
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            parser.error(f"argument {option}: expected KEY=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
