"""Every result pez returns, as plain data on one JSON record base (``to_dict`` / ``save`` / ``load`` written once).

- :mod:`~pez.records.prompt`: :class:`PromptResult`, one prompt search (any method, any objective).
- :mod:`~pez.records.lm`: :class:`TaskReport` (``discover`` / ``compress``), :class:`ApiSearchReport`,
  :class:`ApiPlan`, :class:`EvalResult` (a text prompt scored on labelled examples), :class:`ContinuousResult` (a
  PEFT continuous prompt: an upper bound, not text).
- :mod:`~pez.records.comparison`: :class:`Run`, :class:`ComparisonResult` (``compare``: table, CSV, plot).
- :mod:`~pez.records.images`: :class:`DatasetRun`, :class:`PromptCheck`, :class:`ImageReport`.
- :mod:`~pez.records.gist`: :class:`GistTrainReport`, :class:`GistEval`, :class:`CompressionComparison`.
"""

from pez.records.base import Record, versions
from pez.records.comparison import ComparisonResult, Run
from pez.records.gist import CompressionComparison, GistEval, GistTrainReport
from pez.records.images import DatasetRun, ImageReport, PromptCheck
from pez.records.lm import ApiPlan, ApiSearchReport, ContinuousResult, EvalResult, TaskReport, accuracy_of
from pez.records.prompt import PromptResult

__all__ = [
    "ApiPlan",
    "ApiSearchReport",
    "ComparisonResult",
    "CompressionComparison",
    "ContinuousResult",
    "DatasetRun",
    "EvalResult",
    "GistEval",
    "GistTrainReport",
    "ImageReport",
    "PromptCheck",
    "PromptResult",
    "Record",
    "Run",
    "TaskReport",
    "accuracy_of",
    "versions",
]
