"""Every route and every dependency of the HTTP API runs on the event loop (issue 12).

FastAPI runs a plain ``def`` endpoint or dependency in its thread pool: per request a thread
hop and two event-loop wake-ups, for what is a few attribute reads in accord. A new ``def``
dependency would quietly bring them back; this finds it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Mount

from accord.config import Settings
from accord.entrypoints.api import create_app


def _runs_on_the_loop(call: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call):
        return True
    method = getattr(type(call), "__call__", None)  # noqa: B004 - an instance, as HTTPBearer
    return not inspect.isroutine(call) and inspect.iscoroutinefunction(method)


def _api_routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """The API's routes and their paths, through included routers and mounted applications
    (SCIM)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        elif isinstance(route, Mount):
            yield from _api_routes(route.routes, prefix + route.path)
        elif (router := getattr(route, "original_router", None)) is not None:
            yield from _api_routes(router.routes, prefix)  # FastAPI's included router


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    if dependant.call is not None:
        yield dependant.call
    for dependency in dependant.dependencies:
        yield from _calls(dependency)


def test_no_route_or_dependency_of_the_api_runs_in_the_thread_pool(tmp_path: Any) -> None:
    app = create_app(settings=Settings(data_dir=tmp_path))
    routes = list(_api_routes(app.routes))
    assert len(routes) > 40  # the API's routes, not an empty app
    assert any(path.startswith("/scim/v2/") for path, _ in routes)

    in_thread_pool = {
        f"{path} {sorted(route.methods)}: {getattr(call, '__qualname__', call)!r}"
        for path, route in routes
        for call in _calls(route.dependant)
        if not _runs_on_the_loop(call)
    }

    assert not in_thread_pool, "make these async def:\n" + "\n".join(sorted(in_thread_pool))


def test_every_error_handler_of_the_api_runs_on_the_loop(tmp_path: Any) -> None:
    """Starlette runs a plain ``def`` exception handler in the thread pool too: every 4xx."""
    app = create_app(settings=Settings(data_dir=tmp_path))
    apps = [app] + [m.app for m in app.routes if isinstance(m, Mount)]  # and SCIM's
    handlers = [h for a in apps for h in getattr(a, "exception_handlers", {}).values()]
    assert len(handlers) >= 6  # ours: the API's three, SCIM's own

    assert [h for h in handlers if not _runs_on_the_loop(h)] == []
