"""The event loop the processes run on: uvloop where installed, asyncio's on request or where
there is no uvloop (Windows), and a clear refusal for a loop that cannot run."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import warnings

import pytest

from certrotate_shared import event_loop
from certrotate_shared.event_loop import EventLoopError
from certrotate_shared.settings import SettingsError, load_settings
from tests.support.processes import REPO


async def loop_name() -> str:
    await asyncio.sleep(0)
    return event_loop.running_loop_name()


def test_auto_runs_on_uvloop_where_it_is_installed() -> None:
    assert event_loop.run(loop_name(), "auto") == "uvloop"
    assert event_loop.run(loop_name(), "uvloop") == "uvloop"


def test_asyncio_runs_on_asyncios_own_loop() -> None:
    assert event_loop.run(loop_name(), "asyncio") == "asyncio"


def test_without_a_choice_the_variable_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTROTATE_EVENT_LOOP", "asyncio")
    assert event_loop.run(loop_name()) == "asyncio"
    monkeypatch.delenv("CERTROTATE_EVENT_LOOP")
    assert event_loop.run(loop_name()) == "uvloop"


def test_a_typo_is_refused_naming_the_variable_and_the_choices() -> None:
    coroutine = loop_name()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "coroutine was never awaited" on the way out
        with pytest.raises(EventLoopError) as refused:
            event_loop.run(coroutine, "uv-loop")
    assert str(refused.value) == (
        "CERTROTATE_EVENT_LOOP='uv-loop': expected one of auto, uvloop, asyncio"
    )


def test_without_uvloop_auto_falls_back_and_uvloop_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # what an import finds on Windows
    assert event_loop.run(loop_name(), "auto") == "asyncio"
    with pytest.raises(EventLoopError, match=r"uvloop is not installed .*Windows"):
        event_loop.run(loop_name(), "uvloop")


def test_the_service_settings_refuse_an_unknown_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    from replication.settings import Settings

    monkeypatch.setenv("CERTROTATE_REPLICATION_EVENT_LOOP", "uv-loop")
    with pytest.raises(SettingsError, match="CERTROTATE_REPLICATION_EVENT_LOOP"):
        load_settings(Settings)


def test_a_service_started_with_an_unknown_loop_exits_2_saying_which_variable() -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "CERTROTATE_EVENT_LOOP": "uv-loop"}
    done = subprocess.run(
        [sys.executable, "-m", "replication"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert "CERTROTATE_REPLICATION_EVENT_LOOP (or CERTROTATE_EVENT_LOOP)" in done.stderr
    assert "Traceback" not in done.stderr
