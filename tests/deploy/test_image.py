"""The Manager's image: Dockerfile and .dockerignore, checked without a container engine.

The image must be built by the same script `make install` (and so CI) runs: each RUN of the
build stages is a `scripts/build.sh` step that `make install` runs too, and the image's
Python step is run here for real into a temporary venv."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from opscaffold.manager.cli import app as manager_cli
from opscaffold.manager.config import Settings, split_addr
from tests.deploy.conftest import ROOT

BUILD_SCRIPT = "scripts/build.sh"


@dataclass(frozen=True)
class Instruction:
    stage: str
    keyword: str
    arguments: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped, each with the
    name of its stage."""
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    instructions = []
    stage = ""
    for entry in logical:
        keyword, _, arguments = entry.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.search(r"\bAS\s+(\S+)$", arguments, re.IGNORECASE)
            stage = match[1] if match else arguments
        instructions.append(Instruction(stage, keyword, arguments.strip()))
    return instructions


DOCKERFILE = parse_dockerfile((ROOT / "Dockerfile").read_text())


def of(keyword: str, stage: str | None = None) -> list[Instruction]:
    return [i for i in DOCKERFILE if i.keyword == keyword and stage in (None, i.stage)]


def build_steps(commands: list[str]) -> set[str]:
    """The `scripts/build.sh STEP` steps these shell commands run (options dropped)."""
    steps = set()
    for command in commands:
        for match in re.finditer(rf"bash {re.escape(BUILD_SCRIPT)} (\S+)", command):
            steps.add(match[1])
    return steps


def test_three_stages_end_in_a_slim_python_runtime() -> None:
    stages = [i.stage for i in of("FROM")]
    assert stages == ["web", "python", "runtime"]
    args = {i.arguments.split("=")[0]: i.arguments.split("=", 1)[1] for i in of("ARG")}
    assert "slim" in args["PYTHON_IMAGE"]
    assert of("FROM", "runtime")[0].arguments.startswith("${PYTHON_IMAGE}")
    # The runtime takes the built environment only: no sources, no build tools.
    copies = [i.arguments for i in of("COPY", "runtime")]
    assert copies == ["--from=python /app/.venv /app/.venv"]


def test_every_build_step_is_a_step_make_install_runs_too() -> None:
    runs = [i.arguments for i in DOCKERFILE if i.keyword == "RUN" and i.stage != "runtime"]
    assert runs, "the build stages run nothing"
    for command in runs:
        assert BUILD_SCRIPT in command, f"a build step outside {BUILD_SCRIPT}: {command}"
    image_steps = build_steps(runs)
    assert image_steps == {"web-deps", "web", "python"}
    # What `make install` would run on a fresh checkout (-B: as if nothing were built).
    dry_run = subprocess.run(
        ["make", "-n", "-B", "install"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert dry_run.returncode == 0, dry_run.stderr
    assert image_steps <= build_steps(dry_run.stdout.splitlines())
    # The image's Python step differs only by its documented option.
    assert any(re.search(rf"{BUILD_SCRIPT} python --image$", command) for command in runs)


def test_runs_as_an_unprivileged_user() -> None:
    (user,) = of("USER", "runtime")
    uid, _, gid = user.arguments.partition(":")
    assert int(uid) != 0
    assert int(gid) != 0
    (setup,) = [i for i in of("RUN", "runtime") if "useradd" in i.arguments]
    assert f"--uid {uid}" in setup.arguments
    assert f"--gid {gid}" in setup.arguments


def test_ports_and_probe_are_the_managers() -> None:
    defaults = Settings()
    http_port = split_addr(defaults.server.http.addr)[1]
    grpc_port = split_addr(defaults.server.grpc.addr)[1]
    (expose,) = of("EXPOSE")
    assert {int(port) for port in expose.arguments.split()} == {http_port, grpc_port}
    (healthcheck,) = of("HEALTHCHECK")
    assert f"http://127.0.0.1:{http_port}/livez" in healthcheck.arguments


def test_the_probe_path_is_served(app_paths: set[str]) -> None:
    (healthcheck,) = of("HEALTHCHECK")
    path = re.search(r"https?://[^/]+(/\w+)", healthcheck.arguments)
    assert path is not None
    assert path[1] in app_paths


def test_serves_by_default_and_migrates_as_a_separate_command() -> None:
    (entrypoint,) = of("ENTRYPOINT")
    (cmd,) = of("CMD")
    assert json.loads(entrypoint.arguments) == ["ops-manager"]
    assert json.loads(cmd.arguments) == ["serve"]
    commands = {
        c.name or (c.callback.__name__ if c.callback else "")
        for c in manager_cli.registered_commands
    }
    assert {"serve", "migrate"} <= commands


def test_copies_name_files_that_exist_and_reach_the_build_context() -> None:
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for needed in ("scripts", "web", "src", "pyproject.toml", "uv.lock", "README.md"):
        assert needed not in ignored
    # Never a developer's leftovers in the image: their venv, npm packages or built console.
    assert {".venv", "web/node_modules", "src/opscaffold/manager/ui/static"} <= set(ignored)
    for copy in of("COPY"):
        if copy.arguments.startswith("--from="):
            continue
        *sources, _ = shlex.split(copy.arguments)
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_the_image_python_step_builds_the_manager_without_dev_tools(tmp_path: Path) -> None:
    """The Dockerfile's `build.sh python --image`, run for real: the Manager installed (not
    editable) with the console inside, and none of the dev tools."""
    if not (ROOT / "src/opscaffold/manager/ui/static/index.html").is_file():
        pytest.fail("the web console is not built: run `make install`")
    venv = tmp_path / "venv"
    result = subprocess.run(
        ["bash", BUILD_SCRIPT, "python", "--image"],
        cwd=ROOT,
        env={**os.environ, "VENV": str(venv)},
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode == 0, result.stderr
    python = venv / "bin" / "python"
    probe = (
        "import importlib.util, pathlib, opscaffold.manager as m; "
        "print(pathlib.Path(m.__file__).parent / 'ui/static/index.html'); "
        "print(importlib.util.find_spec('pytest'), importlib.util.find_spec('mypy'))"
    )
    shown = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, timeout=30, cwd=tmp_path
    )
    assert shown.returncode == 0, shown.stderr
    index, dev_tools = shown.stdout.splitlines()
    assert Path(index).is_file()
    assert str(venv) in index
    assert dev_tools == "None None"
    help_text = subprocess.run(
        [str(venv / "bin" / "ops-manager"), "--help"], capture_output=True, text=True, timeout=30
    )
    assert help_text.returncode == 0
    assert "migrate" in help_text.stdout
