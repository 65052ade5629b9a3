"""``pez invert-dataset`` (a prompt for every image of a folder, list or dataset) and ``pez merge`` (shards left
by killed runs -> one results file)."""

from __future__ import annotations

import argparse
import math
import sys

from pez.cli.options import (
    EXIT_INTERRUPTED,
    ProgressBar,
    add_budget_option,
    add_config_options,
    add_device_option,
    add_judge_options,
    check_output_file,
    given_budget,
    given_config,
    quiet_libraries,
)


def add_parsers(sub) -> None:
    from pez.jobs.invert_dataset import INVERT_DATASET_DEFAULTS
    from pez.models import DEFAULT_CLIP
    from pez.optim import METHODS

    p = sub.add_parser("invert-dataset", help="a prompt for every image of a folder, a list, or a dataset (JSONL)")
    p.add_argument("source", metavar="SOURCE", help="a folder (recursive), a .txt/.jsonl list of paths, or hf:NAME")
    p.add_argument("--out", required=True, metavar="FILE", help="results JSONL; images already in it are skipped")
    p.add_argument("--batch", type=int, default=64, metavar="N", help="images optimised together (default 64)")
    p.add_argument("--model", default=DEFAULT_CLIP, help=f"a CLIP model spec ({DEFAULT_CLIP})")
    add_device_option(p)
    p.add_argument("--method", default="pez", choices=sorted(METHODS), help="optimiser (default pez)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_judge_options(p)
    add_budget_option(p, "each image (its batch's targets and setup counted)")
    p.add_argument("--run-budget-seconds", type=float, metavar="S",
                   help="seconds for the whole run (the model load counted), shared out among the images; the "
                        "images not started when they are spent are left for a rerun")  # fmt: skip
    add_config_options(p, INVERT_DATASET_DEFAULTS)
    p.set_defaults(run=run_invert_dataset)

    p = sub.add_parser("merge", help="merge the shards of a sharded invert-dataset run into one results file")
    p.add_argument("out", metavar="FILE", help="the results JSONL that the shards (FILE.shard-*) belong to")
    p.set_defaults(run=run_merge)


def run_invert_dataset(args: argparse.Namespace) -> int:
    import pez

    check_output_file(args.out, "--out")
    config = given_config(args)
    budget = given_budget(args)
    run_budget = None
    if args.run_budget_seconds is not None:
        if not (args.run_budget_seconds > 0 and math.isfinite(args.run_budget_seconds)):
            raise pez.PezError(f"--run-budget-seconds must be a positive, finite number, got {args.run_budget_seconds}")
        run_budget = pez.Budget(seconds=args.run_budget_seconds)
    quiet_libraries()
    with ProgressBar(args.quiet, "images", "img") as bar:
        run = pez.invert_dataset(
            args.source, args.out, model=args.model, batch=args.batch, method=args.method, device=args.device,
            judge=args.judge, callback=bar, budget=budget, run_budget=run_budget, **config,
        )  # fmt: skip
    mean = f", mean score {run.mean_score:.4f}" if run.mean_score is not None else ""
    where = f"shard {run.rank + 1} of {run.world}: " if run.world > 1 else ""
    print(
        f"{where}{run.done} images inverted, {run.skipped} skipped (unreadable), {run.already_done} already done; "
        f"{run.images_per_hour:.0f} images/h{mean}; results in {run.out}",
        file=sys.stderr,
    )
    if run.budget_spent:
        print("the run's budget is spent: a rerun does the images left", file=sys.stderr)
    return EXIT_INTERRUPTED if run.interrupted else 0


def run_merge(args: argparse.Namespace) -> int:
    from pez.jobs.invert_dataset import merge_results

    n = merge_results(args.out)
    print(f"{n} images in {args.out}", file=sys.stderr)
    return 0
