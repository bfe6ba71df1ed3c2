"""docker-compose.yaml, .env.example and the nginx config, checked without a container engine:
they parse, the Manager's environment loads into the Settings object as production would, the
services start in the right order, and nginx itself accepts its config (`nginx -t`)."""

from __future__ import annotations

import re
import secrets
import subprocess
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from opscaffold.manager.config import CipherSuite, split_addr
from tests.deploy.conftest import ROOT
from tests.deploy.helpers import (
    GRPC_SERVICES,
    image_environment,
    load,
    nginx_binary,
    self_signed,
    setting_of,
)

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
NGINX_CONF = ROOT / "deploy/nginx/nginx.conf"
# ${VAR}, ${VAR:-default}, ${VAR:?message}, as Compose interpolates them.
_VARIABLE = re.compile(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}")


def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def filled_env() -> dict[str, str]:
    """.env.example as an operator fills it: the secrets it leaves blank get random values."""
    values = env_example()
    for name in ("DB_PASSWORD", "MYSQL_ROOT_PASSWORD", "JWT_ACCESS_SECRET", "JWT_REFRESH_SECRET"):
        assert values[name] == "", f"{name} must be left for the operator to fill"
        values[name] = secrets.token_hex(32)
    return values


def interpolate(text: str, env: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name, kind, rest = match[1], match[2], match[3]
        if env.get(name):
            return env[name]
        if kind == ":?":
            raise AssertionError(f"${{{name}}} is required: {rest}")
        return rest or ""

    return _VARIABLE.sub(value, text)


def service(name: str) -> dict[str, Any]:
    services: dict[str, dict[str, Any]] = COMPOSE["services"]
    return services[name]


def manager_environment() -> dict[str, str]:
    env = filled_env()
    raw: dict[str, Any] = service("manager")["environment"]
    given = {name: interpolate(str(value), env) for name, value in raw.items()}
    return {**image_environment(), **given}


def test_every_variable_compose_reads_is_in_env_example() -> None:
    text = (ROOT / "docker-compose.yaml").read_text()
    used = {match[1] for match in _VARIABLE.finditer(text)}
    assert used <= set(env_example()), f"missing from .env.example: {used - set(env_example())}"


def test_every_manager_variable_names_a_setting() -> None:
    for variable in [*service("manager")["environment"], *image_environment()]:
        assert setting_of(variable) is not None, f"{variable} names no setting"


def test_the_manager_environment_loads_as_production() -> None:
    settings = load(manager_environment())
    assert settings.env == "production"
    assert settings.database.driver == "mysql"
    assert settings.database.host == "mysql"
    assert settings.redis.enabled
    assert settings.redis.host == "redis"
    assert settings.tls.terminated_by_proxy
    assert settings.server.http.public_url == f"https://{env_example()['PUBLIC_HOST']}"
    # The database the Manager uses is the one the mysql service creates for it.
    mysql_env = service("mysql")["environment"]
    assert mysql_env["MYSQL_DATABASE"] == settings.database.name
    assert mysql_env["MYSQL_USER"] == settings.database.user
    # The key files live on the mounted keys directory.
    mounts = {m.split(":")[1]: m.split(":")[0] for m in service("manager")["volumes"]}
    assert "/app/keys" in mounts
    for key in (settings.storage.signing_key_file, settings.task.signing_key_file):
        assert key is not None
        assert key.parent == Path("/app/keys")


def test_migrations_finish_before_the_manager_starts() -> None:
    migrate = service("migrate")
    assert migrate["command"] == ["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["mysql"]["condition"] == "service_healthy"
    depends = service("manager")["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["mysql"]["condition"] == depends["redis"]["condition"] == "service_healthy"
    # Both run the same image with the same settings.
    assert migrate["image"] == service("manager")["image"]
    assert migrate["environment"] == service("manager")["environment"]
    assert service("nginx")["depends_on"]["manager"]["condition"] == "service_healthy"


def test_only_nginx_is_published_and_the_data_is_on_volumes() -> None:
    published = [name for name, spec in COMPOSE["services"].items() if spec.get("ports")]
    assert published == ["nginx"]
    assert {"80", "443"} == {p.rsplit(":", 1)[1] for p in service("nginx")["ports"]}
    volumes = set(COMPOSE["volumes"])
    for name, path in [("manager", "/app/data"), ("mysql", "/var/lib/mysql"), ("redis", "/data")]:
        mounts = [m for m in service(name)["volumes"] if m.split(":")[1] == path]
        assert mounts, f"{name}: nothing is mounted at {path}"
        assert mounts[0].split(":")[0] in volumes, f"{name}: {path} is not a volume"


def test_the_proxy_network_is_the_one_the_manager_trusts() -> None:
    env = manager_environment()
    subnet = COMPOSE["networks"]["proxy"]["ipam"]["config"][0]["subnet"]
    assert interpolate(subnet, filled_env()) == env["OPS_SERVER__HTTP__TRUSTED_PROXIES"]
    assert set(service("nginx")["networks"]) == {"proxy"}
    assert "proxy" in service("manager")["networks"]


# --- nginx -------------------------------------------------------------------------------------


def nginx_text() -> str:
    return NGINX_CONF.read_text()


def test_nginx_sends_each_kind_of_traffic_to_the_right_port() -> None:
    settings = load(manager_environment())
    text = nginx_text()
    upstreams = dict(re.findall(r"upstream (\w+) \{\s*server ([\w.:]+);", text))
    assert upstreams["manager_http"] == f"manager:{split_addr(settings.server.http.addr)[1]}"
    assert upstreams["manager_grpc"] == f"manager:{split_addr(settings.server.grpc.addr)[1]}"
    grpc_locations = set(
        re.findall(r"location /([\w.]+)/ \{\s*grpc_pass grpc://manager_grpc;", text)
    )
    assert grpc_locations == GRPC_SERVICES
    assert re.search(r"listen 443 ssl http2;", text)
    # Connect streams outlive nginx's 60 s defaults.
    assert re.search(r"grpc_read_timeout 1h;", text)
    assert re.search(r"grpc_send_timeout 1h;", text)
    assert "proxy_pass http://manager_http;" in text


def test_nginx_offers_only_the_suites_the_manager_allows() -> None:
    (ciphers,) = re.findall(r"ssl_ciphers ([^;]+);", nginx_text())
    assert set(ciphers.split(":")) <= set(get_args(CipherSuite))


@pytest.mark.timeout(30)
def test_nginx_accepts_the_config(tmp_path: Path) -> None:
    """`nginx -t` on a copy where only what belongs to the Compose network changes: the
    upstream host `manager` (which resolves only there) becomes 127.0.0.1, and the
    certificate directory one with a test certificate. No root needed: prefix, pid and
    error log are in tmp_path."""
    nginx = nginx_binary()
    certs = tmp_path / "certs"
    certs.mkdir()
    self_signed(certs)
    text = nginx_text()
    assert text.count("server manager:") == 2
    assert text.count("/etc/nginx/certs/") == 2
    copy = text.replace("server manager:", "server 127.0.0.1:").replace(
        "/etc/nginx/certs/", f"{certs}/"
    )
    conf = tmp_path / "nginx.conf"
    conf.write_text(copy)
    result = subprocess.run(
        [
            nginx,
            "-t",
            "-p",
            str(tmp_path),
            "-c",
            str(conf),
            "-e",
            "stderr",
            "-g",
            f"pid {tmp_path}/nginx.pid;",
        ],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
