"""Scoring a text prompt on labelled examples: on a local causal LM (:mod:`~pez.evaluation.local`) or through an
OpenAI-compatible API (:mod:`~pez.evaluation.remote`, over :mod:`~pez.evaluation.client`). Results are
:class:`pez.records.EvalResult`."""
