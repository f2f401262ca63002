"""Routes of the web pages: ``/`` and ``/calls`` the call list, ``/dashboard`` the statistics,
``/static`` their files."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"
# No inline script or style, nothing from elsewhere but recordings: a key kept in
# sessionStorage is only as safe as the scripts the page runs.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "media-src 'self' https: http:; connect-src 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


async def page(_: Request) -> Response:
    return FileResponse(STATIC / "calls.html", headers=SECURITY_HEADERS)


async def dashboard(_: Request) -> Response:
    return FileResponse(STATIC / "dashboard.html", headers=SECURITY_HEADERS)


routes = [
    Route("/", page, methods=["GET"]),
    Route("/calls", page, methods=["GET"]),
    Route("/dashboard", dashboard, methods=["GET"]),
    Mount("/static", StaticFiles(directory=STATIC), name="static"),
]
