"""JSON logs in the shape of spec §9.3, from our code and from libraries alike."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from opscaffold.manager import logging as manager_logging
from opscaffold.manager.config import ConfigError, LogFileSettings, LogSettings
from opscaffold.manager.kit.responses import request_id_var
from tests.manager.conftest import bearer, login

ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
SPEC_KEYS = {"level", "ts", "caller", "msg"}
ACCESS_KEYS = SPEC_KEYS | {"request_id", "method", "path", "status", "duration_ms", "ip"}


@contextmanager
def configured(settings: LogSettings) -> Iterator[None]:
    """Logging as the Manager configures it, then as it was (other tests print to the console).

    Used inside the test body, not a fixture: pytest attaches its capture handlers to the root
    logger per test phase, and a fixture's teardown would bring back the setup phase's.
    """
    root = logging.getLogger()
    uvicorn_access = logging.getLogger("uvicorn.access")
    handlers, level, access_disabled = root.handlers[:], root.level, uvicorn_access.disabled
    manager_logging.configure(settings)
    try:
        yield
    finally:
        structlog.reset_defaults()
        root.handlers[:] = handlers
        root.setLevel(level)
        uvicorn_access.disabled = access_disabled


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every non-empty line parsed: a line that is not JSON fails the test here."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def assert_spec_shape(line: dict[str, Any], caller_file: str) -> None:
    assert line.keys() >= SPEC_KEYS, line
    assert ISO_UTC.match(line["ts"]), line["ts"]
    logged_at = datetime.fromisoformat(line["ts"])
    assert logged_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - logged_at) < timedelta(minutes=1)
    assert re.fullmatch(rf"{re.escape(caller_file)}:\d+", line["caller"]), line["caller"]


async def test_request_writes_json_access_line(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = bearer((await login(client))["token"])
    capsys.readouterr()  # only this test's request matters
    with configured(LogSettings(level="info", format="json", output="stdout")):
        response = await client.get(
            "/api/v1/system/users/123", headers={**admin, "X-Request-ID": "trace-abc"}
        )
        out = capsys.readouterr().out

    [access] = [line for line in json_lines(out) if line["msg"] == "request"]
    assert access.keys() >= ACCESS_KEYS, access
    assert_spec_shape(access, "middleware.py")
    assert access["level"] == "info"
    assert access["request_id"] == "trace-abc"
    assert access["method"] == "GET"
    assert access["path"] == "/api/v1/system/users/123"
    assert access["status"] == response.status_code
    assert access["ip"] == "203.0.113.7"  # the client fixture's peer address
    assert isinstance(access["duration_ms"], int | float)
    assert access["duration_ms"] >= 0


async def test_lines_logged_during_a_request_carry_its_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with configured(LogSettings(level="info", format="json", output="stdout")):
        # What the middleware does for the length of a request.
        token = request_id_var.set("trace-def")
        try:
            manager_logging.get_logger("test").info("node registered", node_uuid="n-1")
            logging.getLogger("some.library").warning("library saw %s", "n-1")
        finally:
            request_id_var.reset(token)
        out = capsys.readouterr().out

    ours, library = json_lines(out)
    assert_spec_shape(ours, "test_logging.py")
    assert ours["msg"] == "node registered"
    assert ours["node_uuid"] == "n-1"
    assert ours["request_id"] == "trace-def"
    assert_spec_shape(library, "test_logging.py")
    assert library["msg"] == "library saw n-1"
    assert library["request_id"] == "trace-def"


async def test_standard_library_lines_are_json(capsys: pytest.CaptureFixture[str]) -> None:
    library = logging.getLogger("some.library")
    with configured(LogSettings(level="info", format="json", output="stdout")):
        library.info("disk %s is %d%% full", "/data", 91, extra={"mount": "/data"})
        try:
            raise ZeroDivisionError("division by zero")
        except ZeroDivisionError:
            library.exception("sampling failed")
        out = capsys.readouterr().out

    info, error = json_lines(out)
    assert_spec_shape(info, "test_logging.py")
    assert info["level"] == "info"
    assert info["msg"] == "disk /data is 91% full"
    assert info["mount"] == "/data"
    assert "request_id" not in info  # outside a request there is none
    assert_spec_shape(error, "test_logging.py")
    assert error["level"] == "error"
    assert error["msg"] == "sampling failed"
    # The traceback as text, not the repr of an exc_info tuple.
    assert "exc_info" not in error
    assert error["exception"].startswith("Traceback (most recent call last):")
    assert "ZeroDivisionError: division by zero" in error["exception"]


async def test_level_filters_both_loggers(capsys: pytest.CaptureFixture[str]) -> None:
    with configured(LogSettings(level="warning", format="json", output="stdout")):
        manager_logging.get_logger("test").info("dropped")
        logging.getLogger("some.library").info("dropped too")
        manager_logging.get_logger("test").warning("kept")
        logging.getLogger("some.library").error("kept too")
        out = capsys.readouterr().out

    assert [line["msg"] for line in json_lines(out)] == ["kept", "kept too"]


async def test_output_stderr_leaves_stdout_alone(capsys: pytest.CaptureFixture[str]) -> None:
    with configured(LogSettings(level="info", format="json", output="stderr")):
        manager_logging.get_logger("test").info("to stderr")
        logging.getLogger("some.library").warning("library to stderr")
        captured = capsys.readouterr()

    assert captured.out == ""
    assert [line["msg"] for line in json_lines(captured.err)] == ["to stderr", "library to stderr"]


async def test_log_file_gets_json_lines_while_the_console_keeps_its_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "logs" / "manager.log"
    file = LogFileSettings(enabled=True, path=path)
    with configured(LogSettings(level="info", format="console", output="stdout", file=file)):
        manager_logging.get_logger("test").info("node registered", node_uuid="n-1")
        logging.getLogger("some.library").warning("library saw %s", "n-1")
        out = capsys.readouterr().out

    ours, library = json_lines(path.read_text(encoding="utf-8"))
    assert_spec_shape(ours, "test_logging.py")
    assert (ours["msg"], ours["node_uuid"]) == ("node registered", "n-1")
    assert_spec_shape(library, "test_logging.py")
    assert library["msg"] == "library saw n-1"
    assert "node registered" in out
    assert not out.lstrip().startswith("{")  # the console stays in its own format


async def test_log_file_rotates_and_keeps_what_it_is_told(tmp_path: Path) -> None:
    path = tmp_path / "manager.log"
    expired = tmp_path / "manager.log.7"
    expired.write_text("from long ago\n")
    long_ago = time.time() - 40 * 86_400
    os.utime(expired, (long_ago, long_ago))
    file = LogFileSettings(enabled=True, path=path, max_size=1, max_backups=2, max_age=30)
    with configured(LogSettings(level="info", format="json", output="stdout", file=file)):
        assert not expired.exists()  # older than max_age
        log = manager_logging.get_logger("test")
        for index in range(3 * 1024):  # about 3 MB: rotates at 1 MB
            log.info("filler", index=index, padding="x" * 900)

    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "manager.log",
        "manager.log.1",
        "manager.log.2",
    ]
    for name in ("manager.log", "manager.log.1"):
        size = (tmp_path / name).stat().st_size
        assert 0 < size <= 1024 * 1024
        assert json_lines((tmp_path / name).read_text(encoding="utf-8"))


async def test_an_unwritable_log_file_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    file = LogFileSettings(enabled=True, path=blocker / "manager.log")
    # Refused before anything is configured, so nothing here needs undoing.
    with pytest.raises(ConfigError, match=r"log\.file\.path: cannot write"):
        manager_logging.configure(LogSettings(file=file))
