"""One function per user job. The command line and the web UI call only these.

- :func:`invert`: images and/or texts -> a prompt (:func:`optimize` / :func:`optimize_each` for any objective);
  :func:`invert_dataset`: a prompt for every image of a folder, resumable and sharded.
- :func:`discover`: a task prompt for a causal LM; :func:`compress`: an instruction -> a few tokens.
- :func:`evaluate`: any text prompt's accuracy, locally or through an API; :func:`evaluate_images`: prompts
  checked by generating images (diffusers) and scoring them against their targets.
- :func:`compare` / :func:`compare_task`: several methods, one objective, one budget.
"""

from pez.jobs.comparing import compare, compare_task
from pez.jobs.comparison import ComparisonResult, Run
from pez.jobs.folders import DatasetRun, invert_dataset, merge_results
from pez.jobs.image_checks import ImageReport, PromptCheck, check_prompt, evaluate_images
from pez.jobs.inversion import INVERT_DEFAULTS, invert, make_objective, optimize, optimize_each
from pez.jobs.lm_tasks import LM_DEFAULTS, compress, discover
from pez.jobs.scoring import evaluate

__all__ = [
    "INVERT_DEFAULTS",
    "LM_DEFAULTS",
    "ComparisonResult",
    "DatasetRun",
    "ImageReport",
    "PromptCheck",
    "Run",
    "check_prompt",
    "compare",
    "compare_task",
    "compress",
    "discover",
    "evaluate",
    "evaluate_images",
    "invert",
    "invert_dataset",
    "make_objective",
    "merge_results",
    "optimize",
    "optimize_each",
]
