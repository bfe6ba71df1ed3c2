"""Real packages built by scripts/package.py, signed orders for them, and a small real HTTP
server that honours Range requests and can be told to cut a download midway."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from opscaffold.protocol.manifest import Manifest, sign, timestamp
from opscaffold.protocol.package import host_arch, host_os
from opscaffold.protocol.update import UpdateOrder

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "package.py"
SOURCE = ROOT / "src"


def build(component: str, version: str, output: Path, source: Path = SOURCE) -> Path:
    """The package scripts/package.py makes, as `make package` runs it."""
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--version",
            version,
            "--component",
            component,
            "--output",
            str(output),
            "--source",
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return Path(result.stdout.strip())


EXITS = 'import sys\nsys.exit("this agent release is broken")\n'
HANGS = "import time\ntime.sleep(3600)\n"  # runs, and never answers /health


def broken_agent_source(into: Path, main: str = EXITS) -> Path:
    """A copy of the sources whose agent does not work: `main` replaces its __main__."""
    shutil.copytree(
        SOURCE / "opscaffold", into / "opscaffold", ignore=shutil.ignore_patterns("__pycache__")
    )
    (into / "opscaffold" / "daemon" / "agent" / "__main__.py").write_text(main)
    return into


def manifest_for(path: Path, component: str, version: str) -> Manifest:
    data = path.read_bytes()
    return Manifest(
        component=component,
        version=version,
        os=host_os(),
        arch=host_arch(),
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        created_at=timestamp(datetime.now(UTC)),
    )


def order_for(
    manifest: Manifest,
    key: rsa.RSAPrivateKey,
    url: str,
    record_id: int,
    *,
    rollback: bool = False,
) -> UpdateOrder:
    return UpdateOrder(
        record_id=record_id,
        manifest=manifest,
        signature=base64.b64encode(sign(manifest, key)).decode(),
        download_url=url,
        rollback=rollback,
    )


@dataclass
class Seen:
    path: str
    range: str | None
    authorization: str | None


@dataclass
class PackageServer:
    """Serves `files` by name; `cut_next` bytes into the next download it closes the
    connection (a network cut)."""

    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    cut_next: int | None = None
    _server: ThreadingHTTPServer | None = None

    def url(self, name: str) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/{name}"

    def add(self, path: Path) -> str:
        self.files[path.name] = path.read_bytes()
        return self.url(path.name)

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                owner._serve(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        wanted = handler.headers.get("Range")
        self.requests.append(Seen(handler.path, wanted, handler.headers.get("Authorization")))
        data = self.files.get(handler.path.lstrip("/"))
        if data is None:
            handler.send_error(HTTPStatus.NOT_FOUND)
            return
        start = 0
        if wanted and (found := re.fullmatch(r"bytes=(\d+)-", wanted)):
            start = int(found.group(1))
            handler.send_response(HTTPStatus.PARTIAL_CONTENT)
            handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            handler.send_response(HTTPStatus.OK)
        body = data[start:]
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        cut, self.cut_next = self.cut_next, None
        if cut is not None:
            handler.wfile.write(body[:cut])
            handler.wfile.flush()
            handler.close_connection = True
            return
        handler.wfile.write(body)
