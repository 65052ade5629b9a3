"""``pez compress``: a long instruction -> a few hard tokens with the same effect on the model (KL)."""

from __future__ import annotations

import argparse

from pez.cli.discover import add_readable_option, run_search
from pez.cli.options import add_budget_option, add_lm_options, add_search_options, add_task_options
from pez.errors import PezError


def add_parser(sub) -> None:
    from pez.jobs.lm import LM_DEFAULTS

    p = sub.add_parser("compress", help="a long instruction -> a few hard tokens with the same effect (KL)")
    add_lm_options(p)
    p.add_argument("--instruction", required=True, metavar="TEXT", help="the long instruction to compress")
    add_task_options(p, "{prompt}\n{text}", None, data_default=None)
    p.add_argument("--inputs", type=int, default=48, metavar="N", help="training inputs (default 48)")
    p.add_argument("--test-size", type=int, default=200, metavar="N", help="held-out examples for accuracy (200)")
    add_readable_option(p)
    add_search_options(p, defaults=LM_DEFAULTS)
    add_budget_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pez import compress

    if args.labels and not args.data:
        raise PezError("--labels needs --data with labelled examples to score the task")
    return run_search(
        compress,
        args,
        instruction=args.instruction,
        data=args.data,
        template=args.template,
        labels=args.labels,
        n_inputs=args.inputs,
        test_size=args.test_size,
    )
