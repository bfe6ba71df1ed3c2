from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from opscaffold.manager.config import (
    ConfigError,
    DatabaseSettings,
    Environment,
    Settings,
    load_settings,
    parse_duration,
    split_addr,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
STRONG_ACCESS = "a" * 32
STRONG_REFRESH = "b" * 32
SECURE_PRODUCTION = {
    "OPS_ENV": "production",
    "OPS_AUTH__JWT__ACCESS_SECRET": STRONG_ACCESS,
    "OPS_AUTH__JWT__REFRESH_SECRET": STRONG_REFRESH,
    "OPS_TLS__TERMINATED_BY_PROXY": "true",
    "OPS_STORAGE__SIGNING_KEY_FILE": "/etc/ops-manager/signing_key.pem",
    "OPS_TASK__SIGNING_KEY_FILE": "/etc/ops-manager/task_signing_key.pem",
}


def write_yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(config_file: Path | None = None, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file, environ or {})
    return str(caught.value)


# --- defaults and files ------------------------------------------------------------------------


def test_defaults_without_a_file() -> None:
    settings = load_settings(None, {})

    assert settings.env == "development"
    assert settings.server.http.addr == ":8080"
    assert settings.server.http.read_timeout == timedelta(seconds=30)
    assert settings.server.grpc.max_recv_msg_size == 10485760
    assert settings.database.driver == "sqlite"
    assert settings.database.port is None
    assert settings.auth.jwt.refresh_ttl == timedelta(days=7)
    assert settings.auth.login_throttle.window == timedelta(minutes=15)
    assert settings.node.heartbeat_timeout == timedelta(seconds=90)
    assert settings.admin_password is None
    assert settings.rate_limit.enabled is True


def test_paths_default_under_data_dir(tmp_path: Path) -> None:
    settings = load_settings(None, {"OPS_DATA_DIR": str(tmp_path)})

    assert settings.database.path == tmp_path / "manager.db"
    assert settings.storage.local.path == tmp_path / "versions"


def test_explicit_paths_are_kept(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "database: {path: /srv/m.db}\nstorage: {local: {path: /srv/pkg}}")

    settings = load_settings(path, {})

    assert settings.database.path == Path("/srv/m.db")
    assert settings.storage.local.path == Path("/srv/pkg")


def test_sqlite_path_helper() -> None:
    assert DatabaseSettings().sqlite_path(Path("/d")) == Path("/d/manager.db")
    assert DatabaseSettings(path=Path("/x.db")).sqlite_path(Path("/d")) == Path("/x.db")


@pytest.mark.parametrize(
    ("driver", "port"), [("mysql", 3306), ("postgres", 5432), ("sqlite", None)]
)
def test_database_port_follows_driver(driver: str, port: int | None) -> None:
    settings = load_settings(None, {"OPS_DATABASE__DRIVER": driver})

    assert settings.database.port == port


@pytest.mark.parametrize(
    ("auto_migrate", "env", "expected"),
    [
        (None, "development", True),
        (None, "production", False),
        (False, "development", False),
        (True, "production", True),
    ],
)
def test_migrate_on_start(auto_migrate: bool | None, env: Environment, expected: bool) -> None:
    database = DatabaseSettings(auto_migrate=auto_migrate)

    assert database.migrate_on_start(env) is expected


def test_yaml_file_is_loaded(tmp_path: Path) -> None:
    path = write_yaml(
        tmp_path,
        """
server:
  http:
    addr: 127.0.0.1:8000
    cors_origins: [https://ui.example]
database:
  driver: postgres
  password: 123456
tls:
  min_version: 1.3
""",
    )

    settings = load_settings(path, {})

    assert settings.server.http.addr == "127.0.0.1:8000"
    assert settings.server.http.cors_origins == ["https://ui.example"]
    assert settings.database.port == 5432
    assert settings.database.password.get_secret_value() == "123456"
    assert settings.tls.min_version == "1.3"


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    assert load_settings(write_yaml(tmp_path, ""), {}) == load_settings(None, {})


def test_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"

    assert str(missing) in problems_of(missing)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text", "a: [unclosed"])
def test_file_that_is_not_a_mapping_is_named(tmp_path: Path, text: str) -> None:
    path = write_yaml(tmp_path, text)

    assert str(path) in problems_of(path)


# --- ${VAR} substitution -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "environ", "expected"),
    [
        ("${DB_HOST}", {"DB_HOST": "db1"}, "db1"),
        ("${DB_HOST}", {}, ""),
        ("${DB_HOST:localhost}", {}, "localhost"),
        ("${DB_HOST:localhost}", {"DB_HOST": "db2"}, "db2"),
        ("${DB_HOST:localhost}", {"DB_HOST": ""}, "localhost"),
        ("${DB_HOST:}", {}, ""),
        ("${DB_HOST:tcp://h:3306}", {}, "tcp://h:3306"),
        ("${A}-${B:two}.${C}", {"A": "one", "C": "three"}, "one-two.three"),
        ("no placeholder $HOME", {"HOME": "/root"}, "no placeholder $HOME"),
    ],
)
def test_substitution(
    tmp_path: Path, template: str, environ: dict[str, str], expected: str
) -> None:
    path = write_yaml(tmp_path, f"database:\n  host: '{template}'\n")

    assert load_settings(path, environ).database.host == expected


def test_substitution_reaches_lists_and_typed_values(tmp_path: Path) -> None:
    path = write_yaml(
        tmp_path,
        """
server:
  http:
    cors_origins: ["${UI_ORIGIN}", "https://static"]
database:
  port: ${DB_PORT:3307}
tls:
  cert_file: ${TLS_CERT_FILE}
""",
    )

    settings = load_settings(path, {"UI_ORIGIN": "https://ui"})

    assert settings.server.http.cors_origins == ["https://ui", "https://static"]
    assert settings.database.port == 3307
    assert settings.tls.cert_file is None  # unset variable in an optional key means "not set"


# --- durations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("168h", timedelta(days=7)),
        ("1h30m", timedelta(minutes=90)),
        ("500ms", timedelta(milliseconds=500)),
        ("1.5s", timedelta(seconds=1.5)),
        ("7d", timedelta(days=7)),
        (" 45s ", timedelta(seconds=45)),
        ("90", timedelta(seconds=90)),
        (90, timedelta(seconds=90)),
        (2.5, timedelta(seconds=2.5)),
        (timedelta(minutes=1), timedelta(minutes=1)),
        ("0s", timedelta(0)),
    ],
)
def test_parse_duration(value: object, expected: timedelta) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize(
    "value", ["9x", "", "1h 30m", "h", "1H", "1e3", True, None, [], float("nan")]
)
def test_parse_duration_rejects_garbage(value: object) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(value)


@pytest.mark.parametrize("value", ["-5s", -1, timedelta(seconds=-1)])
def test_parse_duration_rejects_negatives(value: object) -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        parse_duration(value)


def test_duration_errors_name_the_key() -> None:
    message = problems_of(environ={"OPS_NODE__HEARTBEAT_TIMEOUT": "9x"})

    assert "node.heartbeat_timeout: invalid duration '9x' (use e.g. 90s, 5m, 2h)" in message


def test_duration_settings_must_be_positive() -> None:
    message = problems_of(environ={"OPS_AUTH__JWT__ACCESS_TTL": "0s"})

    assert "auth.jwt.access_ttl: duration must be greater than zero" in message


def test_heartbeat_timeout_must_outlast_the_interval() -> None:
    message = problems_of(environ={"OPS_NODE__HEARTBEAT_TIMEOUT": "30s"})

    assert "node.heartbeat_timeout: must be longer than node.heartbeat_interval (30s)" in message


# --- environment overrides ---------------------------------------------------------------------


def test_env_beats_file(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "database:\n  host: from-file\n  user: file-user\n")

    settings = load_settings(path, {"OPS_DATABASE__HOST": "from-env"})

    assert settings.database.host == "from-env"
    assert settings.database.user == "file-user"  # merged, not replaced


def test_env_overrides_nested_and_top_level_keys() -> None:
    settings = load_settings(
        None,
        {
            "OPS_SERVER__HTTP__ADDR": "127.0.0.1:8081",
            "OPS_AUTH__JWT__ACCESS_SECRET": "s3cret",
            "OPS_AUTH__PASSWORD__ARGON2_TIME_COST": "1",
            "OPS_LOG__FILE__ENABLED": "true",
            "OPS_ADMIN_PASSWORD": "a-long-admin-password",
            "OPS_DATA_DIR": "/var/lib/ops",
        },
    )

    assert settings.server.http.addr == "127.0.0.1:8081"
    assert settings.auth.jwt.access_secret.get_secret_value() == "s3cret"
    assert settings.auth.password.argon2_time_cost == 1
    assert settings.log.file.enabled is True
    assert settings.admin_password is not None
    assert settings.admin_password.get_secret_value() == "a-long-admin-password"
    assert settings.data_dir == Path("/var/lib/ops")


def test_env_names_are_case_insensitive() -> None:
    settings = load_settings(None, {"ops_database__Host": "db3", "Ops_Redis__Enabled": "1"})

    assert settings.database.host == "db3"
    assert settings.redis.enabled is True


@pytest.mark.parametrize(
    "value", ['["https://a", "https://b"]', "https://a,https://b", " https://a , https://b ,"]
)
def test_env_lists(value: str) -> None:
    settings = load_settings(None, {"OPS_SERVER__HTTP__CORS_ORIGINS": value})

    assert settings.server.http.cors_origins == ["https://a", "https://b"]


def test_empty_env_list_clears_the_file_value(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "server: {http: {trusted_proxies: [10.0.0.0/8]}}")

    settings = load_settings(path, {"OPS_SERVER__HTTP__TRUSTED_PROXIES": ""})

    assert settings.server.http.trusted_proxies == []


def test_unrelated_env_vars_are_ignored() -> None:
    environ = {
        "OPS_CONFIG": "/etc/ops.yaml",
        "OPS_PORT": "tcp://10.0.0.1:80",
        "DATABASE__HOST": "x",
    }

    assert load_settings(None, environ) == load_settings(None, {})


def test_empty_env_value_unsets_an_optional_key() -> None:
    settings = load_settings(None, {"OPS_ADMIN_PASSWORD": ""})

    assert settings.admin_password is None


# --- errors name the key -----------------------------------------------------------------------


def test_unknown_key_in_yaml_is_named(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "database:\n  hots: db1\nlogging: {}\n")

    message = problems_of(path)

    assert "database.hots: unknown key" in message
    assert "logging: unknown key" in message


def test_misspelt_env_key_is_named() -> None:
    message = problems_of(environ={"OPS_DATABASE__HOTS": "db1"})

    assert "database.hots: unknown key (from OPS_DATABASE__HOTS)" in message


def test_bad_type_names_the_dotted_key(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "database:\n  port: abc\nlog:\n  level: loud\n")

    message = problems_of(path)

    assert re.search(r"database\.port: Input should be a valid integer.*got 'abc'", message)
    assert re.search(r"log\.level: Input should be .*got 'loud'", message)


def test_every_problem_is_listed_once(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "redis: {port: 0, db: -1}\nmetrics: {raw_retention_days: 0}\n")

    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})

    keys = [problem.split(":")[0] for problem in caught.value.problems]
    assert keys == ["redis.port", "redis.db", "metrics.raw_retention_days"]


def test_list_items_are_named_by_index() -> None:
    message = problems_of(environ={"OPS_SERVER__HTTP__TRUSTED_PROXIES": "10.0.0.0/8,proxy.local"})

    assert "server.http.trusted_proxies[1]: not an IP address or CIDR: 'proxy.local'" in message


def test_secrets_are_not_echoed(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "database:\n  password: [hunter2-secret]\n")

    message = problems_of(path)

    assert "database.password" in message
    assert "hunter2" not in message


def test_tls_enabled_needs_cert_and_key() -> None:
    message = problems_of(environ={"OPS_TLS__ENABLED": "true", "OPS_TLS__CERT_FILE": "/c.pem"})

    assert "tls.key_file: must be set when tls.enabled is true" in message
    assert "tls.cert_file" not in message


@pytest.mark.parametrize("kind", ["s3", "oss"])
def test_object_storage_is_refused_until_it_exists(kind: str) -> None:
    message = problems_of(environ={"OPS_STORAGE__TYPE": kind, "OPS_STORAGE__S3__BUCKET": "pkgs"})

    assert f"storage.type: '{kind}' is not available yet; use local" in message
    assert "storage.s3.bucket: must be empty: object storage (s3, oss) is not available" in message


def test_object_storage_keys_are_refused_with_local_storage() -> None:
    message = problems_of(
        environ={"OPS_STORAGE__S3__REGION": "eu-west-1", "OPS_STORAGE__S3__SECRET_KEY": "k"}
    )

    assert "storage.s3.region: must be empty" in message
    assert "storage.s3.secret_key: must be empty" in message
    assert "storage.type" not in message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("enabled", "true"),
        ("provider", "github"),
        ("client_id", "ops"),
        ("client_secret", "s3cr3t-value"),
    ],
)
def test_oauth2_is_refused_until_it_exists(key: str, value: str) -> None:
    message = problems_of(environ={f"OPS_AUTH__OAUTH2__{key.upper()}": value})

    assert f"auth.oauth2.{key}: must be " in message
    assert "OAuth2 sign-in is not available yet" in message
    assert "s3cr3t-value" not in message


def test_tls_cipher_suites_are_checked() -> None:
    settings = load_settings(
        None,
        {"OPS_TLS__CIPHER_SUITES": "ECDHE-RSA-AES128-GCM-SHA256,ECDHE-ECDSA-AES256-GCM-SHA384"},
    )
    assert settings.tls.cipher_suites == [
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
    ]

    message = problems_of(environ={"OPS_TLS__CIPHER_SUITES": "ECDHE-RSA-AES128-GCM-SHA256,RC4-MD5"})
    assert "tls.cipher_suites[1]: " in message
    assert "'RC4-MD5'" in message


def test_tls_cipher_suites_are_refused_with_tls_1_3_only() -> None:
    message = problems_of(
        environ={
            "OPS_TLS__MIN_VERSION": "1.3",
            "OPS_TLS__CIPHER_SUITES": "ECDHE-RSA-AES128-GCM-SHA256",
        }
    )

    assert 'tls.cipher_suites: must be empty with tls.min_version "1.3"' in message


def test_tls_min_version_is_1_2_or_1_3() -> None:
    message = problems_of(environ={"OPS_TLS__MIN_VERSION": "1.1"})

    assert "tls.min_version: " in message


def test_bad_listen_address_is_named() -> None:
    message = problems_of(environ={"OPS_SERVER__GRPC__ADDR": "9090"})

    assert "server.grpc.addr: invalid address '9090'" in message


# --- production refusals -----------------------------------------------------------------------


def test_valid_production_config_is_accepted() -> None:
    settings = load_settings(None, {**SECURE_PRODUCTION, "OPS_ADMIN_PASSWORD": "correct-horse-42"})

    assert settings.env == "production"
    assert settings.database.migrate_on_start(settings.env) is False


def test_production_with_tls_or_loopback_binds_is_accepted() -> None:
    secrets = {k: v for k, v in SECURE_PRODUCTION.items() if "TLS" not in k}
    with_tls = {"OPS_TLS__ENABLED": "true", "OPS_TLS__CERT_FILE": "c", "OPS_TLS__KEY_FILE": "k"}
    loopback = {"OPS_SERVER__HTTP__ADDR": "127.0.0.1:8080", "OPS_SERVER__GRPC__ADDR": "[::1]:9090"}

    assert load_settings(None, {**secrets, **with_tls}).tls.enabled
    assert load_settings(None, {**secrets, **loopback}).server.grpc.addr == "[::1]:9090"


def test_production_collects_every_problem() -> None:
    message = problems_of(
        environ={
            "OPS_ENV": "production",
            "OPS_AUTH__JWT__REFRESH_SECRET": "short",
            "OPS_ADMIN_PASSWORD": "changeme",
            "OPS_AUTH__PASSWORD__ARGON2_MEMORY_COST": "1024",
        }
    )

    assert "auth.jwt.access_secret: must be set in production" in message
    assert "auth.jwt.refresh_secret: must be at least 32 characters, got 5" in message
    assert "admin_password: is a well-known default password" in message
    assert "server.http.addr: ':8080' is reachable from other hosts" in message
    assert "server.grpc.addr: ':9090' is reachable from other hosts" in message
    assert "auth.password.argon2_memory_cost: 1024 is below the argon2 default" in message
    assert "changeme" not in message


def test_production_refuses_equal_jwt_secrets() -> None:
    environ = {**SECURE_PRODUCTION, "OPS_AUTH__JWT__REFRESH_SECRET": STRONG_ACCESS}

    assert "auth.jwt.refresh_secret: must differ from auth.jwt.access_secret" in problems_of(
        environ=environ
    )


def test_production_refuses_a_short_admin_password() -> None:
    environ = {**SECURE_PRODUCTION, "OPS_AUTH__PASSWORD__MIN_LENGTH": "12"}
    environ["OPS_ADMIN_PASSWORD"] = "Xy7-short"

    assert "admin_password: must be at least 12 characters" in problems_of(environ=environ)


def test_production_refuses_a_plain_listener_on_a_host_name() -> None:
    environ = {**SECURE_PRODUCTION, "OPS_TLS__TERMINATED_BY_PROXY": "false"}
    environ["OPS_SERVER__HTTP__ADDR"] = "localhost:8080"
    environ["OPS_SERVER__GRPC__ADDR"] = "manager.internal:9090"

    message = problems_of(environ=environ)

    assert "server.http.addr" not in message
    assert "server.grpc.addr: 'manager.internal:9090' is reachable" in message


def test_development_accepts_insecure_settings() -> None:
    environ = {"OPS_ADMIN_PASSWORD": "admin", "OPS_AUTH__PASSWORD__ARGON2_TIME_COST": "1"}

    assert load_settings(None, environ).env == "development"


# --- listen addresses --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        (":8080", ("0.0.0.0", 8080)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("[::1]:9090", ("::1", 9090)),
        ("[::]:9090", ("::", 9090)),
        ("manager.internal:443", ("manager.internal", 443)),
    ],
)
def test_split_addr(addr: str, expected: tuple[str, int]) -> None:
    assert split_addr(addr) == expected


@pytest.mark.parametrize(
    "addr", ["8080", ":", ":65536", ":-1", ":http", "::1:9090", "[zz]:1", "a b:1"]
)
def test_split_addr_rejects(addr: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        split_addr(addr)


# --- shipped YAML files ------------------------------------------------------------------------


def setting_keys(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        section = field.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            yield from setting_keys(section, f"{key}.")
        else:
            yield key


def test_example_documents_every_setting() -> None:
    tree = yaml.safe_load((CONFIGS / "config.example.yaml").read_text(encoding="utf-8"))

    for key in setting_keys(Settings):
        node = tree
        for part in key.split("."):
            assert isinstance(node, dict), key
            assert part in node, f"{key} is missing from config.example.yaml"
            node = node[part]


def test_example_comments_every_key_and_shows_the_defaults() -> None:
    path = CONFIGS / "config.example.yaml"
    key_lines = [
        line for line in path.read_text(encoding="utf-8").splitlines() if re.match(r"\s*\w+:", line)
    ]
    leaf_lines = [line for line in key_lines if not re.fullmatch(r"\s*\w+:", line)]

    assert [line for line in leaf_lines if "#" not in line] == []
    assert load_settings(path, {}) == load_settings(None, {})


def test_production_template_loads_with_its_variables() -> None:
    environ = {
        "DB_PASSWORD": "db-pass",
        "JWT_ACCESS_SECRET": STRONG_ACCESS,
        "JWT_REFRESH_SECRET": STRONG_REFRESH,
        "TLS_TERMINATED_BY_PROXY": "true",
        "DB_HOST": "mariadb",
        "SIGNING_KEY_FILE": "/run/secrets/signing_key.pem",
        "TASK_SIGNING_KEY_FILE": "/run/secrets/task_signing_key.pem",
    }

    settings = load_settings(CONFIGS / "config.yaml", environ)

    assert settings.env == "production"
    assert settings.database.driver == "mysql"
    assert (settings.database.host, settings.database.port) == ("mariadb", 3306)
    assert settings.database.password.get_secret_value() == "db-pass"
    assert settings.redis.enabled is True
    assert settings.redis.password.get_secret_value() == ""
    assert settings.tls.cert_file is None


def test_production_template_with_tls() -> None:
    environ = {
        "DB_PASSWORD": "db-pass",
        "JWT_ACCESS_SECRET": STRONG_ACCESS,
        "JWT_REFRESH_SECRET": STRONG_REFRESH,
        "TLS_ENABLED": "true",
        "TLS_CERT_FILE": "/tls/cert.pem",
        "TLS_KEY_FILE": "/tls/key.pem",
        "SIGNING_KEY_FILE": "/run/secrets/signing_key.pem",
        "TASK_SIGNING_KEY_FILE": "/run/secrets/task_signing_key.pem",
    }

    settings = load_settings(CONFIGS / "config.yaml", environ)

    assert settings.tls.key_file == Path("/tls/key.pem")
    assert settings.tls.ca_file is None


def test_production_template_refuses_missing_secrets() -> None:
    message = problems_of(CONFIGS / "config.yaml", {"TLS_TERMINATED_BY_PROXY": "true"})

    assert "auth.jwt.access_secret: must be set in production" in message
    assert "auth.jwt.refresh_secret: must be set in production" in message
    assert "storage.signing_key_file: must be set in production" in message
    assert "task.signing_key_file: must be set in production" in message


@pytest.mark.parametrize(
    ("env", "base"),
    [
        ({}, "http://127.0.0.1:8080"),
        ({"OPS_SERVER__HTTP__ADDR": "[::]:8081"}, "http://[::1]:8081"),
        ({"OPS_SERVER__HTTP__ADDR": "10.1.2.3:80"}, "http://10.1.2.3:80"),
        ({"OPS_SERVER__HTTP__PUBLIC_URL": "https://ops.example.com/"}, "https://ops.example.com"),
    ],
)
def test_daemons_download_from_the_public_url_or_the_listen_address(
    env: dict[str, str], base: str
) -> None:
    assert load_settings(None, env).server.http.base_url() == base


def test_a_public_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ConfigError, match="public_url"):
        load_settings(None, {"OPS_SERVER__HTTP__PUBLIC_URL": "ftp://ops"})
