"""Scoring a text prompt on labelled examples: on a local causal LM (:mod:`~pez.evaluation.local`) or through an
OpenAI-compatible API (:mod:`~pez.evaluation.remote`, over :mod:`~pez.evaluation.client`, after the server check
of :mod:`~pez.evaluation.probe`); choosing among prompts on an API within a budget
(:mod:`~pez.evaluation.selection`). Results are :class:`pez.records.EvalResult`."""
