"""One prompt scored by two CLIP text towers at once: SDXL's ViT-L-14 and ViT-bigG-14
(docs/objectives.md#two-towers-sdxl).

Both towers use CLIP's BPE vocabulary, so a prompt's ids are shared. The continuous prompt lives in the joint
space of both token embeddings: row v of the joint matrix is ``[E_L[v] / s_L, E_G[v] / s_G]``, each half divided
by its tower's mean row norm so that both weigh the same in the projection (nearest joint row by cosine: the one
meaning of "nearest token"). Each half, scaled back, goes through its own tower. A prompt's feature is
``[f_L / |f_L|, f_G / |f_G|]``, and each target's is the same pair for that target, so the cosine the objective
uses is exactly the mean of the two towers' cosines.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from pez.errors import PezError
from pez.objectives.base import EmbeddingObjective
from pez.objectives.clip import CLIPObjective
from pez.text.vocab import Vocabulary

PROBE = "a photo of a cat, 2 dogs & sunsets!"


class DualCLIPObjective(EmbeddingObjective):
    """Match targets under two CLIP models at once with one prompt.

    Args:
        towers: two :class:`pez.models.LoadedModel` of kind ``clip`` (open_clip; e.g. from ``load_model("sdxl")``).
        images, texts, negative_images, negative_texts, negative_weight: as for
            :class:`~pez.objectives.clip.CLIPObjective`.
        model_name: how the model is named in results.
    """

    def __init__(
        self,
        towers: Sequence,
        images: Sequence = (),
        texts: Sequence[str] = (),
        negative_images: Sequence = (),
        negative_texts: Sequence[str] = (),
        negative_weight: float = 1.0,
        model_name: str | None = None,
    ):
        if len(towers) != 2:
            raise PezError(f"two text towers are needed, got {len(towers)}")
        targets = dict(images=images, texts=texts, negative_images=negative_images, negative_texts=negative_texts)
        self.towers = [
            CLIPObjective(
                t.model,
                t.tokenizer,
                preprocess=t.preprocess,
                negative_weight=negative_weight,
                model_name=t.spec,
                warn_cut=k == 0,  # one warning for a text both towers cut
                **targets,
            )
            for k, t in enumerate(towers)
        ]
        a, b = (t.path for t in self.towers)
        if a.tok.vocab_size != b.tok.vocab_size or a.tok.encode(PROBE) != b.tok.encode(PROBE):
            raise PezError("the two towers' tokenizers differ: one prompt needs one vocabulary")
        ea, eb = a.token_embedding.detach().float(), b.token_embedding.detach().float()
        self.scales = (ea.norm(dim=-1).mean().item(), eb.norm(dim=-1).mean().item())
        self.split = ea.shape[1]
        joint = torch.cat([ea / self.scales[0], eb.to(ea.device) / self.scales[1]], dim=1)  # (V, D_L + D_G)
        vocab = Vocabulary(a.tok, joint, min(a.context_length, b.context_length) - 2)
        feats = torch.cat([F.normalize(t.targets, dim=-1) for t in self.towers], dim=1)  # (T, F_L + F_G)
        first = self.towers[0]
        info = {**first.info, "kind": "sdxl", "model": model_name or "sdxl", "towers": [t.spec for t in towers]}
        # one device for both towers keeps the step free of copies, so a PEZ step can be a CUDA graph
        self.graph_safe = all(t.graph_safe for t in self.towers) and ea.device == b.token_embedding.device
        super().__init__(vocab, feats, first.weights, info)

    def _joint(self, fa: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.normalize(fa.float(), dim=-1), F.normalize(fb.float(), dim=-1).to(fa.device)], dim=-1)

    def encode_embeds(self, embeds: torch.Tensor) -> torch.Tensor:
        a, b = (t.path for t in self.towers)
        ea = embeds[..., : self.split] * self.scales[0]  # back to each tower's own embedding scale
        eb = embeds[..., self.split :] * self.scales[1]
        return self._joint(a.encode_embeds(ea), b.encode_embeds(eb.to(b.token_embedding.device)))

    def encode_ids(self, ids):
        a, b = (t.path for t in self.towers)
        return self._joint(a.encode_ids(ids), b.encode_ids(ids))

    @torch.no_grad()
    def tower_cosines(self, ids: Sequence[int], group: int = 0) -> list[list[dict]]:
        """Per tower, the cosine of one prompt with each target (what each encoder alone makes of it)."""
        return [t.target_scores(ids, group) for t in self.towers]
