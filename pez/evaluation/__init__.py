"""Scoring a text prompt on a task: on a local transformers model (:mod:`.local`) or an OpenAI-compatible API
(:mod:`.remote`). Both fill the same :class:`pez.tasks.Task` template and return an :class:`EvalResult`."""
