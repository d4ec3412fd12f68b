"""``python -m sweepjax``: the command line (see ``sweepjax.cli``)."""

from .cli import main

raise SystemExit(main())
