"""``python -m pez`` (also under launchers: ``torchrun -m pez``, ``accelerate launch -m pez``)."""

import sys

from pez.cli import main

sys.exit(main())
