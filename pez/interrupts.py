"""Ctrl-C and SIGTERM reach the program that calls pez (README: "Python API", Ctrl-C and SIGTERM).

Inside a search pez takes SIGINT and SIGTERM itself (:func:`pez.optim.loop.deferred_sigint`): the loop stops
between steps and returns the best prompt so far marked ``interrupted``, and the jobs catch a KeyboardInterrupt to
keep what is done. Inside pez that is right (readable mode runs two searches; the second sees the first's result),
but a library must not swallow its caller's signals. So the public functions (``pez.invert``, ``pez.optimize``, ...:
the names of :data:`PUBLIC`, wrapped where ``pez`` exports them) note every signal pez took during the call, and
once the job has returned what it kept, the signal goes on to the caller:

- where the caller's handler is Python's own default (SIGINT: KeyboardInterrupt; SIGTERM: none, which ends the
  program), the call raises :class:`Interrupted`, a KeyboardInterrupt carrying the kept result (``.result``) and
  the signal (``.signum``); uncaught, it ends the program as a Ctrl-C does;
- where the caller installed a handler of its own (or ignores the signal), that handler is back in place and the
  signal is sent again: the handler runs as if pez had not been there, then the call returns the result.

``on_signal="return"`` on a call, or ``with pez.on_signal("return"):`` around calls, keeps the old way: the call
returns its result marked interrupted and the program goes on. Only the outermost public call decides (a public
function called inside another behaves as pez's own code); calls off the main thread get no signals and are left as
they are. The ``pez`` command runs its jobs under ``on_signal("return")``: it prints and saves the result itself.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import signal
import threading
from collections.abc import Callable, Iterator

from pez.errors import PezError

# the exported functions that run jobs or searches: each takes ``on_signal`` (see the module's docstring)
PUBLIC = frozenset(
    {
        "invert", "invert_dataset", "discover", "compress", "evaluate", "compare", "compare_task",
        "evaluate_images", "check_prompt", "check_by_generating", "gist_train", "gist_compress", "gist_generate",
        "gist_evaluate", "compare_compression", "optimize", "optimize_each", "tune_continuous",
    }
)  # fmt: skip
MODES = ("raise", "return")
SIGNALS = (signal.SIGINT, signal.SIGTERM)

_taken: list[int] | None = None  # the signals pez took during the outermost public call under way (main thread)
_mode = "raise"  # what a call without ``on_signal`` does: set by :func:`on_signal`


class Interrupted(KeyboardInterrupt):
    """A Ctrl-C (SIGINT) or SIGTERM stopped a pez call: ``result`` is what it kept (the best prompt so far, marked
    interrupted, already in the checkpoint where there is one), ``signum`` the signal."""

    def __init__(self, result, signum: int):
        name = signal.Signals(signum).name
        super().__init__(f"{name} stopped the search: the best result so far is in this exception's .result")
        self.result = result
        self.signum = signum


Interrupted.__module__ = "pez"  # its public name, in tracebacks too


def note(signum: int) -> None:
    """Record a signal pez took instead of its caller (called by pez's own handlers)."""
    if _taken is not None:
        _taken.append(signum)


def _check(mode: str) -> str:
    if mode not in MODES:
        raise PezError(f"on_signal={mode!r}: use one of {', '.join(MODES)}")
    return mode


@contextlib.contextmanager
def on_signal(mode: str) -> Iterator[None]:
    """What the pez calls inside the block do after a Ctrl-C or SIGTERM: ``"raise"`` (the default: the signal
    reaches the program, see :class:`Interrupted`) or ``"return"`` (the result comes back marked interrupted and
    the program goes on). A call's own ``on_signal=`` wins."""
    global _mode
    previous, _mode = _mode, _check(mode)
    try:
        yield
    finally:
        _mode = previous


def _interrupt(signum, frame):
    """SIGINT during a public call, outside a search: noted, then Python's own KeyboardInterrupt."""
    note(signum)
    raise KeyboardInterrupt


def _is_default(signum: int, handler) -> bool:
    return handler in (None, signal.SIG_DFL) or (signum == signal.SIGINT and handler is signal.default_int_handler)


def reaches_caller(fn: Callable) -> Callable:
    """``fn`` as exported: it takes ``on_signal`` and lets a signal it took reach its caller (the module's doc)."""

    @functools.wraps(fn)
    def call(*args, on_signal: str | None = None, **kwargs):
        global _taken
        mode = _check(on_signal) if on_signal is not None else _mode
        if _taken is not None or threading.current_thread() is not threading.main_thread():
            return fn(*args, **kwargs)  # inside another public call, or where no signal is delivered
        handlers = {s: signal.getsignal(s) for s in SIGNALS}
        noting = handlers[signal.SIGINT] is signal.default_int_handler
        _taken = []
        if noting:
            signal.signal(signal.SIGINT, _interrupt)
        try:
            result = fn(*args, **kwargs)
        finally:
            taken, _taken = _taken, None
            if noting:
                signal.signal(signal.SIGINT, handlers[signal.SIGINT])
        if not taken or mode == "return":
            return result
        signum = taken[0]
        if _is_default(signum, handlers[signum]):
            raise Interrupted(result, signum)
        signal.raise_signal(signum)  # the caller's own handler runs now (an ignored signal stays ignored)
        return result

    parameter = inspect.Parameter("on_signal", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="str | None")
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    at = next((i for i, p in enumerate(params) if p.kind is inspect.Parameter.VAR_KEYWORD), len(params))
    call.__signature__ = sig.replace(parameters=[*params[:at], parameter, *params[at:]])
    return call
