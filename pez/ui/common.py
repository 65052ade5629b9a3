"""What the tabs share: the app's options and context, input checks with one-line messages and the model note (the
result panel of a prompt search is in :mod:`pez.ui.panel`)."""

from __future__ import annotations

import functools
import inspect
import math
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field

import gradio as gr

from pez.errors import PezError
from pez.models import DEFAULT_CLIP, EMBEDDED
from pez.optim.budget import Budget
from pez.ui.estimate import PaceBook
from pez.ui.live import JobRunner, Limits, check_memory
from pez.ui.runs import RunStore

JOBS = "pez-jobs"  # the one concurrency group of every event that runs a job
OFFLINE_CLIP = "ViT-B-32/random"  # a real architecture with random weights: the image tab works offline with it
WEIGHTS_HELP = (
    "pretrained CLIP weights download from the Hugging Face hub on first use: run once with network access, "
    f"give a local weights file as `NAME/PATH` (e.g. `ViT-L-14/weights.bin`), or try the page with `{OFFLINE_CLIP}`"
)


@dataclass
class UIOptions:
    """``pez ui``'s options that shape the page."""

    model: str | None = None  # the default model of the image, text and compare tabs
    device: str = "auto"
    runs: str = "pez-runs"
    concurrency: int = 1
    max_upload_mb: int = 20
    max_files: int = 16
    pipeline: str | None = None  # a diffusers pipeline for the "check by generating" tab
    reference_model: str | None = None  # the CLIP that scores generations there


@dataclass
class Context:
    """Handed to every ``build_*_tab``: the options, the job runner and where runs are saved."""

    options: UIOptions
    runner: JobRunner = field(init=False)
    store: RunStore = field(init=False)
    limits: Limits = field(init=False)  # the largest size of every field, checked on the server
    cache: dict = field(init=False, default_factory=dict)  # models and pipelines loaded once per server
    paces: PaceBook = field(init=False, default_factory=PaceBook)  # seconds per step of earlier runs, for estimates

    def __post_init__(self):
        self.runner = JobRunner(self.options.concurrency)
        self.store = RunStore(self.options.runs)
        self.limits = Limits.for_device(self.options.device)

    def store_for(self, user: str | None) -> RunStore:
        """Where the runs of ``user`` are saved: the runs folder without auth, the user's own folder in it with
        ``--auth`` (:meth:`RunStore.for_user`)."""
        return self.store if user is None else self.store.for_user(user)

    def job_events(self) -> dict:
        """Keyword arguments of every event that runs a job: one queue, ``--concurrency`` jobs at a time."""
        return {"concurrency_limit": self.options.concurrency, "concurrency_id": JOBS}


def uploads() -> list[str]:
    """Where Gradio puts uploads now (``$GRADIO_TEMP_DIR``: the server's own folder once the page is built) and its
    shared default folder."""
    shared = os.path.join(tempfile.gettempdir(), "gradio")
    return list(dict.fromkeys(p for p in (os.environ.get("GRADIO_TEMP_DIR"), shared) if p))


FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9]*(?:-[a-z0-9]+)*)")


def for_the_page(message: str) -> str:
    """A job's one-line message as the page shows it: an uploaded file by its name, not the server's temp path;
    an option by its name, not the command line's flag (``--prompt-len`` -> ``prompt len``)."""
    for folder in uploads():
        message = re.sub(re.escape(folder) + r"/[^\s'\"]*/([^/\s'\"]+)", r"\1", message)
    return FLAG.sub(lambda m: m.group(1).replace("-", " "), message)


def one_line_errors(fn: Callable) -> Callable:
    """Show a PezError (and any other failure, in one line) as a message in the page, never a stack trace; the
    message stays until closed (``duration=None``), and names uploads and options as the page does."""

    def as_gradio_error(e: Exception) -> gr.Error:
        if isinstance(e, gr.Error):
            return e
        if isinstance(e, PezError):
            return gr.Error(for_the_page(str(e)), duration=None, print_exception=False)
        first = str(e).splitlines()[0][:200] if str(e) else ""
        return gr.Error(for_the_page(f"{type(e).__name__}: {first}"), duration=None)

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001
                raise as_gradio_error(e) from None

        return gen

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001
            raise as_gradio_error(e) from None

    return call


def user_of(request: gr.Request | None) -> str | None:
    """The logged-in user of a request (``pez ui --auth``); None without auth."""
    return getattr(request, "username", None)


def session_key(request: gr.Request | None, tab: str) -> str | None:
    """Which job a Stop button stops: the page's session and the tab."""
    session = getattr(request, "session_hash", None)
    return f"{session}:{tab}" if session else None


# -- input checks --------------------------------------------------------------------------------------------------


def Slider(*args, **kwargs) -> gr.Slider:  # noqa: N802  (used as the component it makes)
    """A ``gr.Slider`` whose bounds the server checks (:func:`bounded`), so a value out of range through the API
    gets a message naming the field instead of Gradio's nameless "Value 0 is less than minimum value 1". (Not a
    subclass: Gradio writes a ``.pyi`` stub next to the module of every component subclass.)"""
    slider = gr.Slider(*args, **kwargs)
    slider.preprocess = lambda payload: payload
    return slider


def Number(*args, **kwargs) -> gr.Number:  # noqa: N802  (used as the component it makes)
    """A ``gr.Number`` input whose value reaches the tab as sent, for the tab's own check (:func:`bounded`,
    :func:`real_number`) to name the field: Gradio's own conversion fails on a non-finite number sent through the
    API (``steps=Infinity``, ``seed=1e400``: "cannot convert float infinity to integer", with no message to the
    client) and refuses a value below ``minimum`` without naming the field."""
    number = gr.Number(*args, **kwargs)
    number.preprocess = lambda payload: payload
    return number


def bounded(value, name: str, low: int, high: int) -> int:
    """A whole-number field within ``low``..``high``; one line naming the field otherwise
    ("Restarts must be 1 to 64, got 100000")."""
    if value is None or value == "":
        raise PezError(f"{name} is empty: give a whole number from {low} to {high}")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise PezError(f"{name} must be a whole number from {low} to {high}, got {value!r}") from None
    if not math.isfinite(number) or number != int(number):
        raise PezError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    if not low <= number <= high:
        raise PezError(f"{name} must be {low} to {high}, got {int(number)}")
    return int(number)


def bounded_text(value, name: str, limit: int) -> str:
    """A text field of at most ``limit`` characters, stripped."""
    text = (value or "").strip()
    if len(text) > limit:
        raise PezError(f"{name} must be at most {limit} characters, got {len(text)}")
    return text


def whole_number(value, name: str, minimum: int = 0) -> int:
    """A number field as an int; a one-line error for an empty field, a fraction or a value below ``minimum``."""
    if value is None or value == "":
        raise PezError(f"{name} is empty: give a whole number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PezError(f"{name} must be a whole number, got {value!r}") from None
    if not math.isfinite(number) or number != int(number) or number < minimum:
        raise PezError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(number)


def real_number(value, name: str, minimum: float = 0.0, strict: bool = False) -> float:
    """A number field as a float; a one-line error for an empty or non-finite field or one below ``minimum``
    (or equal to it, when ``strict``)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PezError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < minimum or (strict and number == minimum):
        raise PezError(f"{name} must be a number {'>' if strict else '>='} {minimum:g}, got {value!r}")
    return number


BUDGET_FIELD = "Seconds budget"
BUDGET_LABEL = "Seconds budget (0 or empty: none)"


def seconds_budget(value, limits) -> Budget | None:
    """The Seconds budget field of a search tab as the job's ``budget``: empty or 0 is none; else a positive, finite
    number of seconds, at most ``limits.budget_seconds`` (one line naming the field otherwise)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise PezError(f"{BUDGET_FIELD} must be a number of seconds (0 or empty: none), got {value!r}") from None
    if number == 0:
        return None
    if not (math.isfinite(number) and number > 0):
        raise PezError(f"{BUDGET_FIELD} must be a positive, finite number of seconds (0 or empty: none), got {value!r}")
    if number > limits.budget_seconds:
        raise PezError(f"{BUDGET_FIELD} must be at most {limits.budget_seconds:g} seconds, got {number:g}")
    return Budget(seconds=number)


def budget_note(timings: dict) -> str:
    """What a finished search's status adds when its seconds budget ended it ("" otherwise)."""
    return "; the seconds budget stopped the search" if timings.get("stopped_by") == "budget_seconds" else ""


def lines(text: str | None) -> list[str]:
    """The non-empty lines of a text field (one target, negative or baseline per line)."""
    return [s.strip() for s in (text or "").splitlines() if s.strip()]


def file_paths(files, what: str, options: UIOptions) -> list[str]:
    """Uploaded files as paths, with the count and size caps checked (the server caps uploads too)."""
    if files is None:
        return []
    paths = [str(f) for f in (files if isinstance(files, list | tuple) else [files])]
    if len(paths) > options.max_files:
        raise PezError(f"too many {what}: {len(paths)} files, at most {options.max_files}")
    limit = options.max_upload_mb * 2**20
    for p in paths:
        if os.path.getsize(p) > limit:
            raise PezError(f"{os.path.basename(p)} is over the upload limit of {options.max_upload_mb} MB")
    return paths


def model_spec(value: str | None) -> str:
    spec = (value or "").strip()
    if not spec:
        raise PezError("no model given: choose one (minilm works offline)")
    return spec


def model_problem(spec: str) -> str | None:
    """Why ``spec`` cannot be a model here, found without loading anything (an unknown open_clip name or tag, a
    local folder that does not exist); None when it may load (``pez ui --model`` is checked with it at start-up)."""
    spec = spec.strip()
    if spec in EMBEDDED or os.path.isdir(os.path.expanduser(spec)):
        return None
    for prefix in ("st:", "hf:", "hf-hub:", "local-dir:"):
        if spec.startswith(prefix):
            rest = spec[len(prefix) :]
            local = rest.startswith((os.sep, ".", "~")) or prefix == "local-dir:"
            return f"{spec}: no folder {rest}" if local and not os.path.isdir(os.path.expanduser(rest)) else None
    if spec == "sdxl" or spec.startswith("sdxl:"):
        if spec == "sdxl":
            return None
        towers = tuple(t.strip() for t in spec[len("sdxl:") :].split(","))
        if len(towers) != 2 or not all(towers):
            return f"{spec}: write sdxl:SPEC_L,SPEC_G, two open_clip specs"
        return next((p for p in map(model_problem, towers) if p), None)
    import open_clip

    name, _, tag = spec.partition("/")
    if name not in open_clip.list_models():
        return f"{spec} is not a model pez knows: use minilm, st:NAME, or an open_clip NAME/TAG ({DEFAULT_CLIP})"
    tags = open_clip.list_pretrained_tags_by_model(name)
    if tag and tag != "random" and not os.path.isfile(tag) and tag not in tags:
        return f"{spec}: unknown tag for {name} (known: {', '.join(tags) or 'none'}; or random, or a weights file)"
    return None


def model_note(spec: str | None) -> str:
    """Whether a model spec works offline here, and how to get its weights when it does not."""
    spec = (spec or "").strip()
    if not spec:
        return "Choose a model."
    problem = model_problem(spec)
    if problem:
        return f"`{spec}`{problem[len(spec) :]}."
    if spec in EMBEDDED:
        return f"`{spec}`: {EMBEDDED[spec]}; installed with pez, works offline."
    if spec.startswith("st:"):
        return f"`{spec}`: a sentence-transformers model; a local folder works offline, a hub name needs network."
    if spec.startswith(("hf-hub:", "local-dir:")):
        return f"`{spec}`: passed to open_clip as it is."
    if spec.startswith("hf:"):
        return f"`{spec}`: a transformers CLIP; a local folder works offline, a hub name needs network or its cache."
    if spec == "sdxl" or spec.startswith("sdxl:"):
        from pez.models.sdxl import SDXL_TOWERS

        towers = SDXL_TOWERS if spec == "sdxl" else tuple(t.strip() for t in spec[len("sdxl:") :].split(","))
        return f"`{spec}`: SDXL's two text encoders, scored together. " + " ".join(model_note(t) for t in towers)
    if os.path.isdir(os.path.expanduser(spec)):
        return f"`{spec}`: a local model folder, works offline."
    import open_clip

    name, _, tag = spec.partition("/")
    if tag == "random":
        return f"`{spec}`: random weights, works offline: for trying the page; its prompts mean nothing."
    if tag and os.path.isfile(tag):
        return f"`{spec}`: weights from a local file, works offline."
    tags = open_clip.list_pretrained_tags_by_model(name)
    tag = tag or (tags[0] if tags else "")
    if not tag:
        return f"`{spec}`: {name} has no pretrained weights in open_clip: use {name}/random or {name}/FILE."
    if _clip_weights_cached(name, tag):
        return f"`{spec}`: pretrained weights found in the local cache, works offline."
    return f"`{spec}`: weights not found in the local cache; {WEIGHTS_HELP}."


def _clip_weights_cached(name: str, tag: str) -> bool:
    """Whether open_clip would find the weights of NAME/TAG without a download (Hugging Face cache or URL cache)."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(name, tag)
    hub = cfg.get("hf_hub", "")
    if hub:
        from huggingface_hub import try_to_load_from_cache

        repo, filename = os.path.split(hub)
        names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        names += [n.replace(".bin", ".safetensors") for n in names if n.endswith(".bin")]
        if any(isinstance(try_to_load_from_cache(repo, n), str) for n in names):
            return True
    url = cfg.get("url", "")
    return bool(url) and os.path.isfile(os.path.expanduser(f"~/.cache/clip/{os.path.basename(url)}"))


def search_sizes(ctx, steps, restarts, prompt_len, seed, model, readable) -> tuple[dict, int, int, str]:
    """The image and text tabs' search fields checked against the limits and the free memory (one message naming
    the field): ``(search, prompt_len, seed, model)``, ``search`` holding steps (None: readable mode with the field
    left empty, which sizes its own search) and restarts."""
    limits = ctx.limits
    sized = readable and steps in (None, "")  # readable mode sizes its own refinement when no steps are asked
    search = {"steps": None if sized else bounded(steps, "Steps", 1, limits.steps),
              "restarts": bounded(restarts, "Restarts", 1, limits.restarts)}  # fmt: skip
    prompt_len = bounded(prompt_len, "Prompt length", 1, limits.prompt_len)
    seed = bounded(seed, "Seed", 0, limits.seed)
    model = model_spec(model)
    if not readable:
        check_memory(model, search["restarts"], prompt_len + 2, ctx.options.device, "Restarts", search["restarts"])
    return search, prompt_len, seed, model
