"""The ``pez`` command line: a thin layer over :mod:`pez.jobs`, one file per command.

Method options are generated from the config dataclass fields (names, types, help), so the CLI and the Python
API cannot drift apart. Bad input prints one line and exits with code 2; Ctrl-C keeps the best prompt so far.
"""

from __future__ import annotations

import argparse
import logging
import sys

from pez.cli.options import EXIT_INTERRUPTED, EXIT_USAGE, Parser
from pez.errors import PezError


def build_parser() -> argparse.ArgumentParser:
    from pez.cli import compare, compress, discover, evaluate, evaluate_images, gist, invert, invert_dataset, models, ui

    parser = Parser(prog="pez", description="Find readable hard prompts by gradient (PEZ) and compare optimisers.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    invert.add_parser(sub)
    invert_dataset.add_parsers(sub)  # invert-dataset and merge
    evaluate_images.add_parser(sub)
    discover.add_parser(sub)
    compress.add_parser(sub)
    evaluate.add_parser(sub)
    compare.add_parser(sub)
    models.add_parser(sub)
    ui.add_parser(sub)
    gist.add_parser(sub)  # train, compress, generate, evaluate, compare
    return parser


class PezLines(logging.Formatter):
    """A log line as pez says it: ``pez: warning: ...``, like its ``pez: error: ...`` lines."""

    def format(self, record: logging.LogRecord) -> str:
        return f"pez: {record.levelname.lower()}: {record.getMessage()}"


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 bad input, 130 interrupted)."""
    # pez's own warnings are shown; other libraries' log lines would repeat what pez's one-line errors say
    lines = logging.StreamHandler()
    lines.setFormatter(PezLines())
    logging.basicConfig(level=logging.CRITICAL, handlers=[lines])  # (a no-op where the root has handlers)
    logging.getLogger("pez").setLevel(logging.WARNING)
    from pez.interrupts import on_signal

    try:
        args = build_parser().parse_args(argv)
        with on_signal("return"):  # a Ctrl-C or SIGTERM ends the job with its result: printed and saved here
            return args.run(args)
    except PezError as e:
        print(f"pez: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("pez: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
