"""The ``pez`` command line: a thin layer over :mod:`pez.api`.

Method options are generated from the config dataclass fields (names, types, help), so the CLI and the Python
API cannot drift apart. Bad input prints one line and exits with code 2; Ctrl-C keeps the best prompt so far.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import typing

from pez.errors import PezError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + message
        raise PezError(f"{message} (see `{self.prog} --help`)")


def _batch_size(text: str) -> int | None:
    if text == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'all', got {text!r}") from None


def add_config_options(parser: argparse.ArgumentParser, config_classes) -> None:
    """One option per config field (union over the classes); unset options keep the dataclass defaults."""
    seen = set()
    for cls in config_classes:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in seen:
                continue
            seen.add(f.name)
            flag = "--" + f.name.replace("_", "-")
            kind = hints[f.name]
            kw = {"dest": f.name, "default": argparse.SUPPRESS, "help": f"{f.metadata.get('help', '')} "}
            kw["help"] += f"(default: {f.default})" if f.default is not dataclasses.MISSING else ""
            if kind is bool:
                parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
            elif f.name == "batch_size":
                parser.add_argument(flag, type=_batch_size, metavar="N|all", **kw)
            elif typing.get_origin(kind) is tuple:
                parser.add_argument(flag, nargs="+", metavar="WORD", **kw)
            else:
                base = next((t for t in typing.get_args(kind) if t is not type(None)), kind)
                parser.add_argument(flag, type=base, metavar=f.name.split("_")[-1].upper(), **kw)


def build_parser() -> argparse.ArgumentParser:
    from pez.models import DEFAULT_CLIP
    from pez.optim import METHODS

    parser = _Parser(prog="pez", description="Find readable hard prompts by gradient (PEZ) and compare optimisers.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    inv = sub.add_parser("invert", help="images and/or texts -> a short readable prompt")
    inv.add_argument("images", nargs="*", metavar="IMAGE", help="target image files (CLIP models)")
    inv.add_argument("--text", action="append", default=[], metavar="T", help="target text (repeatable)")
    inv.add_argument("--negative-text", action="append", default=[], metavar="T", help="text to move away from")
    inv.add_argument("--negative-image", action="append", default=[], metavar="F", help="image to move away from")
    inv.add_argument("--negative-weight", type=float, default=1.0, help="weight of each negative target (default 1)")
    inv.add_argument(
        "--model", default=DEFAULT_CLIP, help=f"minilm, st:NAME, or open_clip NAME/TAG (default {DEFAULT_CLIP})"
    )
    inv.add_argument("--method", default="pez", choices=sorted(METHODS), help="optimiser (default pez)")
    inv.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    inv.add_argument("--out", metavar="FILE", help="write the result as JSON")
    inv.add_argument("--checkpoint", metavar="FILE", help="save the optimiser state every --checkpoint-every steps")
    inv.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    inv.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_options(inv, [cls.config_class for cls in METHODS.values()])

    sub.add_parser("models", help="list model specs (embedded models and open_clip NAME/TAG pairs)")
    return parser


def _progress_bar(total: int, quiet: bool):
    if quiet:
        return None, None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc="pez", unit="step", dynamic_ncols=True, file=sys.stderr)

    def callback(p):
        bar.update(p.step - bar.n)
        bar.set_postfix_str(f"best {p.best_score:.4f} | {p.best_text[:60]}")

    return bar, callback


def _quiet_libraries() -> None:
    """Keep the terminal for pez's own progress: no weight-loading bars from transformers."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def _invert(args: argparse.Namespace) -> int:
    import pez
    from pez.optim import METHODS

    if args.resume and not args.checkpoint:
        raise PezError("--resume needs --checkpoint FILE")
    method = METHODS[args.method]
    names = {f.name for f in dataclasses.fields(method.config_class)}
    every = {f.name for cls in METHODS.values() for f in dataclasses.fields(cls.config_class)}
    given = {k: v for k, v in vars(args).items() if k in every}
    for k in given:
        if k not in names:
            raise PezError(f"--{k.replace('_', '-')} does not apply to method {args.method}")
    config = method.config_class(**given)
    _quiet_libraries()
    obj = pez.make_objective(  # checks targets and image files before the (slow) model load
        args.model, args.images, args.text, args.negative_image, args.negative_text, args.negative_weight, args.device
    )
    optimizer = method(obj, config)  # validates the options against the model before any progress is shown
    bar, callback = _progress_bar(config.steps, args.quiet)
    try:
        (res,) = optimizer.run(callback=callback, checkpoint=args.checkpoint, resume=args.resume)
    finally:
        if bar is not None:
            bar.close()
    if args.out:
        res.save(args.out)
    print(res.text)
    note = f"; the optimised ids scored {res.internal_score:.4f} before re-tokenisation" if res.retokenized else ""
    print(f"{res.score_name} {res.score:.4f}{note}", file=sys.stderr)
    if res.interrupted:
        where = f"; saved to {args.out}" if args.out else ""
        print(f"interrupted after step {res.steps_done}: best prompt so far{where}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _models(args: argparse.Namespace) -> int:
    from pez.models import EMBEDDED, list_models

    for spec in list_models():
        print(f"{spec}\t{EMBEDDED[spec]}" if spec in EMBEDDED else spec)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 bad input, 130 interrupted)."""
    # pez's own warnings are shown; other libraries' log lines would repeat what pez's one-line errors say
    logging.basicConfig(level=logging.CRITICAL, format="%(levelname)s: %(message)s")
    logging.getLogger("pez").setLevel(logging.WARNING)
    try:
        args = build_parser().parse_args(argv)
        return {"invert": _invert, "models": _models}[args.command](args)
    except PezError as e:
        print(f"pez: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("pez: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
