#!/usr/bin/env python3
"""Concurrent calls: N calls held with G.711, G.722 or Opus audio both ways, two processes.

    .venv/bin/python tools/bench/concurrent.py [--calls 500] [--seconds 10] [--setup-rate 100]
        [--loop asyncio|uvloop] [--codec pcmu|pcma|g722|opus] [--no-pin] [--tracemalloc]
        [--quick]

The benchmark itself is in ``_concurrent_calls.py`` (its docstring says what is measured).
This file's name is also the name of a standard-library package (``concurrent``, imported
by asyncio), and any script in tools/bench has this directory first on its import path:
when imported as ``concurrent`` it hands the importer the real package instead.
"""

import sys

if __name__ == "concurrent":
    import importlib
    from pathlib import Path

    _here = Path(__file__).resolve().parent
    _saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    del sys.modules["concurrent"]
    try:
        sys.modules["concurrent"] = importlib.import_module("concurrent")
    finally:
        sys.path[:] = _saved
elif __name__ == "__main__":
    from _concurrent_calls import main

    sys.exit(main())
