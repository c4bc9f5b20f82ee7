"""``python -m tui_monitor``: the command line (see :mod:`tui_monitor.cli`)."""
import sys

from .cli import main

sys.exit(main())
