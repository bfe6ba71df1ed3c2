from __future__ import annotations

from pathlib import Path

import pytest

from opscaffold.daemon.config import ConfigError, load_config, split_labels


def test_defaults_need_only_the_manager() -> None:
    config = load_config(None, {"manager": "manager.example:9090"})
    assert config.agent_port == 9100
    assert config.state_dir == Path("daemon-state")
    assert config.transport == "connect"
    assert config.tls.files() is None


def test_flags_override_the_file(tmp_path: Path) -> None:
    file = tmp_path / "daemon.yaml"
    file.write_text("manager: a:1\nagent_port: 9200\nlabels: {env: prod}\ntls: {ca: /etc/ca.pem}\n")
    config = load_config(file, {"manager": "b:2", "agent_port": None, "tls.server_name": "m"})
    assert config.manager == "b:2"
    assert config.agent_port == 9200  # None means "flag not given"
    assert config.labels == {"env": "prod"}
    files = config.tls.files()
    assert files is not None
    assert (files.ca, files.server_name, files.cert) == (Path("/etc/ca.pem"), "m", None)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"manager": "no-port"}, "HOST:PORT"),
        ({"manager": "a:1", "agent_port": 70000}, "agent_port"),
        ({"manager": "a:1", "tls.cert": "c.pem"}, "go together"),
        ({"manager": "a:1", "tls.cert": "c.pem", "tls.key": "k.pem"}, "tls.ca"),
        ({"manager": "a:1", "uuid": "not-a-uuid"}, "uuid"),
        ({"manager": "a:1", "colour": "blue"}, "colour"),
        ({"manager": "a:1", "task_output_cap": 4 * 1024 * 1024}, "task_output_cap"),
    ],
)
def test_bad_settings_are_named(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "daemon.yaml"
    file.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(file, {})


def test_labels_from_the_command_line() -> None:
    assert split_labels("env=prod, role=web,,zone=") == {"env": "prod", "role": "web", "zone": ""}
    with pytest.raises(ConfigError, match="key=value"):
        split_labels("env")
