"""Score a text prompt on a local transformers causal LM: the label with the highest log-probability wins.

The prompt is scored as the text a user pastes: the template is filled with the prompt TEXT and the whole string
is tokenised (not the optimiser's ids), exactly as an API would see it. A label word of several tokens scores by
the sum of its tokens' log-probabilities.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from pez.objectives.lm.labels import LabelScorer, answer_rows
from pez.objectives.lm.path import LMPath
from pez.records import EvalResult, accuracy_of
from pez.text.templates import Task


@torch.no_grad()
def evaluate_local(
    prompt: str,
    examples: Sequence,
    task: Task,
    model,
    tokenizer,
    model_name: str = "",
    data_name: str = "",
    batch_size: int = 32,
    path: LMPath | None = None,
    callback: Callable[[int, int], None] | None = None,
) -> EvalResult:
    """Accuracy of ``prompt`` on labelled ``examples`` under a local causal LM.

    Args:
        prompt: the prompt text ("" for the empty template).
        examples: objects with ``.text`` and ``.label``.
        task: template + verbaliser.
        model, tokenizer: a transformers causal LM and its tokenizer.
        batch_size: examples per forward pass.
        path: a ready :class:`LMPath` with no text before the prompt (reused across calls to save set-up).
        callback: called with (done, total) after each batch.
    """
    v = task.verbalizer
    labels = [v.index(e.label) for e in examples]  # every label must be covered before any work
    path = path if path is not None else LMPath(model, tokenizer)
    tok = path.tok
    conts = [tok.encode(task.continuation(c)) for c in range(len(v.labels))]
    score = LabelScorer(path)
    empty = path.E[:0][None]  # (1, 0, D): the whole text is in the rows
    prepared = [answer_rows(tok.encode(task.template.fill(prompt, e.text)), conts) for e in examples]
    order = sorted(range(len(examples)), key=lambda i: max(map(len, prepared[i][0])))  # a batch pads little
    rows: list[list[float]] = [[] for _ in examples]
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        scores, _ = score(empty, [prepared[i] for i in chunk], len(conts))  # (1, B, C)
        for i, row in zip(chunk, scores[0].tolist()):
            rows[i] = row
        if callback is not None:
            callback(start + len(chunk), len(examples))
    predictions = []
    for i, row in enumerate(rows):
        best = max(range(len(row)), key=row.__getitem__)
        predictions.append(
            {
                "index": i,
                "text": examples[i].text,
                "label": v.labels[labels[i]],
                "predicted": v.labels[best],
                "correct": best == labels[i],
                "scores": dict(zip(v.labels, row)),
            }
        )
    return EvalResult(
        prompt=prompt,
        model=model_name,
        accuracy=accuracy_of(predictions),
        n=len(predictions),
        predictions=predictions,
        task={"template": task.template.text, "labels": list(v.labels), "words": list(v.words)},
        data=data_name,
    )
