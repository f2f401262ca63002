"""Routes of the web pages: ``/`` and ``/calls`` the call list, ``/dashboard`` the statistics,
``/static`` their files."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"
PAGES = Path(__file__).resolve().parent / "pages"
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


def _compose(title: str, script: str, main: str, path: str) -> bytes:
    """A page: the shared shell (head, bar, sign-in) around its own main section."""
    shell = (PAGES / "shell.html").read_text(encoding="utf-8")
    html = shell.format(title=title, script=script, main=(PAGES / main).read_text("utf-8"))
    current = f'<a href="{path}" '
    return html.replace(current, current + 'aria-current="page" ', 1).encode()


# Composed once, at start-up.
_CALLS = _compose("Lịch sử cuộc gọi", "app.js", "calls.html", "/calls")
_DASHBOARD = _compose("Thống kê cuộc gọi", "dashboard.js", "dashboard.html", "/dashboard")


async def page(_: Request) -> Response:
    return Response(_CALLS, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


async def dashboard(_: Request) -> Response:
    return Response(_DASHBOARD, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


routes = [
    Route("/", page, methods=["GET"]),
    Route("/calls", page, methods=["GET"]),
    Route("/dashboard", dashboard, methods=["GET"]),
    Mount("/static", StaticFiles(directory=STATIC), name="static"),
]
