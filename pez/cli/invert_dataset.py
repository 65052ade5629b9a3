"""``pez invert-dataset`` (a prompt for every image of a folder, list or dataset) and ``pez merge`` (shards left
by killed runs -> one results file)."""

from __future__ import annotations

import argparse
import sys

from pez.cli.options import (
    EXIT_INTERRUPTED,
    ProgressBar,
    add_config_options,
    add_device_option,
    add_judge_options,
    check_output_file,
    given_config,
    quiet_libraries,
)


def add_parsers(sub) -> None:
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
    add_config_options(p)
    p.set_defaults(run=run_invert_dataset)

    p = sub.add_parser("merge", help="merge the shards of a sharded invert-dataset run into one results file")
    p.add_argument("out", metavar="FILE", help="the results JSONL that the shards (FILE.shard-*) belong to")
    p.set_defaults(run=run_merge)


def run_invert_dataset(args: argparse.Namespace) -> int:
    import pez

    check_output_file(args.out, "--out")
    config = given_config(args)
    quiet_libraries()
    with ProgressBar(args.quiet, "images", "img", per_hour="images") as bar:
        run = pez.invert_dataset(
            args.source, args.out, model=args.model, batch=args.batch, method=args.method, device=args.device,
            judge=args.judge, callback=bar, **config,
        )  # fmt: skip
    where = f"shard {run.rank + 1} of {run.world}: " if run.world > 1 else ""
    print(
        f"{where}{run.done} images inverted, {run.skipped} skipped (unreadable), {run.already_done} already done; "
        f"{run.images_per_hour:.0f} images/h; results in {run.out}",
        file=sys.stderr,
    )
    return EXIT_INTERRUPTED if run.interrupted else 0


def run_merge(args: argparse.Namespace) -> int:
    from pez.jobs.invert_dataset import merge_results

    n = merge_results(args.out)
    print(f"{n} images in {args.out}", file=sys.stderr)
    return 0
