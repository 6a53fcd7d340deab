"""The execution page: ``GET /executions/{id}``, one HTML file, its script and its stylesheet,
shipped in the package (``integr8scode_api/page/``). The page logs in through the API and reads
the execution and its timeline with the same token; the server only hands out the files.

A strict Content-Security-Policy: scripts and styles only from this origin (no inline code),
requests only to this origin, no frames, no plugins."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse

PAGE_PREFIX = "/executions"
ASSETS = "/page"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def page_url(execution_id: str) -> str:
    return f"{PAGE_PREFIX}/{execution_id}"


def _read(name: str) -> bytes:
    return resources.files("integr8scode_api").joinpath("page", name).read_bytes()


def build_page_router() -> APIRouter:
    """The page's routes; the files are read once, here."""
    html, script, style = (_read(n) for n in ("execution.html", "execution.js", "execution.css"))
    router = APIRouter(include_in_schema=False)

    @router.get(PAGE_PREFIX + "/{execution_id}", response_class=HTMLResponse)
    async def execution_page(execution_id: str) -> Response:
        # The id is read by the script from the URL; nothing of it is written into the HTML.
        return Response(html, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)

    @router.get(ASSETS + "/execution.js")
    async def page_script() -> Response:
        return Response(
            script, media_type="text/javascript; charset=utf-8", headers=SECURITY_HEADERS
        )

    @router.get(ASSETS + "/execution.css")
    async def page_style() -> Response:
        return Response(style, media_type="text/css; charset=utf-8", headers=SECURITY_HEADERS)

    return router
