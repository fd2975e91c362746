"""Structured logs: one ``key=value`` line per event, on the standard error of the moment."""

from __future__ import annotations

import io
import logging

import pytest

from runtime import logs


@pytest.fixture
def restored_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_line_goes_to_the_standard_error_of_the_moment(monkeypatch, restored_logging):
    # CI: a command run in one test set the handler up on that test's captured stderr; a
    # service of a later test logged into it once closed: a "Logging error" traceback.
    first = io.StringIO()
    monkeypatch.setattr("sys.stderr", first)
    logs.setup()
    first.close()
    now = io.StringIO()
    monkeypatch.setattr("sys.stderr", now)
    logs.Log("tocsin.test").warning("nats disconnected", client="agent")
    line = now.getvalue()
    assert "level=warning logger=tocsin.test msg='nats disconnected' client='agent'" in line


def test_quiet_by_default_and_louder_when_asked(monkeypatch, restored_logging):
    out = io.StringIO()
    monkeypatch.setattr("sys.stderr", out)
    monkeypatch.delenv("TOCSIN_LOG_LEVEL", raising=False)
    logs.setup()
    logs.Log("tocsin.test").info("hidden")
    monkeypatch.setenv("TOCSIN_LOG_LEVEL", "info")
    logs.setup()
    logs.Log("tocsin.test").info("shown", n=3)
    assert "hidden" not in out.getvalue() and "msg='shown' n=3" in out.getvalue()
