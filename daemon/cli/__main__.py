"""``python -m daemon.cli``: the ``veil`` command without the installed entry point."""

import sys

from daemon.cli import main

sys.exit(main())
