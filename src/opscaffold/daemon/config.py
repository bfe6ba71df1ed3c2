"""The daemon's settings: an optional YAML file, then command-line flags on top."""

from __future__ import annotations

import uuid as uuid_lib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from opscaffold.daemon.link import TlsFiles, parse_target

DEFAULT_AGENT_PORT = 9100  # the design's default Agent port


class ConfigError(ValueError):
    pass


class TlsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ca: Path | None = None  # pinned CA of the Manager; TLS is on when set
    cert: Path | None = None  # client certificate and key: mTLS, the certificate names the node
    key: Path | None = None
    server_name: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> TlsSettings:
        if (self.cert is None) != (self.key is None):
            raise ValueError("tls.cert and tls.key go together")
        if self.cert is not None and self.ca is None:
            raise ValueError("mTLS needs tls.ca, the CA that signed the Manager's certificate")
        return self

    def files(self) -> TlsFiles | None:
        if self.ca is None:
            return None
        return TlsFiles(self.ca, self.cert, self.key, self.server_name)


class DaemonConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    manager: str  # HOST:PORT of the Manager's gRPC service
    enrollment_token: SecretStr | None = None
    uuid: str | None = None  # fixed node uuid (mTLS: the one the certificate names)
    re_enroll: bool = False  # ignore the stored node token once and enroll again
    state_dir: Path = Path("daemon-state")
    agent_port: int = Field(DEFAULT_AGENT_PORT, ge=1, le=65535)
    agent_host: str = "0.0.0.0"
    labels: dict[str, str] = Field(default_factory=dict)
    transport: Literal["connect", "unary"] = "connect"
    tls: TlsSettings = Field(default_factory=TlsSettings)
    # Used until the Manager's Register answer names its own.
    heartbeat_interval: float = Field(30.0, ge=1)
    metric_interval: float = Field(60.0, ge=1)
    jitter: float = Field(0.1, ge=0, le=0.5)
    buffer_size: int = Field(10_000, ge=1)
    call_timeout: float = Field(10.0, gt=0)
    ack_timeout: float = Field(60.0, gt=0)
    backoff_cap: float = Field(30.0, ge=1)
    agent_stop_grace: float = Field(5.0, gt=0)
    # PEM public keys whose signatures on packages this node accepts; copied into
    # state_dir/trusted-keys on start, and only those are ever read.
    trusted_keys: list[Path] = Field(default_factory=list)
    # The Manager's task-signing public key (PEM), pinned at install; none: the key the
    # Manager names at first enrollment is pinned then (and never replaced by it later).
    manager_key: Path | None = None
    # Bytes of a task's output kept; at most 3 MiB, so a result fits one gRPC message (4 MiB).
    task_output_cap: int = Field(1024 * 1024, ge=1024, le=3 * 1024 * 1024)
    task_file_dirs: list[Path] = Field(default_factory=list)  # where file tasks may write
    keep_versions: int = Field(3, ge=2)  # installed versions kept per component, current included
    update_health_timeout: float = Field(30.0, gt=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("manager")
    @classmethod
    def _target(cls, value: str) -> str:
        parse_target(value)
        return value

    @field_validator("uuid")
    @classmethod
    def _uuid(cls, value: str | None) -> str | None:
        return None if value is None else str(uuid_lib.UUID(value))

    @property
    def mutual_tls(self) -> bool:
        return self.tls.cert is not None


def load_config(file: Path | None, overrides: Mapping[str, Any]) -> DaemonConfig:
    """Settings from `file` (YAML, keys as DaemonConfig's) with `overrides` on top; None
    values in `overrides` mean "not given". Nested keys are written `tls.ca`."""
    data = _read_yaml(file) if file is not None else {}
    for key, value in overrides.items():
        if value is None:
            continue
        section, _, name = key.rpartition(".")
        target = data.setdefault(section, {}) if section else data
        target[name] = value
    try:
        return DaemonConfig.model_validate(data)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def _read_yaml(file: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {file}: {exc}") from exc
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"{file} must hold a mapping of settings")
    return document


def split_labels(text: str) -> dict[str, str]:
    """`k=v,k2=v2` → {"k": "v", "k2": "v2"}."""
    labels: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"label {pair!r} is not key=value")
        labels[key.strip()] = value.strip()
    return labels
