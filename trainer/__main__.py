"""`python -m tass.trainer`: see trainer.cli."""

import sys

from tass.trainer.cli import main

sys.exit(main())
