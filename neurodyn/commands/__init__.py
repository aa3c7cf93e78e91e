"""The argparse commands of ``neurodyn``: one module per command (parser + handler).

Each module exposes ``cli_main(argv: list[str]) -> int``; :mod:`neurodyn.cli` registers them and wraps
them all in one error handler.
"""
