"""The Agent runs signed tasks: checks before anything runs, scripts in their own process
group with timeout, cancel and capped output, files only where allowed, handlers."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from opscaffold.protocol import task as protocol
from opscaffold.protocol.task import MASK
from tests.daemon.helpers import gone
from tests.daemon.tasks import body, journal, output_part, running_agent
from tests.helpers import poll_until

pytestmark = pytest.mark.timeout(90)


def test_a_script_runs_and_reports_output_and_exit_code(tmp_path: Path) -> None:
    with running_agent(tmp_path) as agent:
        ok = body(
            content={
                "script": 'echo "hello $WHO"; echo oops >&2',
                "env": {"WHO": {"value": "world"}},
            }
        )
        failing = body(content={"script": "echo before; exit 3"})

        accepted = agent.run(ok)
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["status"] == "running"
        assert agent.run(failing).status_code == 202

        done = agent.final(ok.execution_id)
        assert done["status"] == "success"
        assert done["exit_code"] == 0
        assert done["output"] == "hello world\noops\n"
        assert done["truncated"] is False
        failed = agent.final(failing.execution_id)
        assert (failed["status"], failed["exit_code"]) == ("failed", 3)
        assert failed["output"] == "before\n"


def test_secret_values_are_masked_in_the_output(tmp_path: Path) -> None:
    with running_agent(tmp_path) as agent:
        task = body(
            content={
                "script": 'echo "token=$TOKEN"',
                "env": {"TOKEN": {"value": "hunter2", "secret": True}},
            }
        )
        agent.run(task)
        assert agent.final(task.execution_id)["output"] == f"token={protocol.MASK}\n"


def test_output_is_read_while_the_script_runs_masked_and_equal_to_the_result(
    tmp_path: Path,
) -> None:
    script = (
        'for i in 1 2 3; do echo "line $i"; sleep 0.3; done; '
        "printf 'key=hun'; sleep 0.3; printf 'ter2\\n'; echo last"
    )
    content = {"script": script, "env": {"K": {"value": "hunter2", "secret": True}}}
    with running_agent(tmp_path) as agent:
        task = body(content=content)
        agent.run(task)
        first = output_part(agent, task.execution_id, 0, wait=10)
        assert first["running"] is True
        assert first["data"].startswith("line 1\n")  # before the script has ended
        parts, offset = [first], first["next"]
        while parts[-1]["running"] or parts[-1]["more"]:
            part = output_part(agent, task.execution_id, offset, wait=10)
            assert part["offset"] == offset
            parts.append(part)
            offset = part["next"]
        result = agent.final(task.execution_id)
    published = "".join(p["data"] for p in parts)
    assert all("hun" not in p["data"] or MASK in p["data"] for p in parts)
    assert published == result["output"]
    assert result["output"] == f"line 1\nline 2\nline 3\nkey={MASK}\nlast\n"
    assert offset == len(result["output"].encode())


def test_output_of_an_execution_that_ended_or_never_came(tmp_path: Path) -> None:
    with running_agent(tmp_path) as agent:
        task = body(content={"script": "echo done"})
        agent.run(task)
        agent.final(task.execution_id)
        ended = output_part(agent, task.execution_id, 0)
        assert (ended["running"], ended["data"], ended["more"]) == (False, "done\n", False)
        assert output_part(agent, task.execution_id, 2)["data"] == "ne\n"
        unknown = httpx.get(
            f"{agent.url}/tasks/{body().execution_id}/output",
            headers={"Authorization": f"Bearer {agent.token}"},
        )
        assert unknown.status_code == 404
        anonymous = httpx.get(f"{agent.url}/tasks/{task.execution_id}/output")
        assert anonymous.status_code == 401


def test_a_forged_expired_foreign_or_replayed_envelope_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    script = {"script": f"echo x >> {marker}"}
    with running_agent(tmp_path) as agent:
        forged = protocol.seal(body(content=script), protocol.generate_key())
        assert agent.submit(forged).status_code == 403
        tampered = protocol.seal(body(content=script), agent.key)
        tampered = tampered.model_copy(update={"body": tampered.body.replace("echo x", "echo y")})
        assert agent.submit(tampered).status_code == 403
        expired = body(content=script, not_after=time.time() - 3600)
        assert agent.run(expired).status_code == 410
        foreign = body(content=script, node_uuid="another-node")
        assert agent.run(foreign).status_code == 403

        once = body(content=script)
        envelope = protocol.seal(once, agent.key)
        assert agent.submit(envelope).status_code == 202
        agent.final(once.execution_id)
        replay = agent.submit(envelope)
        assert replay.status_code == 409, replay.text
        assert marker.read_text() == "x\n"  # the replay did not run again


def test_a_replay_is_refused_by_an_agent_started_again(tmp_path: Path) -> None:
    once = body()
    with running_agent(tmp_path) as agent:
        envelope = protocol.seal(once, agent.key)
        assert agent.submit(envelope).status_code == 202
        agent.final(once.execution_id)
    with running_agent(tmp_path, key=agent.key) as again:  # same state directory
        assert again.submit(envelope).status_code == 409
        assert again.final(once.execution_id)["status"] == "success"
    assert journal(again, once.execution_id)["status"] == "success"


def test_a_script_past_its_timeout_is_killed_with_its_children(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = f"sleep 300 & echo $! > {pids}; echo $$ >> {pids}; sleep 300"
    with running_agent(tmp_path) as agent:
        task = body(content={"script": script}, timeout=1)
        agent.run(task)
        result = agent.final(task.execution_id)
    assert result["status"] == "timeout"
    assert result["exit_code"] is None
    assert "timeout" in result["error"]
    for pid in map(int, pids.read_text().split()):
        assert gone(pid), pid


def test_a_cancelled_script_is_killed_with_its_whole_tree(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = f"(sleep 300 & echo $! >> {pids}; wait) & sleep 300 & echo $! >> {pids}; wait"
    with running_agent(tmp_path) as agent:
        task = body(content={"script": script}, timeout=300)
        agent.run(task)
        poll_until(
            lambda: pids.exists() and len(pids.read_text().split()) == 2,
            what="the script started its children",
        )
        assert agent.cancel(task.execution_id).json() == {"cancelled": True}
        result = agent.final(task.execution_id)
    assert result["status"] == "cancelled"
    for pid in map(int, pids.read_text().split()):
        assert gone(pid), pid


def test_ten_mebibytes_of_output_are_capped_and_marked(tmp_path: Path) -> None:
    with running_agent(tmp_path, "--output-cap", "65536") as agent:
        task = body(content={"script": "head -c 10485760 /dev/zero | tr '\\0' a"})
        agent.run(task)
        result = agent.final(task.execution_id)
    assert result["status"] == "success"
    assert result["truncated"] is True
    assert result["output"].startswith("a" * 65536)
    assert result["output"].endswith("[output truncated: kept 65536 of 10485760 bytes]\n")


def test_files_are_written_only_inside_allowed_directories(tmp_path: Path) -> None:
    allowed = tmp_path / "etc-app"
    allowed.mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (allowed / "link").symlink_to(outside)
    with running_agent(tmp_path, "--file-dir", str(allowed)) as agent:

        def write(dest: Path | str, **extra: object) -> dict[str, object]:
            task = body("file", {"content": "key=value\n", "dest": str(dest), **extra})
            assert agent.run(task).status_code == 202
            return agent.final(task.execution_id)

        done = write(allowed / "conf.d" / "app.conf", mode="0640")
        assert done["status"] == "success", done
        written = allowed / "conf.d" / "app.conf"
        assert written.read_text() == "key=value\n"
        assert oct(written.stat().st_mode & 0o777) == "0o640"
        kept = write(written, overwrite=False)
        assert kept["status"] == "failed"
        assert "overwrite is false" in str(kept["error"])
        for dest in (outside / "x.conf", allowed / "link" / "x.conf", f"{allowed}/../x.conf"):
            refused = write(dest)
            assert refused["status"] == "failed", dest
        assert list(outside.iterdir()) == []


def test_a_custom_handler_runs_and_an_unknown_one_fails(tmp_path: Path) -> None:
    with running_agent(tmp_path) as agent:
        usage = body("custom", {"handler": "disk.usage", "params": {"paths": [str(tmp_path)]}})
        unknown = body("custom", {"handler": "no.such"})
        agent.run(usage)
        agent.run(unknown)
        result = agent.final(usage.execution_id)
        assert result["status"] == "success"
        assert result["output"].startswith(f"{tmp_path}\ttotal=")
        missing = agent.final(unknown.execution_id)
        assert missing["status"] == "failed"
        assert "no handler 'no.such'" in missing["error"]


@pytest.mark.skipif(os.path.isdir("/run/systemd/system"), reason="this machine runs systemd")
def test_a_service_task_fails_clearly_without_systemd(tmp_path: Path) -> None:
    with running_agent(tmp_path) as agent:
        task = body("service", {"name": "nginx", "action": "restart"})
        agent.run(task)
        result = agent.final(task.execution_id)
    assert result["status"] == "failed"
    assert "need systemd" in result["error"]


def test_results_and_cancel_need_the_local_token(tmp_path: Path) -> None:
    with running_agent(tmp_path) as agent:
        task = body()
        agent.run(task)
        read = httpx.get(f"{agent.url}/tasks/{task.execution_id}", timeout=5)
        cancel = httpx.post(f"{agent.url}/tasks/{task.execution_id}/cancel", timeout=5)
    assert (read.status_code, cancel.status_code) == (401, 401)


def test_a_task_cancelled_before_it_arrives_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    task = body(content={"script": f"echo x > {marker}"})
    with running_agent(tmp_path) as agent:
        assert agent.cancel(task.execution_id).json() == {"cancelled": True}
        assert agent.run(task).status_code == 409
        result = agent.final(task.execution_id)
        finished = agent.run(body())
        agent.final(finished.json()["execution_id"])
        assert agent.cancel(finished.json()["execution_id"]).json() == {"cancelled": False}
    assert result["status"] == "cancelled"
    assert not marker.exists()


def test_an_execution_id_never_names_a_path(tmp_path: Path) -> None:
    (tmp_path / "agent").mkdir()
    (tmp_path / "agent" / "secret.json").write_text('{"status": "success"}')
    with running_agent(tmp_path) as agent:
        response = httpx.get(
            f"{agent.url}/tasks/..%2Fsecret",
            headers={"Authorization": f"Bearer {agent.token}"},
            timeout=5,
        )
    assert response.status_code == 404


def test_an_agent_started_again_kills_what_a_killed_one_left_running(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    task = body(content={"script": f"sleep 300 & echo $! > {pids}; echo $$ >> {pids}; wait"})
    with running_agent(tmp_path) as agent:
        agent.run(task)
        poll_until(lambda: pids.exists() and len(pids.read_text().split()) == 2, what="started")
        agent.process.kill()  # no chance to stop its tasks
        agent.process.wait()
        left = list(map(int, pids.read_text().split()))
        assert not any(gone(pid) for pid in left)  # orphans, still running
    with running_agent(tmp_path, key=agent.key) as again:
        result = again.final(task.execution_id)
        poll_until(lambda: all(gone(pid) for pid in left), what="the orphans are gone")
    assert result["status"] == "failed"
    assert result["error"] == "the agent stopped while the task ran; its processes were killed"
