from __future__ import annotations

from collections.abc import Iterable, Iterator

from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Route

API_PREFIX = "/api/v1"


def iter_routes(routes: Iterable[BaseRoute]) -> Iterator[tuple[str, str]]:
    """(method, path template) of every endpoint, looking inside included routers."""
    for route in routes:
        nested = getattr(route, "original_router", None)  # a router included lazily
        if nested is not None:
            yield from iter_routes(nested.routes)
        elif isinstance(route, Route | APIRoute):
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    yield method, route.path
