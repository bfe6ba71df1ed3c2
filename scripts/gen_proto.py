"""Generate the Python stubs (and .pyi types) of proto/ into src/opscaffold/protocol/.

protoc names imports after the proto path (`from ops.daemon import ...`); they are rewritten
to the package they live in. Run through `make proto`; CI regenerates and diffs.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[1]
PROTO_DIR = ROOT / "proto"
OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "src" / "opscaffold" / "protocol"
PACKAGE = "opscaffold.protocol"


def main() -> None:
    # The mypy plugins are console scripts installed beside this interpreter.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO_DIR}",
        f"-I{include}",
        f"--python_out={OUT}",
        f"--grpc_python_out={OUT}",
        f"--mypy_out={OUT}",
        f"--mypy_grpc_out={OUT}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for path in (OUT / "ops").rglob("*"):
        if path.suffix in (".py", ".pyi"):
            text = re.sub(r"^from ops\.", f"from {PACKAGE}.ops.", path.read_text(), flags=re.M)
            text = re.sub(r"^import ops\.", f"import {PACKAGE}.ops.", text, flags=re.M)
            path.write_text(text)
    for folder in [OUT / "ops", *(p for p in (OUT / "ops").rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()


if __name__ == "__main__":
    main()
