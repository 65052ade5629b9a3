"""``pez discover`` (a task prompt for a causal LM) and ``pez compress`` (a long instruction -> a few tokens)."""

from __future__ import annotations

import argparse
import sys

from pez.cli.options import (
    EXIT_INTERRUPTED,
    ProgressBar,
    add_lm_options,
    add_search_options,
    add_task_options,
    given_config,
    quiet_libraries,
)
from pez.errors import PezError


def add_parsers(sub) -> None:
    p = sub.add_parser("discover", help="a task prompt for a causal LM: classification data -> a readable prompt")
    add_lm_options(p)
    add_task_options(p, "{prompt} {text} It was", "negative,positive")
    p.add_argument("--eval-data", metavar="D", help="dev data that picks the best prompt (default: split of --data)")
    p.add_argument("--test-data", metavar="D", help="held-out data for the report (default: split of --data)")
    p.add_argument("--baseline-prompt", action="append", default=[], metavar="P", help="hand-written prompt to report")
    p.add_argument("--dev-size", type=int, default=64, metavar="N", help="dev examples used in the search (64)")
    p.add_argument("--test-size", type=int, metavar="N", help="cap on held-out examples (default all)")
    p.add_argument("--train-size", type=int, metavar="N", help="cap on training examples (default all)")
    add_search_options(p)
    p.set_defaults(run=run_discover)

    p = sub.add_parser("compress", help="a long instruction -> a few hard tokens with the same effect (KL)")
    add_lm_options(p)
    p.add_argument("--instruction", required=True, metavar="TEXT", help="the long instruction to compress")
    add_task_options(p, "{prompt}\n{text}", None, data_default=None)
    p.add_argument("--inputs", type=int, default=48, metavar="N", help="training inputs (default 48)")
    p.add_argument("--test-size", type=int, default=200, metavar="N", help="held-out examples for accuracy (200)")
    add_search_options(p)
    p.set_defaults(run=run_compress)


def _run(job, args: argparse.Namespace, **kwargs) -> int:
    """Shared by discover and compress: progress bar, report, JSON, exit code."""
    config = given_config(args)
    quiet_libraries()
    with ProgressBar(args.quiet) as bar:
        report = job(
            model=args.model,
            method=args.method,
            fluency=args.fluency,
            device=args.device,
            callback=bar,
            checkpoint=args.checkpoint,
            resume=args.resume,
            **kwargs,
            **config,
        )
    print(report.prompt)
    print(report.summary(), file=sys.stderr)
    if args.out:
        report.save(args.out)
    if report.interrupted:
        where = f"; saved to {args.out}" if args.out else ""
        print(f"interrupted: best prompt so far{where}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def run_discover(args: argparse.Namespace) -> int:
    from pez import discover

    return _run(
        discover,
        args,
        data=args.data,
        template=args.template,
        labels=args.labels,
        eval_data=args.eval_data,
        test_data=args.test_data,
        baseline_prompts=args.baseline_prompt,
        dev_size=args.dev_size,
        test_size=args.test_size,
        train_size=args.train_size,
    )


def run_compress(args: argparse.Namespace) -> int:
    from pez import compress

    if args.labels and not args.data:
        raise PezError("--labels needs --data with labelled examples to score the task")
    return _run(
        compress,
        args,
        instruction=args.instruction,
        data=args.data,
        template=args.template,
        labels=args.labels,
        n_inputs=args.inputs,
        test_size=args.test_size,
    )
