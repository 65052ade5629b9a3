"""Jobs in worker threads, with live progress and a Stop button: the web UI's side of pez's search callbacks.

A :class:`Job` runs one call of a public :mod:`pez.jobs` function in a thread. Its :meth:`Job.callback` (the
search's ``callback``) records each :class:`pez.Progress`; once Stop was pressed it raises KeyboardInterrupt, which
the search loop takes between steps as an interrupt: it returns the best prompt so far, marked ``interrupted``.
The page follows the job from a generator (:meth:`Job.watch`); the job does not depend on the page, so a reload or
a closed tab does not end it, and its result is saved all the same. At most ``concurrency`` jobs run at once: the
Gradio queue's limit, held here too because a job can outlive the request that started it.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Iterator
from typing import Any

from pez.errors import PezError

log = logging.getLogger(__name__)


class Job:
    """One job in a worker thread: its progress, its result or one-line error, and a stop flag.

    Args:
        work: called in the thread with the job itself (for :meth:`callback`, :meth:`note`, :attr:`stopping`);
            returns the result.
        slots: the semaphore that bounds how many jobs run at once.
    """

    def __init__(self, work: Callable[[Job], Any], slots: threading.Semaphore):
        self.work, self.slots = work, slots
        self.points: list[tuple[int, float]] = []  # (step, best honest score) at every sync point
        self.progress = None  # the latest pez.Progress
        self.notes: list[Any] = []  # what a job reports besides progress, e.g. finished comparison runs
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

    def watch(self, every: float = 0.5) -> Iterator[None]:
        """Yield when the job reports something (at most every ``every`` seconds) until it ends, then once more."""
        while not self.finished.is_set():
            self._changed.wait(every)
            self._changed.clear()
            yield
        yield


class JobRunner:
    """Starts jobs under a shared limit and finds the job of a page to stop it.

    Args:
        concurrency: how many jobs may run at once (``pez ui --concurrency``).
    """

    def __init__(self, concurrency: int = 1):
        self.slots = threading.BoundedSemaphore(concurrency)
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start(self, key: str | None, work: Callable[[Job], Any]) -> Job:
        """Start ``work`` as the job of ``key`` (a page's session and tab; None: a job no Stop button can reach)."""
        job = Job(work, self.slots)
        with self._lock:
            self._jobs = {k: j for k, j in self._jobs.items() if not j.finished.is_set()}
            self._jobs[key or secrets.token_hex(8)] = job
        return job.start()

    def stop(self, key: str) -> bool:
        """Stop the running job of ``key``; whether there was one."""
        with self._lock:
            job = self._jobs.get(key)
        if job is None or job.finished.is_set():
            return False
        job.stop()
        return True

    def run(self, work: Callable[[Job], Any]) -> Any:
        """Run ``work`` as a job and wait for it (the API endpoints); raises PezError with the job's error."""
        job = self.start(None, work)
        job.finished.wait()
        if job.error:
            raise PezError(job.error)
        return job.result
