"""docs/configuration.md is generated from the Settings object (`make config-reference`);
`make check-generated` diffs it, and so does this test, for a plain pytest run."""

from __future__ import annotations

from pydantic import BaseModel

from opscaffold.manager.config import Settings
from opscaffold.manager.configref import descriptions, env_name, leaf_keys, reference
from tests.deploy.conftest import ROOT
from tests.deploy.helpers import load, setting_of


def settings_leaves(model: type[BaseModel] = Settings, prefix: str = "") -> set[str]:
    found = set()
    for name, field in model.model_fields.items():
        section = field.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            found |= settings_leaves(section, f"{prefix}{name}.")
        else:
            found.add(f"{prefix}{name}")
    return found


def test_the_committed_reference_is_the_generated_one() -> None:
    committed = (ROOT / "docs/configuration.md").read_text()
    assert committed == reference(), "stale: run `make config-reference`"


def test_every_setting_is_listed_once_with_its_variable_and_a_description() -> None:
    keys = leaf_keys()
    assert len(keys) == len(set(keys))
    assert set(keys) == settings_leaves()
    described = descriptions()
    text = reference()
    for key in keys:
        assert described.get(key), f"{key} has no description in configs/config.example.yaml"
        assert f"| `{key}` | `{env_name(key)}` |" in text
        assert setting_of(env_name(key)) == key


def test_each_variable_sets_its_key() -> None:
    """The variable named for a key reaches that key through the real loader."""
    settings = load(
        {
            env_name("server.grpc.addr"): ":9191",
            env_name("database.statement_timeout"): "7s",
            env_name("alert.notify.smtp.port"): "2525",
            env_name("server.http.trusted_proxies"): "10.0.0.0/8,::1",
        }
    )
    assert settings.server.grpc.addr == ":9191"
    assert settings.database.statement_timeout.total_seconds() == 7
    assert settings.alert.notify.smtp.port == 2525
    assert settings.server.http.trusted_proxies == ["10.0.0.0/8", "::1"]


def test_a_comment_that_goes_on_below_its_key_is_kept_whole() -> None:
    example = "redis:\n  enabled: false  # first line\n                  # second line\n  host: x\n"
    assert descriptions(example) == {"redis.enabled": "first line second line"}
