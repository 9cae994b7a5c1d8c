"""``python -m rvoip_session_core``: the same as the ``rvoip`` console script."""

from __future__ import annotations

import sys

from rvoip_session_core.cli import main

if __name__ == "__main__":
    sys.exit(main())
