"""``pez ui``: a Gradio web page with one tab per job (image -> prompt, text -> short prompt, task prompt,
compare, check by generating), live progress, a Stop button, every run saved as the CLI's JSON, and stable API
endpoints for ``gradio_client`` (``/distill``, ``/invert``, ``/discover``, ``/compare``, ``/check``,
``/runs``). Needs ``gradio``; imported only by ``pez ui``, so ``import pez`` stays quick."""

from pez.ui.app import TABS, build_app, launch_app
from pez.ui.common import UIOptions

__all__ = ["TABS", "UIOptions", "build_app", "launch_app"]
