"""Constructors accept only public parameters: attrs private fields are not init arguments."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import attrs
import pytest

import rvoip_session_core
from rvoip_session_core import (
    CompositeHandler,
    QueueHandler,
    RoutingHandler,
    SessionManagerBuilder,
)
from rvoip_session_core._events import EventHub


def _attrs_classes() -> list[type]:
    found: dict[str, type] = {}
    for info in pkgutil.iter_modules(rvoip_session_core.__path__):
        module = importlib.import_module(f"rvoip_session_core.{info.name}")
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and attrs.has(obj)
                and obj.__module__.startswith("rvoip_session_core")
            ):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return list(found.values())


# Built only by EventHub.subscribe() from its required parts; never by applications.
_WIRED_INTERNALLY = {"EventSubscription"}


@pytest.mark.parametrize("cls", _attrs_classes(), ids=lambda c: c.__qualname__)
def test_no_private_field_is_a_constructor_parameter(cls: type) -> None:
    private = [f.name for f in attrs.fields(cls) if f.name.startswith("_") and f.init]
    assert private == [] or cls.__qualname__ in _WIRED_INTERNALLY


@pytest.mark.parametrize(
    ("cls", "params"),
    [
        (QueueHandler, ["max_queue_size"]),
        (RoutingHandler, ["default"]),
        (CompositeHandler, ["default"]),
        (EventHub, ["buffer"]),
        (SessionManagerBuilder, []),
    ],
)
def test_documented_signatures(cls: type, params: list[str]) -> None:
    assert list(inspect.signature(cls).parameters) == params


def test_private_keywords_are_refused() -> None:
    with pytest.raises(TypeError):
        QueueHandler(queue=[])  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        SessionManagerBuilder(sip_port=5060)  # type: ignore[call-arg]
    assert QueueHandler(3).max_queue_size == 3  # the documented positional form still works
