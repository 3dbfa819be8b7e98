"""The web page at ``/``: server-rendered HTML and a small script, updated over SSE.

The page is one HTML document rendered here (no template engine, no CDN): panels for
runs, hosts and models, resources, spend and actors, each filled from the JSON API by
``static/app.js`` (plain JavaScript shipped in the package) and refreshed when
``/api/events`` says something changed. A run's row opens its steps, which progress
live, and its Mermaid graph (as text, and drawn as boxes by the script); a run links
to its trace in Jaeger when ``daemon.jaeger_url`` is set.

The browser authenticates with a cookie: open ``/?token=<token>`` once (``reactor
serve`` prints that URL) and the page sets ``reactor_token`` (HttpOnly, SameSite=Strict)
so that ``fetch`` and ``EventSource``, which cannot send an Authorization header, are
authorised on the same origin.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

if TYPE_CHECKING:
    from reactor.daemon._daemon import Daemon

__all__ = ["web_routes"]

_STATIC = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}


def _static(name: str) -> bytes:
    return resources.files("reactor.daemon").joinpath("static", name).read_bytes()


def render_page(daemon: Daemon) -> str:
    """The page's HTML (the script fills the panels)."""
    from reactor.daemon._daemon import version  # noqa: PLC0415

    settings = {"jaeger": daemon.jaeger_url or "", "version": version()}
    reactors = "".join(
        f'<option value="{html.escape(name)}">{html.escape(name)}</option>'
        for name in sorted(daemon.reactors)
    )
    page = _static("index.html").decode()
    for key, value in (
        ("@VERSION@", html.escape(settings["version"])),
        ("@URL@", html.escape(daemon.url)),
        ("@REACTORS@", reactors),
        ("@SETTINGS@", html.escape(json.dumps(settings), quote=False)),
    ):
        page = page.replace(key, value)
    return page


def web_routes(daemon: Daemon) -> list[BaseRoute]:
    """``/`` and ``/static/{name}``."""

    async def page(request: Request) -> Response:
        token = request.query_params.get("token")
        if token:  # the guard checked it: keep it as a cookie, and drop it from the URL
            response: Response = RedirectResponse("/", status_code=303)
            response.set_cookie("reactor_token", token, httponly=True, samesite="strict", path="/")
            return response
        return HTMLResponse(render_page(daemon), headers={"Cache-Control": "no-store"})

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        kind = _STATIC.get(name)
        if kind is None:
            from reactor.daemon._app import error_response  # noqa: PLC0415
            from reactor.daemon._errors import ApiError  # noqa: PLC0415

            return error_response(ApiError("not_found", f"no static file {name!r}"))
        return Response(_static(name), media_type=kind)

    return [Route("/", page, methods=["GET"]), Route("/static/{name}", static, methods=["GET"])]
