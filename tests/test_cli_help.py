"""Every option of every argparse ``neurodyn`` subcommand has help text (``neurodyn <command> --help``).

Before, ``neurodyn simulate lorenz --help`` listed --n-conditions, --trials-per-condition, --n-neurons and
--train-fraction, and ``neurodyn simulate switching-glm --help`` --n-states, --n-neurons and --n-sequences,
without a word on what they are. The parsers are taken from the commands themselves (through
:func:`neurodyn.cli.main`, as a user reaches them), so a new command or option is checked too.
"""

from __future__ import annotations

import argparse

import pytest

from neurodyn import errors
from neurodyn.cli import COMMANDS, TRAINING, main

#: LightningCLI (jsonargparse) commands: their options come from the classes' signatures, not argparse
NOT_ARGPARSE = TRAINING
#: arguments that make a command build its whole parser (simulate adds the switching-GLM options only
#: when that simulator is named)
ARGV = {"simulate": ["switching-glm"]}
#: options still without help. Compared exactly: an entry goes once its option has help, and no option may
#: join it (tune's --scheduler, --cpus-per-trial and --gpus-per-trial were the last ones)
KNOWN_WITHOUT_HELP: dict[str, set[str]] = {}

ARGPARSE_COMMANDS = [name for name in COMMANDS if name not in NOT_ARGPARSE]


class _Parsed(Exception):
    """Raised instead of parsing: carries the command's parser out of it."""


def _parser_of(command: str, monkeypatch) -> argparse.ArgumentParser:
    def capture(self, args=None, namespace=None):
        raise _Parsed(self)

    # every argparse command uses neurodyn.errors.ArgumentParser (one-line usage errors, exit 2)
    monkeypatch.setattr(errors.ArgumentParser, "parse_known_args", capture)
    with pytest.raises(_Parsed) as parsed:
        main([command, *ARGV.get(command, [])])
    return parsed.value.args[0]


def _options(parser: argparse.ArgumentParser, prog: str):
    """``(prog, action)`` of every argument of ``parser`` and of its subcommands' parsers."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:  # the subcommand's line in the parent's help
                yield prog, choice
            for name, sub in action.choices.items():
                yield from _options(sub, f"{prog} {name}")
        else:
            yield prog, action


def _name(action) -> str:
    return action.option_strings[-1] if action.option_strings else action.dest


def _without_help(parser, prog):
    return {(where, _name(action)) for where, action in _options(parser, prog)
            if not (action.help or "").strip() or action.help == argparse.SUPPRESS}


@pytest.mark.parametrize("command", ARGPARSE_COMMANDS)
def test_every_option_has_help(command, monkeypatch):
    parser = _parser_of(command, monkeypatch)
    options = list(_options(parser, f"neurodyn {command}"))
    assert len(options) > 1, options  # more than -h: the real parser was reached
    missing = {name for _, name in _without_help(parser, f"neurodyn {command}")}
    assert missing == KNOWN_WITHOUT_HELP.get(command, set()), sorted(_without_help(parser, f"neurodyn {command}"))


def test_simulate_parsers_are_complete(monkeypatch):
    """Both simulators' size options are there (the switching-GLM ones come from another module)."""
    parser = _parser_of("simulate", monkeypatch)
    names = {(prog, _name(action)) for prog, action in _options(parser, "simulate")}
    for option in ("--n-conditions", "--trials-per-condition", "--n-neurons", "--n-samples", "--bin-ms",
                   "--train-fraction", "--dt", "--burn-in", "--mean-rate-hz"):
        assert ("simulate lorenz", option) in names
    for option in ("--n-states", "--n-neurons", "--n-sequences", "--n-bins"):
        assert ("simulate switching-glm", option) in names


@pytest.mark.parametrize(("argv", "lines"), [
    (["simulate", "lorenz", "--help"], ["--n-conditions N_CONDITIONS number of conditions",
                                        "--trials-per-condition TRIALS_PER_CONDITION trials per condition",
                                        "(default: 24)", "(default: 65)", "(default: 29)", "(default: 0.8)"]),
    (["simulate", "switching-glm", "--help"], ["--n-states N_STATES number of hidden states",
                                               "--n-sequences N_SEQUENCES number of independent sequences",
                                               "(default: 5)", "(default: 20)", "(default: 50)"]),
])
def test_simulate_help_shows_sizes_with_defaults(argv, lines, capsys):
    assert main(argv) == 0
    out = " ".join(capsys.readouterr().out.split())
    for line in lines:
        assert line in out, (line, out)
    assert "%(default)" not in out


def test_tune_help_explains_scheduler_and_resources(capsys):
    assert main(["tune", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for words in ("pbt: population-based training", "asha: asynchronous successive halving",
                  "CPU cores Ray reserves for each trial", "GPUs Ray reserves for each trial",
                  "(default: pbt)", "(default: 1.0)", "(default: 0.0)"):
        assert words in out, (words, out)
    assert "%(default)" not in out


def test_top_level_commands_have_help():
    assert all(help_.strip() for _, help_ in COMMANDS.values())


@pytest.mark.parametrize("command", ["fit", "validate", "test", "predict"])
def test_training_commands_describe_themselves_and_their_ckpt_path(command, capsys):
    """Lightning's descriptions stopped mid-sentence ("compute predictions. Useful to") and --ckpt_path offered
    "hpc" and "registry", which neurodyn does not resolve ('hpc: ckpt_path: no such checkpoint file')."""
    from neurodyn.cli import main

    assert main([command, "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Useful to" not in out and "make sure you never run on your" not in out
    first = {"fit": "Train a model into a run folder", "validate": "Score a trained model on the split validation",
             "test": "Score a trained model once on the report split", "predict": "Write a model's predictions"}
    assert first[command] in out
    ckpt = out[out.index("--ckpt_path CKPT_PATH ", out.index("options:")):]
    ckpt = ckpt[:ckpt.index("(type:")]
    assert "hpc" not in ckpt and "registry" not in ckpt and "'last'" in ckpt, ckpt


@pytest.mark.parametrize("argv", [[], ["--debug"]])
def test_no_command_is_bad_arguments(argv, capsys):
    """``neurodyn`` alone printed the usage and exited 0; a missing command is bad arguments, as an unknown
    one is: one line on stderr, exit 2. ``neurodyn --help`` still prints the usage and exits 0."""
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1, err
    assert err.startswith("neurodyn: error: no command given (commands: download, prepare,") and "--help" in err


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_top_level_help_prints_the_usage(flag, capsys):
    assert main([flag]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("usage: neurodyn [--debug] <command> [options]") and err == ""
    assert all(f"  {name}  " in out for name in COMMANDS)


def test_top_level_help_of_predict_names_what_a_switching_glm_writes(capsys):
    """``neurodyn --help`` said predict writes 'rates and latents': a switching GLM's file holds neither, but its
    state posteriors, Viterbi paths and couplings (as ``neurodyn predict --help`` says)."""
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    line = " ".join(out[out.index("  predict  "):out.index("  tune  ")].split())
    assert "HMM-GLM" in line and "state posteriors" in line and "couplings" in line, line
