"""``KEY=VALUE`` command-line overrides shared by the benchmark scripts."""

from __future__ import annotations

import argparse
import json


def key_values(pairs: list[str], parser: argparse.ArgumentParser, option: str) -> dict:
    """``["lr=2e-3", "lr_schedule=cosine"]`` -> ``{"lr": 0.002, "lr_schedule": "cosine"}``.

    A value that parses as JSON (numbers, true/false/null, lists) is taken as such, anything else as a
    string; a pair without ``=``, or a key given twice, stops the script through ``parser.error`` (one line,
    exit 2).

    >>> key_values(["a=1", "b=none", "c=true"], argparse.ArgumentParser(), "--model")
    {'a': 1, 'b': 'none', 'c': True}
    """
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            parser.error(f"argument {option}: expected KEY=VALUE, got {pair!r}")
        if key in out:  # which one would hold is a guess the run should not make
            parser.error(f"argument {option}: {key} given twice")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


#: the arguments of LangevinFlowModule that are no optimiser setting (the data's sizes, the model's config)
_MODULE_SIZES = ("self", "n_heldin", "n_neurons", "n_obs_bins", "n_fwd_bins", "config")


def check_langevinflow_settings(model: dict, opt: dict, parser: argparse.ArgumentParser,
                                model_option: str = "--model", opt_option: str = "--opt") -> None:
    """Build ``LangevinFlowConfig(**model)`` and a tiny ``LangevinFlowModule(..., **opt)`` before any work: an
    unknown field or a bad value given through ``--model`` / ``--opt`` stops the script through ``parser.error``
    (one line naming the option, exit 2) -- not a traceback from inside the first fit, after the data were made.
    ``model`` / ``opt``: the settings a run would use (the recipe's with the overrides)."""
    import dataclasses
    import inspect

    from neurodyn.errors import InputError
    from neurodyn.models.langevinflow import LangevinFlowConfig
    from neurodyn.training.module import LangevinFlowModule

    fields = {f.name for f in dataclasses.fields(LangevinFlowConfig) if f.init}
    unknown = sorted(set(model) - fields)
    if unknown:
        parser.error(f"argument {model_option}: unknown field {unknown[0]!r} of LangevinFlowConfig")
    settings = set(inspect.signature(LangevinFlowModule.__init__).parameters) - set(_MODULE_SIZES)
    unknown = sorted(set(opt) - settings)
    if unknown:
        parser.error(f"argument {opt_option}: unknown setting {unknown[0]!r} (settings: {', '.join(sorted(settings))})")
    try:
        config = LangevinFlowConfig(**model)
    except InputError as err:
        parser.error(f"argument {model_option}: {err}")
    try:
        LangevinFlowModule(2, 3, 2, 0, config=config, **opt)
    except InputError as err:
        parser.error(f"argument {opt_option}: {err}")
