"""Jobs in worker threads, with live progress and a Stop button: the web UI's side of pez's search callbacks.

A :class:`Job` runs one call of a public :mod:`pez.jobs` function in a thread. Its :meth:`Job.callback` (the
search's ``callback``) records each :class:`pez.Progress`; once Stop was pressed it raises KeyboardInterrupt, which
the search loop takes between steps as an interrupt: it returns the best prompt so far, marked ``interrupted``.
The page follows the job from a generator (:meth:`Job.watch`); the job does not depend on the page, so a reload or
a closed tab does not end it, and its result is saved all the same; the Runs tab lists the running jobs
(:meth:`JobRunner.running`) so a reloaded page can watch and stop its job. At most ``concurrency`` jobs run at once:
the Gradio queue's limit, held here too because a job can outlive the request that started it.

:class:`Limits` bounds every size a page can ask for (sized to the machine), and :func:`search_bytes` estimates
the memory of a search before it starts, so no field of the page can make the server run out of memory.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pez.errors import PezError

log = logging.getLogger(__name__)


class Job:
    """One job in a worker thread: its progress, its result or one-line error, and a stop flag.

    Args:
        work: called in the thread with the job itself (for :meth:`callback`, :meth:`note`, :attr:`stopping`);
            returns the result.
        slots: the semaphore that bounds how many jobs run at once.
        kind: what the Runs tab calls it (``distill``, ``invert``, ...).
        owner: the user who started it (``pez ui --auth``; None without auth): only they see, watch and stop it.
    """

    def __init__(self, work: Callable[[Job], Any], slots: threading.Semaphore, kind: str = "job",
                 owner: str | None = None):  # fmt: skip
        self.work, self.slots, self.kind, self.owner = work, slots, kind, owner
        self.id = secrets.token_hex(4)  # what the Runs tab shows, to watch or stop the job from any page
        self.started = time.time()
        self.points: list[tuple[int, float]] = []  # (step, best honest score) at every sync point
        self.progress = None  # the latest pez.Progress
        self.notes: list[Any] = []  # what a job reports besides progress, e.g. finished comparison runs
        self.estimate: str | None = None  # how long the search will take, said before it starts
        self.estimate_s: float | None = None  # the same in seconds
        self.result: Any = None
        self.error: str | None = None
        self.running = False
        self._stop = threading.Event()
        self._changed = threading.Event()
        self.finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pez-ui-job", daemon=True)

    def start(self) -> Job:
        self._thread.start()
        return self

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        """Ask the search to stop after the step under way (it keeps the best prompt so far)."""
        self._stop.set()
        self._changed.set()

    def callback(self, p) -> None:
        """The search callback: record the progress; after Stop, interrupt the loop between steps.

        The loop's last report (``step == steps``) comes after the loop, where an interrupt has nothing left to
        stop, so it never raises there.
        """
        self.progress = p
        self.points.append((p.step, p.best_score))
        self._changed.set()
        if self._stop.is_set() and p.step < p.steps:
            raise KeyboardInterrupt

    def note(self, item: Any) -> None:
        """Record something the page should show (e.g. a finished run of a comparison)."""
        self.notes.append(item)
        self._changed.set()

    def tell_estimate(self, line: str, seconds: float) -> None:
        """Record the time estimate the page shows before the search starts (:mod:`pez.ui.estimate`)."""
        self.estimate, self.estimate_s = line, seconds
        self._changed.set()

    def _run(self) -> None:
        with self.slots:
            try:
                if self._stop.is_set():
                    self.error = "stopped before it started"
                    return
                self.running = True
                self._changed.set()
                self.result = self.work(self)
            except PezError as e:
                self.error = str(e)
            except KeyboardInterrupt:
                self.error = "stopped before the search had a result"
            except Exception as e:  # noqa: BLE001  the page shows one line; the log keeps the traceback
                log.exception("job failed")
                first = str(e).splitlines()[0][:200] if str(e) else ""
                self.error = f"the job failed: {type(e).__name__}: {first}"
            finally:
                self.running = False
                self.finished.set()
                self._changed.set()

    def describe(self) -> str:
        """One line: the job, how long it has run, where it is (for the Runs tab)."""
        since = time.strftime("%H:%M:%S", time.localtime(self.started))
        p = self.progress
        if self.finished.is_set():
            where = f"ended: {self.error}" if self.error else "finished"
        elif not self.running:
            where = "waiting for a running job to end"
        elif p is not None:
            where = f"step {p.step} / {p.steps}, best score {p.best_score:.4f}"
        else:
            where = f"{len(self.notes)} done so far" if self.notes else "loading"
        return f"{self.kind} {self.id} (started {since}): {where}{', stopping' if self.stopping else ''}"

    def watch(self, every: float = 0.5) -> Iterator[None]:
        """Yield when the job reports something (at most every ``every`` seconds) until it ends, then once more."""
        while not self.finished.is_set():
            self._changed.wait(every)
            self._changed.clear()
            yield
        yield


class JobRunner:
    """Starts jobs under a shared limit and finds the job of a page to stop it. Every look-up takes the user asking
    (``pez ui --auth``; None without auth) and finds only the jobs that user started.

    Args:
        concurrency: how many jobs may run at once (``pez ui --concurrency``).
    """

    def __init__(self, concurrency: int = 1):
        self.slots = threading.BoundedSemaphore(concurrency)
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start(self, key: str | None, work: Callable[[Job], Any], kind: str = "job", owner: str | None = None) -> Job:
        """Start ``work`` as the job of ``key`` (a page's session and tab; None: a job reached by its id only),
        started by ``owner``."""
        job = Job(work, self.slots, kind, owner)
        with self._lock:
            self._jobs = {k: j for k, j in self._jobs.items() if not j.finished.is_set()}
            self._jobs[key or job.id] = job
        return job.start()

    def running(self, owner: str | None = None) -> list[Job]:
        """The jobs of ``owner`` not yet finished (running or waiting for a slot), oldest first."""
        with self._lock:
            jobs = [j for j in self._jobs.values() if not j.finished.is_set() and j.owner == owner]
        return sorted(jobs, key=lambda j: j.started)

    def find(self, key: str | None, owner: str | None = None) -> Job | None:
        """The unfinished job of ``owner`` whose key (a page's session and tab) or id is ``key``."""
        with self._lock:
            job = self._jobs.get(key) or next((j for j in self._jobs.values() if j.id == key), None)
        return None if job is None or job.finished.is_set() or job.owner != owner else job

    def stop(self, key: str | None, owner: str | None = None) -> bool:
        """Stop the running job of ``owner`` of ``key`` (a page's session and tab, or a job id); whether there
        was one."""
        job = self.find(key, owner)
        if job is None:
            return False
        job.stop()
        return True

    def run(self, work: Callable[[Job], Any], kind: str = "job", owner: str | None = None) -> Any:
        """Run ``work`` as a job of ``owner`` and wait for it (the API endpoints); raises PezError with the job's
        error."""
        job = self.start(None, work, kind, owner)
        job.finished.wait()
        if job.error:
            raise PezError(job.error)
        return job.result


# -- how big a job may be ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """The largest value of every size field of the page, checked on the server (the page's own bounds can be
    bypassed through the API). Time-only sizes (steps) are bounded because Stop exists; memory sizes (restarts,
    examples per step) are also checked against free memory by :func:`search_bytes`; generation sizes are smaller
    on a CPU, where one image takes seconds to minutes."""

    prompt_len: int = 64
    steps: int = 100_000
    restarts: int = 64
    seed: int = 2**32 - 1
    seeds: int = 20  # compare: runs per method
    budget_seconds: float = 24 * 3600.0
    budget_passes: int = 100_000_000
    batch: int = 256  # task: examples per step
    examples: int = 10_000  # task: dev and held-out examples
    generations: int = 16
    inference_steps: int = 200
    text_chars: int = 10_000  # a text target, a prompt to generate from

    @classmethod
    def for_device(cls, device: str | None) -> Limits:
        """The limits of a server whose jobs run on ``device`` (``pez ui --device``)."""
        from pez.models import resolve_device

        if resolve_device(device).type == "cuda":
            return cls(generations=64, inference_steps=500)
        return cls()


def free_bytes(device: str | None) -> int:
    """Memory a job can have now: free memory of the CUDA device, else MemAvailable of the host."""
    from pez.models import resolve_device

    dev = resolve_device(device)
    if dev.type == "cuda":
        import torch

        return torch.cuda.mem_get_info(dev)[0]
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def text_tower(spec: str) -> dict | None:
    """The shape of ``spec``'s text model, read without loading it: width, layers, heads (open_clip's config, or a
    local folder's ``config.json``); None when it cannot be known before loading."""
    import json

    if spec.startswith("sdxl"):
        return None
    folder = os.path.expanduser(spec.removeprefix("hf:").removeprefix("st:"))
    if spec == "smollm2":
        from pez.cache import cache_dir

        folder = str(cache_dir("models", "smollm2"))  # the converted folder, once the model was used
    if os.path.isdir(folder):
        try:
            with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
                cfg = json.load(f)
        except (OSError, ValueError):
            return None
        cfg = cfg.get("text_config", cfg)
        keys = ("hidden_size", "num_hidden_layers", "num_attention_heads")
        if not all(isinstance(cfg.get(k), int) for k in keys):
            return None
        return {"width": cfg[keys[0]], "layers": cfg[keys[1]], "heads": cfg[keys[2]]}
    import open_clip

    cfg = open_clip.get_model_config(spec.partition("/")[0])
    if not cfg:
        return None
    text = cfg.get("text_cfg", {})
    return {"width": text.get("width", 512), "layers": text.get("layers", 12), "heads": text.get("heads", 8)}


KEPT_VALUES = 16  # fp32 values kept per token, width unit and layer for the backward pass (see search_bytes)
FREE_SHARE = 0.8  # the share of the free memory a search may plan to use


def search_bytes(spec: str, sequences: int, tokens: int) -> int | None:
    """Memory of a gradient search that runs ``sequences`` sequences of ``tokens`` tokens through ``spec``'s text
    model at once: per layer and sequence, the fp32 activations kept for the backward pass (the inputs of the layer
    norms, q, k, v, the attention output, the 4h-wide MLP in and out: about :data:`KEPT_VALUES` values per token and
    width unit) and the attention weights (a s^2), plus the weights (12 h^2 per layer). An upper bound: measured on
    this machine's CPU, smollm2 needs about a third of it per example and CLIP less. None when the shape is unknown
    before loading."""
    shape = text_tower(spec)
    if shape is None:
        return None
    s, h, a, n = tokens, shape["width"], shape["heads"], shape["layers"]
    per_sequence = 4 * (KEPT_VALUES * s * h + a * s * s) * n
    return sequences * per_sequence + 4 * 12 * h * h * n


def check_memory(spec: str, sequences: int, tokens: int, device: str | None, field_name: str, value: int) -> None:
    """Refuse a search whose estimate (:func:`search_bytes`) is over :data:`FREE_SHARE` of the memory free now,
    naming the field that sizes it and the largest value that fits."""
    need = search_bytes(spec, sequences, tokens)
    if need is None:
        return
    room = FREE_SHARE * free_bytes(device)
    if need > room:
        weights = search_bytes(spec, 0, tokens)
        fits = max(0, int((room - weights) // (search_bytes(spec, 1, tokens) - weights)))
        raise PezError(
            f"{field_name} {value} would need about {need / 2**30:.1f} GB of memory with {spec}, over the "
            f"{room / 2**30:.1f} GB a job may use here: use at most {fits}" + ("" if fits else " (or a smaller model)")
        )
