"""What the tabs share: the app's options and context, input checks with one-line messages, the model note, and
the result panel of a prompt search (the prompt with a copy button, its honest score, a live score-against-step
plot, the status line and the result JSON)."""

from __future__ import annotations

import functools
import inspect
import math
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from pez.errors import PezError
from pez.models import DEFAULT_CLIP, EMBEDDED
from pez.ui.estimate import PaceBook
from pez.ui.live import Job, JobRunner, Limits, check_memory
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


UPLOADS = os.environ.get("GRADIO_TEMP_DIR") or os.path.join(tempfile.gettempdir(), "gradio")
FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9]*(?:-[a-z0-9]+)*)")


def for_the_page(message: str) -> str:
    """A job's one-line message as the page shows it: an uploaded file by its name, not the server's temp path;
    an option by its name, not the command line's flag (``--prompt-len`` -> ``prompt len``)."""
    message = re.sub(re.escape(UPLOADS) + r"/[^\s'\"]*/([^/\s'\"]+)", r"\1", message)
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


# -- the result panel of a prompt search -----------------------------------------------------------------------------


@dataclass
class SearchPanel:
    """The outputs of a prompt search, in the order of :attr:`outputs`."""

    prompt: gr.Textbox
    score: gr.Number
    status: gr.Markdown
    plot: gr.LinePlot
    file: gr.File

    @property
    def outputs(self) -> list:
        return [self.prompt, self.score, self.status, self.plot, self.file]

    def live(self, job: Job, score_name: str = "score") -> tuple:
        """The outputs while the job runs: best prompt so far, its honest score, the plot."""
        p = job.progress
        estimate = f" {job.estimate}" if job.estimate else ""
        if p is None:
            waiting = "Loading the model and the targets ..." if job.running else "Waiting for a running job to end ..."
            return ("", None, "Stopping ..." if job.stopping else waiting + estimate, None, None)
        stop = " Stopping after this step ..." if job.stopping else ""
        left = f" (about {p.elapsed / p.step * (p.steps - p.step):.0f} s left)" if 0 < p.step < p.steps else ""
        status = f"Step {p.step} / {p.steps}, {p.elapsed:.1f} s{left}: best honest {score_name} {p.best_score:.4f}."
        status += stop + estimate
        return (p.best_text, round(p.best_score, 4), status, score_plot(job.points), None)

    def done(self, res, path, job: Job) -> tuple:
        """The outputs of a finished search (``res`` a :class:`pez.PromptResult`)."""
        return (res.text, round(res.score, 4), search_status(res, path), score_plot(job.points), str(path))

    def stream(self, job: Job, score_name: str = "score"):
        """The outputs while ``job`` runs, then those of its result ``(PromptResult, path)``; its failure as a
        one-line error."""
        for _ in job.watch():
            if not job.finished.is_set():
                yield self.live(job, score_name)
        if job.error:
            raise PezError(job.error)
        res, path = job.result
        yield self.done(res, path, job)


def stop_job(ctx: Context, request: gr.Request | None, tab: str, stopping: str) -> str:
    """The Stop button of ``tab``: ask the session's job to stop; the line the tab's status shows at once."""
    if ctx.runner.stop(session_key(request, tab), user_of(request)):
        return f"Stopping ... {stopping}"
    return "No job of this page is running here (after a reload, find it in the Runs tab)."


def stop_search(ctx: Context, request: gr.Request | None, tab: str) -> str:
    """The Stop button of a search tab: the search ends after the step under way and keeps its best prompt."""
    return stop_job(ctx, request, tab, "the search ends after the step under way and keeps the best prompt so far.")


def search_panel(tab: str, score_label: str = "honest score") -> SearchPanel:
    """The outputs of a search in ``tab``; the prompt and the score have the element ids ``TAB-prompt``,
    ``TAB-score`` (for browser tests)."""
    prompt = gr.Textbox(label="Prompt", buttons=["copy"], interactive=False, lines=2, elem_id=f"{tab}-prompt")
    score = gr.Number(label=score_label, interactive=False, precision=4, elem_id=f"{tab}-score")
    status = gr.Markdown("", elem_classes=["pez-status"])
    plot = gr.LinePlot(None, x="step", y="score", x_title="step", y_title="best honest score", height=240)
    file = gr.File(label="Result JSON (the file the CLI's --out writes)", interactive=False)
    return SearchPanel(prompt, score, status, plot, file)


def score_plot(points: Sequence[tuple[int, float]]):
    import pandas as pd

    return pd.DataFrame({"step": [s for s, _ in points], "score": [v for _, v in points]})


def search_status(res, path) -> str:
    """One line about a finished search: score, steps, time, re-tokenisation, interruption, where it is saved."""
    t = res.timings
    line = f"{res.score_name} {res.score:.4f} after {res.steps_done} steps in {t.get('total_s', 0.0):.1f} s"
    if res.retokenized:
        line += f"; the optimised ids scored {res.internal_score:.4f} before re-tokenisation"
    if res.interrupted:
        line += "; stopped: the best prompt so far"
    return f"{line}. Saved in the runs folder as `{Path(path).name}`."


def search_sizes(ctx, steps, restarts, prompt_len, seed, model, readable) -> tuple[dict, int, int, str]:
    """The image and text tabs' search fields checked against the limits and the free memory (one message naming
    the field): ``(search, prompt_len, seed, model)``, ``search`` holding steps and restarts."""
    limits = ctx.limits
    search = {"steps": bounded(steps, "Steps", 1, limits.steps),
              "restarts": bounded(restarts, "Restarts", 1, limits.restarts)}  # fmt: skip
    prompt_len = bounded(prompt_len, "Prompt length", 1, limits.prompt_len)
    seed = bounded(seed, "Seed", 0, limits.seed)
    model = model_spec(model)
    if not readable:
        check_memory(model, search["restarts"], prompt_len + 2, ctx.options.device, "Restarts", search["restarts"])
    return search, prompt_len, seed, model
