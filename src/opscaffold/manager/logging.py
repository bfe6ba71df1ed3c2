"""JSON logs in the shape of spec §9.3: level, ts, caller, msg, request_id and fields."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from opscaffold.manager.config import LogSettings
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
    level = getattr(logging, settings.level.upper())
    stream = sys.stdout if settings.output == "stdout" else sys.stderr
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if settings.format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
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
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            _rename_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    # Libraries log through the standard library: render their lines the same way.
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                # A library's exc_info arrives as a raw tuple: render it as a traceback string.
                structlog.processors.format_exc_info,
                _rename_event,
                renderer,
            ],
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("uvicorn.access").disabled = True  # our middleware logs each request


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
