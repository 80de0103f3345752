"""The event loop a process runs on: the setting's three choices."""

from __future__ import annotations

import asyncio
import sys

import pytest
import uvloop

from connlog.core import event_loop
from connlog.core.settings import Settings


async def _loop_class() -> type:
    return type(asyncio.get_running_loop())


@pytest.mark.parametrize(("choice", "expected"), [
    ("auto", uvloop.Loop),
    ("uvloop", uvloop.Loop),
    ("asyncio", asyncio.SelectorEventLoop),
])
def test_the_chosen_loop_runs_the_process(choice, expected):
    assert event_loop.run(_loop_class(), choice) is expected


@pytest.mark.parametrize("choice", ["auto", "asyncio"])
def test_without_uvloop_auto_falls_back_to_pythons_loop(monkeypatch, choice):
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now fails
    assert event_loop.run(_loop_class(), choice) is asyncio.SelectorEventLoop


def test_uvloop_asked_for_and_missing_is_an_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)
    with pytest.raises(RuntimeError, match="uvloop is not installed"):
        event_loop.loop_factory("uvloop")


def test_the_setting_defaults_to_auto_and_refuses_others(monkeypatch):
    assert Settings().event_loop == "auto"
    monkeypatch.setenv("CONNLOG_EVENT_LOOP", "trio")
    with pytest.raises(ValueError, match="event_loop"):
        Settings()


async def test_the_tests_run_on_the_loop_the_services_run_on():
    services_loop = event_loop.loop_factory("auto")()
    services_loop.close()
    assert type(asyncio.get_running_loop()) is type(services_loop)
