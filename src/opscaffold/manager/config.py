"""The Manager's settings: one typed object from embedded defaults, a YAML file and the environment.

Order of precedence, lowest first: the defaults below, the YAML file named by `--config` (none
by default; `${VAR}` / `${VAR:default}` are substituted in its strings), then environment
variables `OPS_<SECTION>__<KEY>` such as `OPS_DATABASE__HOST`. `configs/config.example.yaml`
documents every key.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal, Self, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from argon2.profiles import get_default_parameters
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

Environment = Literal["development", "production"]


class ConfigError(Exception):
    """The configuration cannot be used; `problems` holds one "key.path: what is wrong" each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  {p}" for p in problems))


class _Problems(ValueError):
    """Findings of one model validator as (key relative to that model, problem) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{key}: {problem}" for key, problem in problems))


def _raise_if_any(problems: list[tuple[str, str]]) -> None:
    if problems:
        raise _Problems(problems)


# --- value types -------------------------------------------------------------------------------

_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_DURATION_PART = re.compile(rf"({_NUMBER})(ns|us|µs|ms|s|m|h|d)")
_DURATION = re.compile(rf"(?:{_DURATION_PART.pattern})+")


def parse_duration(value: object) -> timedelta:
    """A duration from Go-style text ("90s", "1h30m", "500ms", also "7d") or plain seconds."""
    seconds = _duration_seconds(value)
    if seconds is None:
        raise ValueError(f"invalid duration {value!r} (use e.g. 90s, 5m, 2h)")
    if seconds < 0:
        raise ValueError(f"duration must not be negative, got {value!r}")
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"duration {value!r} is too large") from None


def _duration_seconds(value: object) -> float | None:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool):  # an int subclass, but `true` is no duration
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    sign = -1.0 if text.startswith("-") else 1.0
    body = text[1:] if text.startswith(("-", "+")) else text
    if re.fullmatch(_NUMBER, body):
        return sign * float(body)
    if not _DURATION.fullmatch(body):
        return None
    parts = _DURATION_PART.findall(body)
    return sign * sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)


def _positive(value: timedelta) -> timedelta:
    # Every duration here is a timeout, interval or lifetime: zero would mean a busy loop or an
    # instantly expired token, never "disabled".
    if value <= timedelta(0):
        raise ValueError("duration must be greater than zero")
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_positive)]
PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Port = Annotated[int, Field(ge=1, le=65535)]

_HOSTNAME = re.compile(r"[A-Za-z0-9.-]*")
_ADDR_HELP = "use host:port, e.g. :8080, 127.0.0.1:8080 or [::1]:8080"


def split_addr(addr: str) -> tuple[str, int]:
    """Host and port of a listen address; an empty host (":8080") means all IPv4 interfaces."""
    host, colon, port_text = addr.rpartition(":")
    if not colon or not re.fullmatch(r"\d{1,5}", port_text) or int(port_text) > 65535:
        raise ValueError(f"invalid address {addr!r} ({_ADDR_HELP})")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"invalid IPv6 address in {addr!r} ({_ADDR_HELP})") from None
    elif not _HOSTNAME.fullmatch(host):
        raise ValueError(f"invalid host in {addr!r} ({_ADDR_HELP}; IPv6 needs brackets)")
    return host or "0.0.0.0", int(port_text)


def _valid_addr(addr: str) -> str:
    split_addr(addr)
    return addr


def _valid_network(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"not an IP address or CIDR: {value!r}") from None
    return value


def _valid_time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"not an IANA time zone: {value!r} (e.g. UTC, Asia/Shanghai)") from None
    return value


def _number_to_text(value: object) -> object:
    # YAML reads an unquoted `1.2` as a float.
    return str(value) if isinstance(value, float) else value


# TLS 1.2 suites both listeners can use (OpenSSL names, which grpc's BoringSSL knows too):
# forward-secret AEAD ones only.
CipherSuite = Literal[
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
]
Addr = Annotated[str, AfterValidator(_valid_addr)]
Network = Annotated[str, AfterValidator(_valid_network)]
TimeZoneName = Annotated[str, AfterValidator(_valid_time_zone)]
TlsVersion = Annotated[Literal["1.2", "1.3"], BeforeValidator(_number_to_text)]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name may resolve to anything


# --- sections ----------------------------------------------------------------------------------


class _Section(BaseModel):
    # Numbers become text where text is expected: YAML reads `password: 123456` as an int.
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_means_unset(cls, data: object) -> object:
        # `${VAR}` with VAR unset gives "", which for an optional key means "not set".
        if not isinstance(data, dict):
            return data
        return {
            key: None if value == "" and cls._optional(key) else value
            for key, value in data.items()
        }

    @classmethod
    def _optional(cls, key: object) -> bool:
        field = cls.model_fields.get(key) if isinstance(key, str) else None
        return field is not None and type(None) in get_args(field.annotation)


class HttpSettings(_Section):
    addr: Addr = ":8080"
    # A request's head, then its whole body, must each arrive within read_timeout (else the
    # connection is closed; for the body after a 408); each part of a response must be taken
    # by the client within write_timeout (else the connection is closed). Idle keep-alive
    # connections are closed after 5 s.
    read_timeout: Duration = timedelta(seconds=30)
    write_timeout: Duration = timedelta(seconds=30)
    # Bytes; a larger body is refused with 413 before it is read. Routes that take uploads
    # are declared as such and allow max_upload_size instead.
    max_body_size: PositiveInt = 1024 * 1024
    max_upload_size: PositiveInt = 1024 * 1024 * 1024
    cors_origins: list[str] = []
    trusted_proxies: list[Network] = []
    # The base URL daemons reach this API at (package downloads in update orders); none:
    # http://<addr>, with a loopback host when addr binds every interface.
    public_url: str | None = Field(None, pattern=r"^https?://[^/\s]+(/[^\s]*)?$")

    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host, port = split_addr(self.addr)
        if host == "0.0.0.0":
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"


class GrpcSettings(_Section):
    addr: Addr = ":9090"
    max_recv_msg_size: PositiveInt = 10 * 1024 * 1024
    max_send_msg_size: PositiveInt = 10 * 1024 * 1024


class ServerSettings(_Section):
    http: HttpSettings = Field(default_factory=HttpSettings)
    grpc: GrpcSettings = Field(default_factory=GrpcSettings)


_DEFAULT_DB_PORTS = {"mysql": 3306, "postgres": 5432}


class DatabaseSettings(_Section):
    driver: Literal["sqlite", "mysql", "postgres"] = "sqlite"
    path: Path | None = None
    host: str = "localhost"
    port: Port | None = None
    user: str = "manager"
    password: SecretStr = SecretStr("")
    name: str = "ops_scaffold"
    max_open_conns: PositiveInt = 100
    max_idle_conns: NonNegativeInt = 10
    conn_max_lifetime: Duration = timedelta(hours=1)
    # A stalled database must fail a request fast (503) rather than hold it past its timeout.
    connect_timeout: Duration = timedelta(seconds=5)
    statement_timeout: Duration = timedelta(seconds=10)
    pool_timeout: Duration = timedelta(seconds=5)
    auto_migrate: bool | None = None

    @model_validator(mode="after")
    def _default_port(self) -> Self:
        if self.port is None:
            self.port = _DEFAULT_DB_PORTS.get(self.driver)
        return self

    def sqlite_path(self, data_dir: Path) -> Path:
        return self.path if self.path is not None else data_dir / "manager.db"

    def migrate_on_start(self, env: Environment) -> bool:
        # In production migrating is a deployment step, so replicas never race on the schema.
        if self.auto_migrate is not None:
            return self.auto_migrate
        return env == "development"


class RedisSettings(_Section):
    enabled: bool = False
    host: str = "localhost"
    port: Port = 6379
    password: SecretStr = SecretStr("")
    db: NonNegativeInt = 0
    pool_size: PositiveInt = 100


class JwtSettings(_Section):
    access_secret: SecretStr = SecretStr("")
    refresh_secret: SecretStr = SecretStr("")
    access_ttl: Duration = timedelta(hours=2)
    refresh_ttl: Duration = timedelta(hours=168)
    issuer: str = "ops-scaffold"
    audience: str = "ops-scaffold-api"


_NO_OAUTH2 = "OAuth2 sign-in is not available yet (users sign in with a password)"


class OAuth2Settings(_Section):
    enabled: bool = False
    provider: str = ""
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")

    @model_validator(mode="after")
    def _not_available_yet(self) -> Self:
        # Refused rather than ignored: a deployment counting on single sign-on must not start
        # believing it has it.
        problems = [("enabled", f"must be false: {_NO_OAUTH2}")] if self.enabled else []
        values = {
            "provider": self.provider,
            "client_id": self.client_id,
            "client_secret": self.client_secret.get_secret_value(),
        }
        problems += [(key, f"must be empty: {_NO_OAUTH2}") for key, v in values.items() if v]
        _raise_if_any(problems)
        return self


class PasswordSettings(_Section):
    min_length: PositiveInt = 10
    # None keeps the argon2-cffi default; only tests lower these.
    argon2_time_cost: PositiveInt | None = None
    argon2_memory_cost: PositiveInt | None = None  # KiB
    argon2_parallelism: PositiveInt | None = None


class LoginThrottleSettings(_Section):
    max_failures_per_account: PositiveInt = 5
    max_failures_per_ip: PositiveInt = 20
    window: Duration = timedelta(minutes=15)


class AuthSettings(_Section):
    jwt: JwtSettings = Field(default_factory=JwtSettings)
    oauth2: OAuth2Settings = Field(default_factory=OAuth2Settings)
    password: PasswordSettings = Field(default_factory=PasswordSettings)
    login_throttle: LoginThrottleSettings = Field(default_factory=LoginThrottleSettings)


class TlsSettings(_Section):
    enabled: bool = False
    cert_file: Path | None = None
    key_file: Path | None = None
    ca_file: Path | None = None
    min_version: TlsVersion = "1.2"
    cipher_suites: list[CipherSuite] = []  # TLS 1.2 only; TLS 1.3 suites are all acceptable
    terminated_by_proxy: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems = []
        if self.enabled:
            files = {"cert_file": self.cert_file, "key_file": self.key_file}
            problems += [
                (key, "must be set when tls.enabled is true")
                for key, v in files.items()
                if v is None
            ]
        if self.min_version == "1.3" and self.cipher_suites:
            problems.append(
                (
                    "cipher_suites",
                    'must be empty with tls.min_version "1.3": it lists TLS 1.2 suites',
                )
            )
        _raise_if_any(problems)
        return self


class LocalStorageSettings(_Section):
    path: Path | None = None


class S3Settings(_Section):
    bucket: str = ""
    region: str = ""
    access_key: str = ""
    secret_key: SecretStr = SecretStr("")


class StorageSettings(_Section):
    type: Literal["local", "s3", "oss"] = "local"
    local: LocalStorageSettings = Field(default_factory=LocalStorageSettings)
    s3: S3Settings = Field(default_factory=S3Settings)
    # The RSA key (PEM) the Manager signs package manifests with; none: one is generated at
    # first start and kept in data_dir/secrets/signing_key.pem.
    signing_key_file: Path | None = None
    # Public keys (PEM) of offline signers whose signatures an upload may carry, beside the
    # Manager's own key.
    trusted_keys: list[Path] = []

    @model_validator(mode="after")
    def _local_only_for_now(self) -> Self:
        # Refused rather than ignored: packages would land on local disk unnoticed.
        problems = []
        if self.type != "local":
            problems.append(("type", f"{self.type!r} is not available yet; use local"))
        values = {
            "bucket": self.s3.bucket,
            "region": self.s3.region,
            "access_key": self.s3.access_key,
            "secret_key": self.s3.secret_key.get_secret_value(),
        }
        problems += [
            (f"s3.{key}", "must be empty: object storage (s3, oss) is not available yet")
            for key, value in values.items()
            if value
        ]
        _raise_if_any(problems)
        return self


class NodeSettings(_Section):
    heartbeat_timeout: Duration = timedelta(seconds=90)
    offline_check_interval: Duration = timedelta(seconds=30)
    heartbeat_interval: Duration = timedelta(seconds=30)
    metric_interval: Duration = timedelta(seconds=60)

    @model_validator(mode="after")
    def _timeout_outlasts_interval(self) -> Self:
        # Otherwise every healthy node would flap offline between two heartbeats.
        if self.heartbeat_timeout <= self.heartbeat_interval:
            interval = f"{self.heartbeat_interval.total_seconds():g}s"
            problem = f"must be longer than node.heartbeat_interval ({interval})"
            _raise_if_any([("heartbeat_timeout", problem)])
        return self


class MetricsSettings(_Section):
    retention_days: PositiveInt = 30  # 5-minute rollups
    raw_retention_days: PositiveInt = 2  # raw reports
    rollup_interval: Duration = timedelta(seconds=60)  # how often complete buckets are rolled up
    # A bucket is rolled up this long after it ends; reports arriving later roll it up again.
    rollup_delay: Duration = timedelta(seconds=60)
    partition_days_ahead: PositiveInt = 3  # day partitions made before they are needed

    @model_validator(mode="after")
    def _rollups_outlive_raw_rows(self) -> Self:
        if self.raw_retention_days > self.retention_days:
            problem = f"must not exceed metrics.retention_days ({self.retention_days})"
            _raise_if_any([("raw_retention_days", problem)])
        return self


class RolloutSettings(_Section):
    tick_interval: Duration = timedelta(seconds=5)  # how often rollouts are advanced
    # A node's update under way (downloading, installing, verifying) with no report for this
    # long has failed: its daemon died or lost the order.
    stuck_after: Duration = timedelta(minutes=30)


class SmtpSettings(_Section):
    """The mail server alert emails go through; no host: email channels cannot send."""

    host: str = ""
    port: Port = 587
    username: str = ""
    password: SecretStr = SecretStr("")
    from_address: str = ""
    security: Literal["starttls", "tls", "none"] = "starttls"
    ca_file: Path | None = None  # CA bundle (PEM) to verify the server with; none: the system's
    timeout: Duration = timedelta(seconds=10)

    @model_validator(mode="after")
    def _sender_when_host(self) -> Self:
        if self.host and "@" not in self.from_address:
            _raise_if_any([("from_address", "must be an email address when smtp.host is set")])
        return self


class NotifySettings(_Section):
    interval: Duration = timedelta(seconds=5)  # how often due notifications are sent
    timeout: Duration = timedelta(seconds=10)  # the whole of one delivery attempt
    max_attempts: PositiveInt = 5  # then the delivery has failed
    # Retries wait backoff_base * 2^(attempt-1), jittered, at most backoff_max.
    backoff_base: Duration = timedelta(seconds=10)
    backoff_max: Duration = timedelta(minutes=30)
    concurrency: PositiveInt = 16  # deliveries in flight at once per Manager
    batch_size: PositiveInt = 200  # deliveries claimed at once
    # Outbound webhooks and robots may not reach loopback, link-local, private, shared or
    # reserved addresses unless allowed here (the Manager's own network is not a target).
    allow_private_networks: bool = False
    allowed_networks: list[Network] = []
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)


class DashboardSettings(_Section):
    # How old the dashboard's fleet-wide figures may be when served (see dashboard/cache.py).
    max_age: Duration = timedelta(seconds=5)


class AlertSettings(_Section):
    evaluation_interval: Duration = timedelta(seconds=30)  # how often rules are evaluated
    # A node's latest metrics older than this are no data: its metric rules do not hold
    # (a node that stopped reporting does not keep a high-CPU alert firing forever).
    metric_stale_after: Duration = timedelta(minutes=5)
    notify: NotifySettings = Field(default_factory=NotifySettings)


class TaskSettings(_Section):
    # The Ed25519 key (PEM) task envelopes are signed with; none: one is generated at first
    # start and kept in data_dir/secrets/task_signing_key.pem. Daemons pin its public key.
    signing_key_file: Path | None = None
    # How long an execution's envelope waits for an offline node before it is void.
    dispatch_ttl: Duration = timedelta(minutes=10)
    # An execution with no final result this long after its deadline has timed out.
    timeout_grace: Duration = timedelta(seconds=30)
    check_interval: Duration = timedelta(seconds=5)  # how often deadlines are checked
    # How often tasks whose cron schedule is due are looked for (one indexed query each time).
    schedule_interval: Duration = timedelta(seconds=5)
    # A scheduled fire not started within this long of its time was missed (no Manager ran):
    # the task's `misfire` says whether it runs once late or waits for its next time.
    misfire_grace: Duration = timedelta(seconds=60)
    # The zone cron expressions are read in ("0 3 * * *": 03:00 there); times stay UTC.
    cron_timezone: TimeZoneName = "UTC"

    @model_validator(mode="after")
    def _fires_can_be_on_time(self) -> Self:
        # A fire is on time when a pass starts within the grace; passes further apart than
        # that would count every fire as missed.
        if self.misfire_grace < self.schedule_interval:
            _raise_if_any(
                [
                    (
                        "misfire_grace",
                        "must be at least task.schedule_interval, or every "
                        "scheduled fire would count as missed",
                    )
                ]
            )
        return self

    # Each node's envelope carries the whole content: an execution whose envelopes would
    # together exceed this many bytes in the outbox is refused (split the target).
    max_dispatch_bytes: PositiveInt = 512 * 1024 * 1024
    # Readers of a running execution's output look for new parts this often, whatever the
    # wake-ups (Redis pub/sub between replicas) say.
    output_poll_interval: Duration = timedelta(seconds=2)


class LogFileSettings(_Section):
    enabled: bool = False
    path: Path = Path("./logs/manager.log")
    max_size: PositiveInt = 100  # MB
    max_backups: NonNegativeInt = 10
    max_age: PositiveInt = 30  # days


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "json"
    output: Literal["stdout", "stderr"] = "stdout"
    file: LogFileSettings = Field(default_factory=LogFileSettings)


class RateLimitSettings(_Section):
    enabled: bool = True
    per_ip_per_minute: PositiveInt = 600
    per_user_per_minute: PositiveInt = 1200


class Settings(_Section):
    env: Environment = "development"
    data_dir: Path = Path("./data")
    admin_password: SecretStr | None = None
    # The enrollment token daemons present at Register (OPS_ENROLLMENT_TOKEN); none: one is
    # generated at first start and kept under data_dir/secrets.
    enrollment_token: SecretStr | None = None
    server: ServerSettings = Field(default_factory=ServerSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    tls: TlsSettings = Field(default_factory=TlsSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    node: NodeSettings = Field(default_factory=NodeSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    rollout: RolloutSettings = Field(default_factory=RolloutSettings)
    alert: AlertSettings = Field(default_factory=AlertSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    task: TaskSettings = Field(default_factory=TaskSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)

    @model_validator(mode="after")
    def _resolve_and_check(self) -> Self:
        self.database.path = self.database.sqlite_path(self.data_dir)
        if self.storage.local.path is None:
            self.storage.local.path = self.data_dir / "versions"
        if self.env == "production":
            _raise_if_any(_production_problems(self))
        return self


# --- production refusals -----------------------------------------------------------------------

# HS256 wants a key of at least 256 bits (RFC 7518 §3.2).
_MIN_JWT_SECRET_LENGTH = 32
_KNOWN_DEFAULT_PASSWORDS = frozenset(
    {
        "admin",
        "admin123",
        "administrator",
        "changeme",
        "change-me",
        "default",
        "letmein",
        "ops-scaffold",
        "passw0rd",
        "password",
        "password1",
        "password123",
        "qwerty",
        "qwerty123",
        "root",
        "secret",
        "123456",
        "12345678",
        "123456789",
        "1234567890",
    }
)


def _production_problems(settings: Settings) -> list[tuple[str, str]]:
    return [
        *_jwt_problems(settings.auth.jwt),
        *_admin_password_problems(settings),
        *_plaintext_listener_problems(settings),
        *_argon2_problems(settings.auth.password),
        *_signing_key_problems(settings.storage),
        *_task_key_problems(settings.task),
    ]


def _signing_key_problems(storage: StorageSettings) -> list[tuple[str, str]]:
    # Every replica must sign with the one key daemons are installed to trust; a key each
    # generated under its own data_dir would sign packages no daemon accepts.
    if storage.signing_key_file is None:
        key = "storage.signing_key_file"
        return [(key, f"must be set in production (e.g. via {_env_name(key)})")]
    return []


def _task_key_problems(task: TaskSettings) -> list[tuple[str, str]]:
    # As for packages: every replica signs envelopes with the one key the daemons pinned.
    if task.signing_key_file is None:
        key = "task.signing_key_file"
        return [(key, f"must be set in production (e.g. via {_env_name(key)})")]
    return []


def _jwt_problems(jwt: JwtSettings) -> list[tuple[str, str]]:
    problems = []
    secrets = {"access_secret": jwt.access_secret, "refresh_secret": jwt.refresh_secret}
    for name, secret in secrets.items():
        key = f"auth.jwt.{name}"
        length = len(secret.get_secret_value())
        if length == 0:
            problems.append((key, f"must be set in production (e.g. via {_env_name(key)})"))
        elif length < _MIN_JWT_SECRET_LENGTH:
            minimum = _MIN_JWT_SECRET_LENGTH
            problems.append((key, f"must be at least {minimum} characters, got {length}"))
    if jwt.access_secret.get_secret_value() and jwt.access_secret == jwt.refresh_secret:
        problems.append(("auth.jwt.refresh_secret", "must differ from auth.jwt.access_secret"))
    return problems


def _admin_password_problems(settings: Settings) -> list[tuple[str, str]]:
    if settings.admin_password is None:
        return []  # a random one is generated and printed once
    password = settings.admin_password.get_secret_value()
    min_length = settings.auth.password.min_length
    if password.lower() in _KNOWN_DEFAULT_PASSWORDS:
        return [("admin_password", "is a well-known default password")]
    if len(password) < min_length:
        return [("admin_password", f"must be at least {min_length} characters")]
    return []


def _plaintext_listener_problems(settings: Settings) -> list[tuple[str, str]]:
    if settings.tls.enabled or settings.tls.terminated_by_proxy:
        return []
    listeners = {
        "server.http.addr": settings.server.http.addr,
        "server.grpc.addr": settings.server.grpc.addr,
    }
    return [
        (
            key,
            f"{addr!r} is reachable from other hosts while tls.enabled is false; enable TLS, "
            "bind to a loopback address, or set tls.terminated_by_proxy: true when a proxy "
            "in front terminates TLS",
        )
        for key, addr in listeners.items()
        if not _is_loopback(split_addr(addr)[0])
    ]


def _argon2_problems(password: PasswordSettings) -> list[tuple[str, str]]:
    defaults = get_default_parameters()
    costs = [
        ("argon2_time_cost", password.argon2_time_cost, defaults.time_cost),
        ("argon2_memory_cost", password.argon2_memory_cost, defaults.memory_cost),
        ("argon2_parallelism", password.argon2_parallelism, defaults.parallelism),
    ]
    return [
        (
            f"auth.password.{name}",
            f"{value} is below the argon2 default {default}; lowered costs are for tests only",
        )
        for name, value, default in costs
        if value is not None and value < default
    ]


# --- loading -----------------------------------------------------------------------------------

_ENV_PREFIX = "OPS_"
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")


def load_settings(
    config_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from defaults, then `config_file` (if given), then `OPS_*` variables of `environ`.

    `environ` defaults to `os.environ`; it also feeds `${VAR}` substitution in the file.
    Raises ConfigError listing every problem found.
    """
    env = os.environ if environ is None else environ
    tree = _substitute_tree(_read_yaml(config_file), env) if config_file is not None else {}
    sources = _apply_env_overrides(tree, env)
    try:
        return Settings.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, sources)) from None


def _read_yaml(path: Path) -> dict[str, object]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read config file ({exc})"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}"]) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ConfigError([f"{path}: top level must be a mapping of settings, got {kind}"])
    return data


def _substitute_tree(tree: dict[str, object], env: Mapping[str, str]) -> dict[str, object]:
    return {key: _substitute(value, env) for key, value in tree.items()}


def _substitute(value: object, env: Mapping[str, str]) -> object:
    if isinstance(value, str):
        # As in the shell's ${VAR:-default}, an empty variable also takes the default.
        return _PLACEHOLDER.sub(lambda m: env.get(m[1]) or m[2] or "", value)
    if isinstance(value, dict):
        return _substitute_tree(value, env)
    if isinstance(value, list):
        return [_substitute(item, env) for item in value]
    return value


def _apply_env_overrides(tree: dict[str, object], env: Mapping[str, str]) -> dict[str, str]:
    """Write `OPS_*` variables into `tree`; returns which variable set which dotted key."""
    sources = {}
    for name, value in env.items():
        if name[: len(_ENV_PREFIX)].upper() != _ENV_PREFIX:
            continue
        path = name[len(_ENV_PREFIX) :].lower().split("__")
        # Only names that start with a section or top-level key are ours; OPS_CONFIG and the
        # like belong to the CLI or to other tools.
        if path[0] not in Settings.model_fields:
            continue
        _set_path(tree, path, _parse_list(value) if _is_list(path) else value)
        sources[".".join(path)] = name
    return sources


def _set_path(tree: dict[str, object], path: list[str], value: object) -> None:
    node = tree
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[path[-1]] = value


def _is_list(path: list[str]) -> bool:
    model: type[BaseModel] = Settings
    for part in path[:-1]:
        field = model.model_fields.get(part)
        section = field.annotation if field is not None else None
        if not (isinstance(section, type) and issubclass(section, BaseModel)):
            return False
        model = section
    field = model.model_fields.get(path[-1])
    return field is not None and get_origin(field.annotation) is list


def _parse_list(value: str) -> object:
    if value.lstrip().startswith("["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value  # validation then reports it as "not a valid list"
    return [item.strip() for item in value.split(",") if item.strip()]


def _env_name(key: str) -> str:
    return _ENV_PREFIX + key.upper().replace(".", "__")


# --- error messages ----------------------------------------------------------------------------


def _describe(exc: ValidationError, sources: Mapping[str, str]) -> list[str]:
    lines = []
    for error in exc.errors():
        key = _dotted(error["loc"])
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, _Problems):
            lines += [f"{_join(key, sub)}: {problem}" for sub, problem in cause.problems]
            continue
        origin = sources.get(re.sub(r"\[\d+\]", "", key))
        suffix = f" (from {origin})" if origin else ""
        lines.append(f"{key or '(top level)'}: {_message(key, error)}{suffix}")
    return lines


def _message(key: str, error: ErrorDetails) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    message = error["msg"].removeprefix("Value error, ")
    value = error["input"]
    # Our own messages quote the value already; secrets are never echoed.
    if error["type"] == "value_error" or re.search(r"password|secret", key):
        return message
    if value is None or isinstance(value, str | int | float | bool):
        return f"{message}, got {value!r}"
    return message


def _dotted(loc: tuple[int | str, ...]) -> str:
    key = ""
    for part in loc:
        key = f"{key}[{part}]" if isinstance(part, int) else _join(key, part)
    return key


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key
