"""JSON logs in the shape of spec §9.3: level, ts, caller, msg, request_id and fields; on the
console and, when `log.file.enabled`, in a rotated file."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import MutableMapping
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

import structlog

from opscaffold.manager.config import ConfigError, LogFileSettings, LogSettings
from opscaffold.manager.kit.responses import request_id_var


def _add_request_id(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    request_id = request_id_var.get()
    if request_id:
        event.setdefault("request_id", request_id)
    return event


def _caller(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    filename = event.pop("filename", None)
    lineno = event.pop("lineno", None)
    if filename:
        event["caller"] = f"{filename}:{lineno}"
    return event


def _rename_event(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event["msg"] = event.pop("event", "")
    event.pop("color_message", None)  # uvicorn's ANSI-coloured duplicate of the message
    return event


def configure(settings: LogSettings) -> None:
    """Route our structlog lines and libraries' standard-library lines to the same handlers:
    the console (in `format`) and, with `file.enabled`, a rotated JSON file."""
    level = getattr(logging, settings.level.upper())
    stream = sys.stdout if settings.output == "stdout" else sys.stderr
    console: Any = (
        structlog.processors.JSONRenderer()
        if settings.format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    handlers: list[logging.Handler] = [logging.StreamHandler(stream)]
    handlers[0].setFormatter(_formatter(console))
    if settings.file.enabled:  # first: a file that cannot be opened changes nothing
        handlers.append(_file_handler(settings.file))
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("uvicorn.access").disabled = True  # our middleware logs each request


_SHARED: list[Any] = [
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
    structlog.processors.CallsiteParameterAdder(
        [
            structlog.processors.CallsiteParameter.FILENAME,
            structlog.processors.CallsiteParameter.LINENO,
        ]
    ),
    _caller,
    _add_request_id,
]


def _formatter(renderer: Any) -> logging.Formatter:
    return structlog.stdlib.ProcessorFormatter(
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # A library's exc_info arrives as a raw tuple: render it as a traceback string.
            structlog.processors.format_exc_info,
            _rename_event,
            renderer,
        ],
        foreign_pre_chain=[*_SHARED, structlog.stdlib.ExtraAdder()],
    )


def _file_handler(settings: LogFileSettings) -> logging.Handler:
    try:
        settings.path.parent.mkdir(parents=True, exist_ok=True)
        handler = _RotatingFile(settings)
    except OSError as exc:
        raise ConfigError([f"log.file.path: cannot write {settings.path} ({exc})"]) from exc
    handler.setFormatter(_formatter(structlog.processors.JSONRenderer()))
    return handler


class _RotatingFile(RotatingFileHandler):
    """Rotated at `max_size` MB, keeping `max_backups` files, none older than `max_age` days."""

    def __init__(self, settings: LogFileSettings) -> None:
        super().__init__(
            settings.path,
            maxBytes=settings.max_size * 1024 * 1024,
            backupCount=settings.max_backups,
            encoding="utf-8",
        )
        self.max_age_s = settings.max_age * 86_400
        self._remove_expired()

    def doRollover(self) -> None:
        super().doRollover()
        self._remove_expired()

    def _remove_expired(self) -> None:
        path = Path(self.baseFilename)
        oldest = time.time() - self.max_age_s
        for backup in path.parent.glob(f"{path.name}.*"):
            suffix = backup.name.removeprefix(f"{path.name}.")
            with contextlib.suppress(OSError):  # gone already, or not ours to remove
                if suffix.isdigit() and backup.stat().st_mtime < oldest:
                    backup.unlink()


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
