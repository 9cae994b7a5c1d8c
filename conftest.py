"""Repository-wide pytest set-up: hypothesis profiles and the corpora fixture."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

ROOT = Path(__file__).resolve().parent


def corpora_path() -> Path | None:
    """Where the shared test corpora are: ``$RVOIP_CORPORA`` or ``../shared/corpora``."""
    env = os.environ.get("RVOIP_CORPORA")
    candidates = [Path(env)] if env else []
    candidates.append(ROOT.parent / "shared" / "corpora")
    for path in candidates:
        if path.is_dir():
            return path
    return None


@pytest.fixture(scope="session")
def corpora() -> Path:
    """The corpora directory; skips the test with the reason when it is absent."""
    path = corpora_path()
    if path is None:
        pytest.skip("test corpora not found: set RVOIP_CORPORA or place ../shared/corpora")
    return path
