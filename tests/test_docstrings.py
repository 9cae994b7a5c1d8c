"""Every public name has a docstring, also where ruff cannot see that it is public.

ruff's D1xx rules skip everything inside a private module (``_calls.py``), but most public
classes live in one and are re-exported through ``__all__``. This walks each package's
``__all__`` (and its ``testing``, ``api`` and ``rules`` modules) and the public methods and
properties of the classes found there.
"""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType

PACKAGES = (
    "rvoip_sip_core",
    "rvoip_transaction_core",
    "rvoip_dialog_core",
    "rvoip_rtp_core",
    "rvoip_media_core",
    "rvoip_session_core",
)


def _public_modules() -> list[ModuleType]:
    modules = []
    for package in PACKAGES:
        modules.append(importlib.import_module(package))
        for sub in ("testing", "api", "rules"):
            try:
                modules.append(importlib.import_module(f"{package}.{sub}"))
            except ImportError:
                continue
    return modules


def _ours(obj: object) -> bool:
    return str(getattr(obj, "__module__", "")).split(".")[0] in PACKAGES


def test_public_names_have_docstrings() -> None:
    missing: list[str] = []
    seen: set[int] = set()
    for module in _public_modules():
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if id(obj) in seen or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            seen.add(id(obj))
            if not _ours(obj):
                continue
            own_doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
            if not own_doc:
                missing.append(f"{module.__name__}.{name}")
            if not inspect.isclass(obj):
                continue
            for attr, value in vars(obj).items():
                if attr.startswith("_"):
                    continue
                func = value.fget if isinstance(value, property) else value
                func = getattr(func, "__func__", func)
                if inspect.isfunction(func) and _ours(func) and not func.__doc__:
                    missing.append(f"{module.__name__}.{name}.{attr}")
    assert missing == [], f"public names without a docstring: {missing}"
