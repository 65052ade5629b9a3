"""``pez invert``: images and/or texts -> a short readable prompt."""

from __future__ import annotations

import argparse
import sys

from pez.cli.options import (
    EXIT_INTERRUPTED,
    ProgressBar,
    add_device_option,
    add_search_options,
    add_target_options,
    given_config,
    quiet_libraries,
)


def add_parser(sub) -> None:
    from pez.models import DEFAULT_CLIP

    p = sub.add_parser("invert", help="images and/or texts -> a short readable prompt")
    add_target_options(p)
    p.add_argument("--model", default=DEFAULT_CLIP, help=f"minilm, st:NAME, or open_clip NAME/TAG ({DEFAULT_CLIP})")
    add_device_option(p)
    add_search_options(p, fluency=False)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import pez

    config = given_config(args)
    quiet_libraries()
    with ProgressBar(args.quiet) as bar:
        res = pez.invert(
            args.images,
            args.text,
            args.negative_image,
            args.negative_text,
            model=args.model,
            method=args.method,
            device=args.device,
            negative_weight=args.negative_weight,
            callback=bar,
            checkpoint=args.checkpoint,
            resume=args.resume,
            **config,
        )
    print(res.text)
    note = f"; the optimised ids scored {res.internal_score:.4f} before re-tokenisation" if res.retokenized else ""
    print(f"{res.score_name} {res.score:.4f}{note}", file=sys.stderr)
    if args.out:
        res.save(args.out)
    if res.interrupted:
        where = f"; saved to {args.out}" if args.out else ""
        print(f"interrupted after step {res.steps_done}: best prompt so far{where}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0
