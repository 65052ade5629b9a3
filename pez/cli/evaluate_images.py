"""``pez evaluate-images``: check prompts by generating images with a diffusers pipeline and scoring them against
their targets under a reference CLIP (the paper's protocol)."""

from __future__ import annotations

import argparse
import sys

from pez.cli.options import EXIT_INTERRUPTED, ProgressBar, add_device_option, quiet_libraries
from pez.errors import PezError


def add_parser(sub) -> None:
    from pez.generation.scoring import DEFAULT_REFERENCE

    p = sub.add_parser("evaluate-images", help="generate from found prompts and score them against their targets")
    p.add_argument("results", nargs="+", metavar="RESULTS", help="pez invert JSON / invert-dataset JSONL (a row each)")
    p.add_argument("--pipeline", metavar="P", help="diffusers pipeline: hub name or folder (default: by the model)")
    p.add_argument("--reference-model", default=DEFAULT_REFERENCE, metavar="M", help="open_clip spec that scores")
    p.add_argument("--generations", type=int, default=4, metavar="N", help="images per prompt (default 4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first generation (default 0)")
    p.add_argument("--inference-steps", type=int, default=50, metavar="N", help="denoising steps (default 50)")
    p.add_argument("--guidance", type=float, default=7.5, metavar="G", help="classifier-free guidance (7.5)")
    p.add_argument("--model", metavar="SPEC", help="check that every result was found with this model")
    p.add_argument("--out", required=True, metavar="DIR", help="report.json, report.md, contact_sheet.png, images/")
    add_device_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import pez
    from pez.cli.options import check_output_dir

    check_output_dir(args.out, "--out")
    if args.inference_steps < 1:
        raise PezError(f"--inference-steps must be positive, got {args.inference_steps}")
    quiet_libraries()
    with ProgressBar(args.quiet, "prompts", "prompt") as bar:
        report = pez.evaluate_images(
            args.results, args.out, pipeline=args.pipeline, reference_model=args.reference_model,
            generations=args.generations, seed=args.seed, steps=args.inference_steps, guidance=args.guidance,
            model=args.model, device=args.device, callback=bar,
        )  # fmt: skip
    print(report.to_markdown())
    reused = f" ({report.reused} kept from an earlier run)" if report.reused else ""
    print(f"report, contact sheet and images in {args.out}{reused}", file=sys.stderr)
    if report.interrupted:
        print(f"interrupted: the checks done are kept in {args.out}; the same command continues", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0
