"""``pez invert-dataset`` (a prompt for every image of a folder, list or dataset) and ``pez merge`` (shards left
by killed runs -> one results file)."""

from __future__ import annotations

import argparse
import sys

from pez.cli.options import (
    EXIT_INTERRUPTED,
    add_config_options,
    add_device_option,
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
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if args.quiet:
            return
        if bar is None:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, desc="images", unit="img", dynamic_ncols=True, file=sys.stderr)
        bar.update(done - bar.n)
        rate = bar.format_dict.get("rate") or 0.0
        bar.set_postfix_str(f"{3600 * rate:.0f} images/h")

    try:
        run = pez.invert_dataset(
            args.source, args.out, model=args.model, batch=args.batch, method=args.method, device=args.device,
            callback=progress, **config,
        )  # fmt: skip
    finally:
        if bar is not None:
            bar.close()
    where = f"shard {run.rank + 1} of {run.world}: " if run.world > 1 else ""
    print(
        f"{where}{run.done} images inverted, {run.skipped} skipped (unreadable), {run.already_done} already done; "
        f"{run.images_per_hour:.0f} images/h; results in {run.out}",
        file=sys.stderr,
    )
    return EXIT_INTERRUPTED if run.interrupted else 0


def run_merge(args: argparse.Namespace) -> int:
    from pez.jobs.folders import merge_results

    n = merge_results(args.out)
    print(f"{n} images in {args.out}", file=sys.stderr)
    return 0
