"""``pez invert``: images and/or texts -> a short readable prompt."""

from __future__ import annotations

import argparse
import os
import sys
import time

from pez.cli.options import (
    EXIT_INTERRUPTED,
    ProgressBar,
    add_budget_option,
    add_device_option,
    add_search_options,
    add_target_options,
    given_budget,
    given_config,
    quiet_libraries,
    stop_line,
)


def add_parser(sub) -> None:
    from pez.jobs.invert import INVERT_DEFAULTS
    from pez.models import DEFAULT_CLIP

    p = sub.add_parser("invert", help="images and/or texts -> a short readable prompt")
    add_target_options(p)
    p.add_argument("--model", default=DEFAULT_CLIP, help=f"minilm, st:NAME, or open_clip NAME/TAG ({DEFAULT_CLIP})")
    add_device_option(p)
    what = "readable mode: VGD's fluent text refined by gradient and LM swaps under the LM prior"
    p.add_argument("--readable", action=argparse.BooleanOptionalAction, default=False, help=what)
    add_search_options(p, fluency=False, defaults=INVERT_DEFAULTS)
    add_budget_option(p)
    p.add_argument("--polish", type=float, metavar="SHARE",
                   help="share of the search's time for exact swaps from PEZ's best prompt at the end (0: off; "
                        "default: 0.5 with --budget-seconds, off without)")  # fmt: skip
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    startup = process_age()  # the interpreter and pez's command line, before any work
    t0 = time.perf_counter()
    import torch  # noqa: F401  (timed here: the first heavy import)

    import pez

    imports = time.perf_counter() - t0
    config = given_config(args)
    budget = given_budget(args)
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
            judge=args.judge,
            readable=args.readable,
            budget=budget,
            polish=args.polish,
            **config,
        )
    print(res.text)
    note = f"; the optimised ids scored {res.internal_score:.4f} before re-tokenisation" if res.retokenized else ""
    print(f"{res.score_name} {res.score:.4f}{note}", file=sys.stderr)
    print(readability_line(res.readability), file=sys.stderr)
    if not args.quiet:
        print(time_split(res.timings, startup, imports), file=sys.stderr)
    stopped = stop_line(res.timings, budget)
    if stopped:
        print(stopped, file=sys.stderr)
    short = short_line(res)
    if short:
        print(short, file=sys.stderr)
    if args.out:
        res.save(args.out)
    if res.interrupted:
        where = f"; saved to {args.out}" if args.out else ""
        print(f"interrupted after step {res.steps_done}: best prompt so far{where}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def short_line(res) -> str | None:
    """Why a method that writes its own length (compose, readable mode) returned fewer tokens than asked (None when
    it did not)."""
    asked, got = res.config.get("prompt_len"), len(res.text_ids)
    if res.method != "compose" or not asked or got >= asked:
        return None
    return (
        f"{got} of the {asked} tokens asked: compose stops adding words when no word raises score + prior "
        f"(--prompt-len is its most, not its length)"
    )


def readability_line(r: dict) -> str:
    """The readability of the printed prompt, on one line."""
    ppl = r.get("perplexity")
    judged = f"perplexity {ppl:,.0f} under {r['judge']}" if ppl is not None else "no judge"
    if r.get("judge_is_prior"):
        judged += " (the judge also wrote it: flattering)"
    return (f"readability: {judged}; {r.get('dictionary_share', 0):.0%} dictionary words, "
            f"{r.get('repeated_share', 0):.0%} repeated")  # fmt: skip


def process_age() -> float | None:
    """Seconds since this process started (Linux /proc), or None where that is not known."""
    try:
        with open("/proc/self/stat") as f:
            start = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22: start time in clock ticks after boot
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(uptime - start / os.sysconf("SC_CLK_TCK"), 0.0)
    except (OSError, ValueError, IndexError):
        return None


def time_split(t: dict, startup: float | None, imports: float) -> str:
    """Where the run's time went, on one line: start-up and imports, model load, targets, set-up, search."""
    first = f"start-up {startup + imports:.1f} s" if startup is not None else f"imports {imports:.1f} s"
    search = f"set-up {t['setup_s']:.1f} s, search {t['loop_s']:.1f} s ({t['steps_run']} steps)"
    if "polish_s" in t:  # PEZ, then the polish
        search = (f"search {t['total_s']:.1f} s (PEZ {t['steps_run']} steps {t['pez_s']:.1f} s, then the polish "
                  f"{t['polish_steps']} steps {t['polish_s']:.1f} s)")  # fmt: skip
    elif "pez_s" in t:  # readable mode: both stages, each with its own set-up
        search = (f"search {t['pez_s'] + t['compose_s']:.1f} s (PEZ {t['pez_steps']} steps {t['pez_s']:.1f} s, then "
                  f"compose {t['steps_run']} rounds {t['compose_s']:.1f} s)")  # fmt: skip
    return f"time: {first}, model {t.get('model_load_s', 0):.1f} s, targets {t.get('targets_s', 0):.1f} s, {search}"
