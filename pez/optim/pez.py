"""PEZ: hard prompts made easy (Wen et al., "Hard Prompts Made Easy: Gradient-Based Discrete Optimization for
Prompt Tuning and Discovery", NeurIPS 2023, arXiv 2302.03668).

Keep a continuous prompt P (R, L, D). Each step: project P to its nearest allowed vocabulary rows (cosine), take
the gradient of the loss at the projected hard prompt H = E[ids], and apply it to P with AdamW.

On CUDA the whole step (projection, forward, backward, AdamW) has static shapes, so after a few eager steps it is
captured once as a CUDA graph and replayed: one launch per step instead of a few thousand, which is what bounds
a step of one or a few prompts on a GPU (docs/algorithms.md#speed).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pez.optim.config import OptimizerConfig, check_adamw, config_field
from pez.optim.loop import PromptOptimizer


@dataclass
class PEZConfig(OptimizerConfig):
    """PEZ with the official defaults (16 tokens, 3000 steps, AdamW lr 0.1, weight decay 0.1)."""

    lr: float = config_field(0.1, "AdamW learning rate on the continuous prompt")
    weight_decay: float = config_field(0.1, "AdamW weight decay")
    cuda_graphs: bool = config_field(True, "on CUDA, replay the step as one captured CUDA graph (off: run it eagerly)")

    def __post_init__(self):
        super().__post_init__()
        check_adamw(self)


class PEZ(PromptOptimizer):
    name = "pez"
    config_class = PEZConfig
    EAGER_STEPS = 3  # steps run eagerly on a side stream before the capture (CUDA's warm-up)

    def init(self, ids: torch.Tensor) -> None:
        self.soft = self.E[ids].float().clone().requires_grad_(True)  # (R, L, D), fp32 on any device
        self.parts: list[torch.Tensor] | None = None  # one (restarts, L, D) parameter per group (restartable)
        self.graph = None  # the captured step, with its outputs and the objective counts one replay adds
        self.graphed = self._can_graph()
        self._eager = 0  # eager steps run so far before the capture
        # a captured step keeps AdamW's step count on the device (capturable), which is otherwise the same update
        self.opt = torch.optim.AdamW(
            [self.soft], lr=self.cfg.lr, weight_decay=self.cfg.weight_decay, capturable=self.graphed
        )

    def _can_graph(self) -> bool:
        """A step is captured on CUDA when asked, and when it draws no random batch (a graph replays fixed work)."""
        cfg, obj = self.cfg, self.obj
        if not (self.device.type == "cuda" and cfg.cuda_graphs and getattr(obj, "graph_safe", False)):
            return False
        return cfg.batch_size is None or obj.max_targets <= cfg.batch_size

    def _step(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        soft = self.soft if self.parts is None else torch.cat(self.parts)  # (R, L, D)
        ids = self.projector(soft)  # (R, L)
        hard = self.E[ids].float().requires_grad_(True)  # (R, L, D)
        with self.autocast(cache=not self.graphed):  # a captured step may not keep autocast's cast weights
            loss, eval_loss = self.obj.loss(hard, self.group, self.cfg.batch_size, self.gen, ids)
        # straight-through: the gradient at the projected point is applied to the continuous prompt
        if self.parts is None:
            (self.soft.grad,) = torch.autograd.grad(loss.sum(), hard)
        else:
            (grad,) = torch.autograd.grad(loss.sum(), hard)
            for part, g in zip(self.parts, grad.split(self.cfg.restarts)):
                part.grad = g
        self.opt.step()
        return ids, eval_loss

    # -- slots (pez.optim.slots): a group starts again on a new target ---------------------------------------
    def split_groups(self) -> None:
        """One AdamW parameter per group (its ``restarts`` prompts), each with its own moments and step count, so
        that :meth:`restart_group` can start one group again as a run on its target alone starts. Call before the
        first step; the update of every prompt is the same elementwise AdamW as with one parameter."""
        parts = self.soft.detach().split(self.cfg.restarts)
        self.parts = [p.clone().requires_grad_(True) for p in parts]
        self.opt = torch.optim.AdamW(
            self.parts, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay, capturable=self.graphed
        )

    @torch.no_grad()
    def restart_group(self, g: int, ids: torch.Tensor) -> None:
        """Start group ``g`` again from hard ids (restarts, L): its prompt, AdamW moments and step count are reset
        in place (a captured CUDA graph stays valid)."""
        part = self.parts[g]
        part.copy_(self.E[ids].float())
        for value in self.opt.state.get(part, {}).values():
            if isinstance(value, torch.Tensor):
                value.zero_()

    def step(self, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not self.graphed:
            out = self._step()
            self.opt.zero_grad(set_to_none=True)
            return out
        if self.graph is None:
            if self._eager < self.EAGER_STEPS:  # warm-up on a side stream, as CUDA graph capture asks
                self._eager += 1
                side = torch.cuda.Stream(self.device)
                side.wait_stream(torch.cuda.current_stream(self.device))
                with torch.cuda.stream(side):
                    ids, loss = self._step()
                torch.cuda.current_stream(self.device).wait_stream(side)
                return ids, loss
            self._capture()
        graph, ids, loss, counts = self.graph
        graph.replay()
        for k, n in counts.items():
            self.obj.counts[k] += n
        return ids.clone(), loss.clone()  # the caller keeps them past the next replay

    def _capture(self) -> None:
        graph = torch.cuda.CUDAGraph()
        before = dict(self.obj.counts)
        with torch.cuda.graph(graph):  # records the step without running it; the first replay runs it
            ids, loss = self._step()
        counts = {k: self.obj.counts[k] - before[k] for k in before}
        self.obj.counts.update(before)
        self.graph = (graph, ids, loss, counts)

    def state_dict(self) -> dict:
        soft = self.soft if self.parts is None else torch.cat(self.parts)
        return {"soft": soft.detach(), "adamw": self.opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            self.soft.copy_(state["soft"])
        self.opt.load_state_dict(state["adamw"])
        self.graph = None  # the optimizer's state tensors are new: capture again
