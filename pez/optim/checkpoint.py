"""Checkpoints: a run's whole state in one file, written atomically, so ``--resume`` continues exactly
(docs/algorithms.md#checkpoints-and-interrupts).

A checkpoint holds the method's state, the generator, the tracker and the pass counts, with the config and the
objective's description; resuming checks that both match, except the fields in :data:`RESUME_FREE`.
"""

from __future__ import annotations

import os

import torch

from pez.errors import PezError

# Changing these between a checkpoint and its resume does not change the steps already run.
RESUME_FREE = {"steps", "checkpoint_every"}


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write ``state`` with ``torch.save`` (to a temporary file first: a crash never leaves half a checkpoint).

    Raises:
        PezError: the file cannot be written (a full disk, a read-only folder), saying which and why; the temporary
            file is removed and an older checkpoint stays as it was.
    """
    path = os.fspath(path)
    tmp = f"{path}.tmp"
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # torch reports a failed write as RuntimeError from its C++ writer
        if os.path.exists(tmp):
            os.remove(tmp)
        why = getattr(e, "strerror", None) or (str(e).strip().splitlines() or [type(e).__name__])[0][:100]
        raise PezError(f"cannot write checkpoint {path}: {why}") from None


def read_checkpoint(path: str | os.PathLike, device: torch.device | str = "cpu") -> dict:
    """Read a checkpoint file without checking what made it (the CLI calls this before any model loads).

    Raises:
        PezError: a missing, truncated or foreign file, in one line.
    """
    if path is None or not os.path.exists(path):
        raise PezError(f"nothing to resume: checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # noqa: BLE001  a truncated or foreign file fails in many ways: all mean the same here
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:100]
        raise PezError(
            f"cannot read checkpoint {path}: it is truncated or not a pez checkpoint ({why}); delete it to start "
            "over, or give another --checkpoint"
        ) from None
    if not isinstance(state, dict) or not {"method", "config", "objective"} <= set(state):
        raise PezError(f"checkpoint {path} is not a pez checkpoint: delete it to start over, or give another")
    return state


def load_checkpoint(path: str | os.PathLike, device: torch.device, method: str, config: dict, objective: dict) -> dict:
    """Read a checkpoint and check that it belongs to this method, config and objective.

    Raises:
        PezError: a missing, truncated or foreign file, or one made with other options or targets.
    """
    state = read_checkpoint(path, device)
    if state.get("method") != method:
        raise PezError(f"checkpoint {path} was made by method {state.get('method')!r}, not {method!r}")
    for k, v in state["config"].items():
        if k not in RESUME_FREE and config.get(k) != v:
            raise PezError(f"checkpoint {path} was made with {k}={v!r}, not {config.get(k)!r}: use the same options")
    if state["objective"] != objective:
        raise PezError(f"checkpoint {path} was made for other targets or another model")
    state.setdefault("counts", {"forward": 0, "backward": 0})
    return state
