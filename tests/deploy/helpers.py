"""Shared by the deployment tests: the Settings object seen from the environment."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel

from opscaffold.manager.config import ConfigError, Settings, load_settings
from opscaffold.protocol.ops.daemon import daemon_pb2

GRPC_SERVICES = {
    daemon_pb2.DESCRIPTOR.services_by_name["DaemonService"].full_name,
    "grpc.health.v1.Health",
}
# Read by the CLI (ops-manager --config), not a setting.
CLI_VARIABLES = {"OPS_CONFIG"}


def setting_of(variable: str) -> str | None:
    """The dotted Settings key an OPS_ variable sets, or None when it names none (the
    loader skips such a variable silently, so a typo would go unnoticed)."""
    path = variable.removeprefix("OPS_").lower().split("__")
    model: type[BaseModel] = Settings
    for index, part in enumerate(path):
        field = model.model_fields.get(part)
        if field is None:
            return None
        section = field.annotation
        is_section = isinstance(section, type) and issubclass(section, BaseModel)
        if index == len(path) - 1:
            return None if is_section else ".".join(path)
        if not (isinstance(section, type) and issubclass(section, BaseModel)):
            return None
        model = section
    return None


def load(environ: Mapping[str, str]) -> Settings:
    """Settings as the Manager would load them from this environment (no config file)."""
    try:
        return load_settings(None, environ)
    except ConfigError as exc:  # the message names every key at fault
        raise AssertionError(str(exc)) from None


def image_environment() -> dict[str, str]:
    """The OPS_ variables the Dockerfile's ENV sets: every container of the image has them."""
    text = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text()
    joined = re.sub(r"\\\n\s*", " ", text)
    found = {}
    for line in joined.splitlines():
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                name, _, value = pair.partition("=")
                if name.startswith("OPS_"):
                    found[name] = value
    return found
