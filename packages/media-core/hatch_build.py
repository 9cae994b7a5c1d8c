"""Hatch build hook: compile the media C kernel with cffi (API mode).

The kernel is optional at run time (a numpy implementation of every function
is the fallback), so a machine without a compiler still gets a working wheel,
unless ``RVOIP_MEDIA_REQUIRE_EXTENSION=1`` asks the build to fail instead (CI).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SKIP_ENV = "RVOIP_MEDIA_NO_EXTENSION"
REQUIRE_ENV = "RVOIP_MEDIA_REQUIRE_EXTENSION"
PACKAGE = "rvoip_media_core"


class CffiBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Builds ``rvoip_media_core._kernel_cffi`` and places it in the wheel."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Compile the C kernel and add it to the wheel (next to the sources if editable).

        Without a compiler the wheel is pure Python (numpy fallback) unless
        ``RVOIP_MEDIA_REQUIRE_EXTENSION=1`` makes that an error; ``RVOIP_MEDIA_NO_EXTENSION=1``
        skips the build.
        """
        if self.target_name != "wheel" or os.environ.get(SKIP_ENV) == "1":
            return
        root = Path(self.root)
        spec = importlib.util.spec_from_file_location(
            "_rvoip_build_ffi", root / "src" / PACKAGE / "_kernel" / "build_ffi.py"
        )
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        ffibuilder = module.make_ffibuilder()
        tmp = Path(tempfile.mkdtemp(prefix="rvoip-cffi-"))
        try:
            try:
                built = Path(ffibuilder.compile(tmpdir=str(tmp), verbose=False))
            except Exception as exc:  # no compiler, missing headers ...
                if os.environ.get(REQUIRE_ENV) == "1":
                    raise
                self.app.display_warning(f"C kernel not built ({exc}); numpy fallback")
                return
            if version == "editable":
                # The editable wheel is only a .pth pointing at src/: put the
                # extension next to the sources.
                shutil.copy2(built, root / "src" / PACKAGE / built.name)
            else:
                staged = Path(self.directory) / ".cffi-stage" / built.name
                staged.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(built, staged)
                build_data["force_include"][str(staged)] = f"{PACKAGE}/{built.name}"
                build_data["pure_python"] = False
                build_data["infer_tag"] = True
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        """Remove the staged extension once the wheel is written."""
        shutil.rmtree(Path(self.directory) / ".cffi-stage", ignore_errors=True)
