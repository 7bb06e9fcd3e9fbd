"""``python -m sipchain``: the same as the ``sipchain`` command."""

from __future__ import annotations

import sys

from sipchain.cli import main

if __name__ == "__main__":
    sys.exit(main())
