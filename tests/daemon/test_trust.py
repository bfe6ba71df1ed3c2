"""`ops-daemon run --trusted-key`: the keys a node trusts for packages are copied into its
state directory, privately, and only those are read."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

from opscaffold.daemon.trust import TrustStore
from opscaffold.protocol.manifest import fingerprint, generate_key, public_pem
from tests.daemon.helpers import BIN, closed_port_target
from tests.helpers import free_port, poll_until


def key_file(path: Path) -> tuple[Path, str]:
    public = generate_key().public_key()
    path.write_bytes(public_pem(public))
    return path, fingerprint(public)


def daemon(state_dir: Path, *keys: Path) -> list[str]:
    command = [str(BIN / "ops-daemon"), "run", "--manager", closed_port_target()]
    command += ["--enrollment-token", "t", "--state-dir", str(state_dir)]
    command += ["--port", str(free_port())]
    for key in keys:
        command += ["--trusted-key", str(key)]
    return command


def test_trusted_keys_are_copied_into_the_state_dir(tmp_path: Path) -> None:
    old, old_print = key_file(tmp_path / "old.pem")
    new, new_print = key_file(tmp_path / "new.pem")
    state = tmp_path / "state"
    trusted = state / "trusted-keys"

    process = subprocess.Popen(daemon(state, old, new), stderr=subprocess.DEVNULL)
    try:
        poll_until(lambda: len(list(trusted.glob("*.pem"))) == 2, what="both keys are copied")
    finally:
        process.terminate()
        process.wait(timeout=20)

    assert sorted(p.name for p in trusted.iterdir()) == sorted(
        [f"{old_print}.pem", f"{new_print}.pem"]
    )
    assert stat.S_IMODE(trusted.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in trusted.iterdir()} == {0o600}
    old.unlink()  # the copies are what counts, not the files given
    assert sorted(fingerprint(k) for k in TrustStore(state).public_keys()) == sorted(
        [old_print, new_print]
    )


def test_a_key_file_that_is_not_a_public_key_stops_the_daemon(tmp_path: Path) -> None:
    good, _ = key_file(tmp_path / "good.pem")
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")

    result = subprocess.run(
        daemon(tmp_path / "state", good, bad), capture_output=True, text=True, timeout=30
    )

    assert result.returncode == 2
    assert str(bad) in result.stderr
    assert not list((tmp_path / "state").glob("trusted-keys/*.pem"))
