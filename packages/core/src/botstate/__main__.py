"""``python -m botstate``: the command line interface (see ``botstate --help``)."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
