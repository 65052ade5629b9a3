"""``pez models``: the embedded models and every open_clip NAME/TAG pair."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list model specs (embedded models and open_clip NAME/TAG pairs)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pez.models import EMBEDDED, list_models

    for spec in list_models():
        print(f"{spec}\t{EMBEDDED[spec]}" if spec in EMBEDDED else spec)
    return 0
