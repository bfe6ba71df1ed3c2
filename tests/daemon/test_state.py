from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from opscaffold.daemon.state import NodeState, StateError, StateStore


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def uuid_in_new_process(directory: Path) -> str:
    code = (
        "import sys; from pathlib import Path; from opscaffold.daemon.state import StateStore;"
        "print(StateStore(Path(sys.argv[1])).load_or_create().uuid)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(directory)], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_identity_is_created_once_and_private(tmp_path: Path) -> None:
    directory = tmp_path / "state" / "nested"
    state = StateStore(directory).load_or_create()
    assert mode(directory) == 0o700
    assert mode(directory / "node.json") == 0o600
    assert json.loads((directory / "node.json").read_text())["uuid"] == state.uuid


def test_uuid_is_stable_across_runs(tmp_path: Path) -> None:
    first = uuid_in_new_process(tmp_path)
    assert uuid_in_new_process(tmp_path) == first


def test_token_and_node_id_survive_a_restart(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    state = store.load_or_create()
    store.save(NodeState(uuid=state.uuid, node_id=7, node_token="osn_secret"))
    again = StateStore(tmp_path).load_or_create()
    assert (again.uuid, again.node_id, again.node_token) == (state.uuid, 7, "osn_secret")
    assert mode(tmp_path / "node.json") == 0o600
    assert not list(tmp_path.glob(".*.tmp"))


def test_lax_permissions_are_tightened(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    StateStore(directory).load_or_create()
    directory.chmod(0o755)
    (directory / "node.json").chmod(0o644)
    StateStore(directory).load_or_create()
    assert mode(directory) == 0o700
    assert mode(directory / "node.json") == 0o600


def test_a_corrupt_file_is_reported_not_replaced(tmp_path: Path) -> None:
    (tmp_path / "node.json").write_text("{half a fi")
    with pytest.raises(StateError, match="not a valid node state"):
        StateStore(tmp_path).load_or_create()
    assert (tmp_path / "node.json").read_text() == "{half a fi"


def test_a_fixed_uuid_is_used_and_a_different_stored_one_refused(tmp_path: Path) -> None:
    wanted = "0b6d0c9e-8a8a-4c6b-9d39-3f1f2a4b5c6d"
    assert StateStore(tmp_path).load_or_create(wanted).uuid == wanted
    with pytest.raises(StateError, match="belongs to node"):
        StateStore(tmp_path).load_or_create("1b6d0c9e-8a8a-4c6b-9d39-3f1f2a4b5c6d")


def test_the_enrollment_key_is_drawn_once_and_kept(tmp_path: Path) -> None:
    first = StateStore(tmp_path).load_or_create()
    assert len(first.enrollment_key) >= 32
    assert StateStore(tmp_path).load_or_create().enrollment_key == first.enrollment_key
    # A state kept by an older daemon gets its key on loading, saved before any Register.
    older = tmp_path / "older"
    older.mkdir()
    (older / "node.json").write_text(json.dumps({"uuid": first.uuid, "node_token": "osn_x"}))
    drawn = StateStore(older).load_or_create().enrollment_key
    assert json.loads((older / "node.json").read_text())["enrollment_key"] == drawn
    assert StateStore(older).load_or_create().enrollment_key == drawn
