"""Serve the built web console (web/ → `make web` → static/) beside the API.

An ASGI middleware rather than a route: a catch-all route would also answer API paths whose
method does not match (turning 405 into a page) and would have to join the permission table.
Only GET/HEAD requests outside the server's own paths reach the files; everything else passes
through untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

STATIC_DIR = Path(__file__).parent / "static"
# Paths the server answers itself: a client route never shadows them, and an unknown one
# under them stays a JSON 404 instead of becoming the app's page.
RESERVED_PREFIXES = ("/api", "/metrics", "/health", "/livez", "/readyz")
# Vite names every file under assets/ by a hash of its content: a changed file is a new URL.
HASHED_DIR = "assets"
IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"
# Emotion (MUI) injects <style> elements at run time, hence 'unsafe-inline' for styles only;
# scripts come from this origin alone.
UI_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
NOT_BUILT = (
    "The Ops Scaffold web console is not built. Run `make web` (or `make install`) and "
    "restart the Manager; the REST API is at /api/v1 meanwhile.\n"
)


@dataclass(frozen=True)
class _UiRoute:
    """What the request metrics see as the route: one label for every console path."""

    path: str = "/{ui_path}"


UI_ROUTE = _UiRoute()


def is_reserved(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in RESERVED_PREFIXES)


class WebConsole:
    """Answers GET/HEAD outside the reserved paths with a built file, or index.html for a
    client-side route (the React router reads the URL)."""

    def __init__(self, app: ASGIApp, static_dir: Path = STATIC_DIR) -> None:
        self.app = app
        self.root = static_dir.resolve()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or is_reserved(scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        scope["route"] = UI_ROUTE
        response = self._respond(scope["path"])
        response.headers.setdefault("content-security-policy", UI_CSP)
        await response(scope, receive, send)

    def _respond(self, path: str) -> Response:
        index = self.root / "index.html"
        if not index.is_file():
            return PlainTextResponse(
                NOT_BUILT, status_code=404, headers={"cache-control": NO_CACHE}
            )
        file = self._file(path)
        if file is not None and file != index:
            hashed = file.parent == self.root / HASHED_DIR
            return FileResponse(file, headers={"cache-control": IMMUTABLE if hashed else NO_CACHE})
        if path.startswith(f"/{HASHED_DIR}/"):
            # A missing asset is an old page asking for a file a newer build replaced: answering
            # it with index.html would hand the browser HTML as a script.
            return PlainTextResponse("not found\n", status_code=404)
        return FileResponse(index, headers={"cache-control": NO_CACHE})

    def _file(self, path: str) -> Path | None:
        relative = path.lstrip("/")
        if not relative or "\x00" in relative:
            return None
        candidate = (self.root / relative).resolve()
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        return candidate
