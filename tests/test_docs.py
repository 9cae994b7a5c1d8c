"""The docs stay true to the code: names, links, examples and code blocks are checked."""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

import pytest

import rvoip_session_core
import rvoip_session_core.api
from rvoip_session_core import MediaControl, SessionControl, SessionCoordinator

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
API_GUIDE = DOCS / "api-guide.md"
COOKBOOK = DOCS / "COOKBOOK.md"
# The pages this test's owner writes: their in-page anchors are checked too.
OWN_PAGES = ("architecture.md", "api-guide.md", "COOKBOOK.md", "index.md")

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(
    r"^(?P<indent>[ ]*)```(?P<lang>[\w+-]*)\n(?P<body>.*?)^(?P=indent)```", re.M | re.S
)


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _markdown_files() -> list[Path]:
    return [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = FENCE.sub("", _text(path))
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M)}


def _python_blocks(path: Path) -> list[tuple[int, str]]:
    text = _text(path)
    return [
        (text.count("\n", 0, m.start()) + 1, textwrap.dedent(m.group("body")))
        for m in FENCE.finditer(text)
        if m.group("lang") == "python"
    ]


def _public_names() -> list[str]:
    return sorted(set(rvoip_session_core.__all__) | set(rvoip_session_core.api.__all__))


@pytest.mark.parametrize("name", _public_names())
def test_every_public_name_is_in_the_api_guide(name: str) -> None:
    assert re.search(rf"(?<![\w.]){re.escape(name)}\b", _text(API_GUIDE)), (
        f"{name} is public in rvoip_session_core but docs/api-guide.md does not mention it"
    )


def test_every_example_is_in_the_cookbook() -> None:
    examples = sorted((ROOT / "examples").glob("*.py"))
    assert examples, "examples/ holds no programs"
    text = _text(COOKBOOK)
    missing = [p.name for p in examples if f"examples/{p.name}" not in text]
    assert missing == [], f"docs/COOKBOOK.md does not reference {missing}"


@pytest.mark.parametrize("page", _markdown_files(), ids=lambda p: p.name)
def test_relative_links_point_to_existing_files(page: Path) -> None:
    text = FENCE.sub("", _text(page))
    broken = []
    for match in LINK.finditer(text):
        target = match.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
            continue  # http:, https:, mailto: ...
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.exists() or (
            anchor
            and page.name in OWN_PAGES
            and resolved.suffix == ".md"
            and anchor not in _anchors(resolved)
        ):
            broken.append(target)
    assert broken == [], f"{page.relative_to(ROOT)} has broken links: {broken}"


@pytest.mark.parametrize("page", [API_GUIDE, COOKBOOK], ids=lambda p: p.name)
def test_python_blocks_compile(page: Path) -> None:
    blocks = _python_blocks(page)
    assert blocks, f"{page.name} has no python code blocks"
    for line, source in blocks:
        try:
            compile(
                source,
                f"{page.name}:{line}",
                "exec",
                flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
                dont_inherit=True,
            )
        except SyntaxError as exc:
            pytest.fail(f"{page.name}, block at line {line}: {exc}")


def test_methods_named_in_the_api_guide_exist() -> None:
    """``coordinator.x``, ``SessionControl.x`` and ``MediaControl.x`` are real attributes."""
    text = _text(API_GUIDE)
    owners: dict[str, object] = {
        "coordinator": SessionCoordinator,
        "SessionControl": SessionControl,
        "MediaControl": MediaControl,
    }
    missing = sorted(
        {
            f"{owner}.{attr}"
            for owner, cls in owners.items()
            for attr in re.findall(rf"\b{owner}\.(\w+)", text)
            if not hasattr(cls, attr) and attr not in ("config", "handler", "message_tap")
        }
    )
    assert missing == [], f"docs/api-guide.md names methods that do not exist: {missing}"


def test_trait_method_lists_match_the_classes() -> None:
    """Section 9 lists exactly the methods of SessionControl and MediaControl."""
    text = _text(API_GUIDE)
    for cls in (SessionControl, MediaControl):
        match = re.search(rf"^- `{cls.__name__}`: (.+?)(?=^- |\Z)", text, re.M | re.S)
        assert match, f"no method list for {cls.__name__}"
        listed = set(re.findall(r"`(\w+)`", match.group(1)))
        actual = {name for name in vars(cls) if not name.startswith("_")}
        assert listed == actual, f"{cls.__name__}: listed {sorted(listed ^ actual)} differ"


def test_coordinator_instance_attributes_named_in_the_guide_exist() -> None:
    """The instance attributes the guide mentions are set by the constructor."""
    coordinator = rvoip_session_core.SessionManagerBuilder().with_sip_port(0)
    built = SessionCoordinator(coordinator.config(), coordinator.handler)
    for attr in ("config", "handler", "message_tap"):
        assert hasattr(built, attr), attr
