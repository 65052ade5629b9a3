"""One module per user job, named after its command; the command line and the web UI call only these, and
:mod:`pez` exports each job function through its lazy table (so this package re-exports nothing).

- :mod:`~pez.jobs.invert`: images and/or texts -> a prompt (:func:`~pez.jobs.invert.invert`,
  :func:`~pez.jobs.invert.make_objective`); :mod:`~pez.jobs.invert_dataset`: a prompt for every image of a folder,
  resumable and sharded (``pez merge`` too).
- :mod:`~pez.jobs.discover`: a task prompt for a causal LM, chosen on an API model with :mod:`~pez.jobs.discover_api`
  (:mod:`~pez.jobs.api_plan`: what that would spend); :mod:`~pez.jobs.compress`: an instruction -> a few tokens.
- :mod:`~pez.jobs.evaluate`: any text prompt's accuracy, locally or through an API;
  :mod:`~pez.jobs.evaluate_images`: prompts checked by generating images (diffusers).
- :mod:`~pez.jobs.compare`: several methods, one objective, one budget.
- :mod:`~pez.jobs.lm`: what the LM jobs share (:class:`~pez.jobs.lm.LMTask`, the paper's LM setting).

Every job runs its method through :func:`pez.optim.optimize_each`; results are :mod:`pez.records`.
"""
