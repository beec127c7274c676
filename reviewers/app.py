"""``create_app(ctx)``: the reviewer web app.

Middleware, outermost first: security headers (CSP without inline script or
remote images, no framing, no caching of pages that show PHI), request
timing for ``/metrics``, signed-cookie sessions.  The app-wide dependency
:func:`reviewers.auth.gate` makes login the default for every route.
"""

from __future__ import annotations

import importlib
import logging
import time
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from urllib.parse import quote

from mailbot.context import Context
from reviewers.auth import Forbidden, LoginLimiter, LoginRequired, gate
from reviewers.csrf import CsrfError
from reviewers.pages import render
from reviewers.prometheus import build_registry
from reviewers.routes import OPTIONAL, ROUTERS
from reviewers.sessions import SessionMiddleware, session_secret

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "static"

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def create_app(ctx: Context) -> FastAPI:
    app = FastAPI(title="mailbot reviewers", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(gate)])
    app.state.ctx = ctx
    app.state.login_limiter = LoginLimiter(ctx.settings.web.login_attempts_per_minute,
                                           delay=ctx.settings.web.login_retry_seconds)
    app.state.registry, app.state.request_seconds = build_registry(ctx)
    app.state.routers = []

    for name in ROUTERS:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            if name not in OPTIONAL:
                raise
            # Another part of the service is not (fully) there yet: the queue
            # must keep working, so leave its pages out and say so loudly.
            if isinstance(exc, ModuleNotFoundError) and exc.name == name:
                log.info("router %s is not installed; skipping", name)
            else:
                log.error("router %s cannot be imported; its pages are unavailable", name, exc_info=True)
            continue
        app.include_router(module.router)
        app.state.routers.append(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # Browsers ask for /favicon.ico on every page, the login page included:
    # a plain route outside the API routes (so outside the login gate), like /static.
    app.add_route("/favicon.ico", _favicon, include_in_schema=False)
    app.state.paths = frozenset(r.path for r in api_routes(app))   # the nav shows only pages that exist

    _exception_handlers(app)
    _middleware(app, ctx)
    return app


async def _favicon(request) -> Response:
    from starlette.responses import FileResponse

    return FileResponse(STATIC_DIR / "favicon.ico", media_type="image/x-icon",
                        headers={"Cache-Control": "public, max-age=86400"})


def api_routes(app: FastAPI) -> list[APIRoute]:
    """Every route of every included router (the tests check each one's access)."""
    found = [r for r in app.router.routes if isinstance(r, APIRoute)]
    for router in app.state.routers:
        found.extend(r for r in router.routes if isinstance(r, APIRoute))
    return found


def _exception_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        accept = request.headers.get("accept", "")
        wants_page = "text/html" in accept or "*/*" in accept or not accept
        if request.method in ("GET", "HEAD") and wants_page:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        kept = await _typed_text(request)
        if kept:
            # A reviewer whose session ended while editing must not lose the text.
            return render(request, "web/session_ended.html", {"kept": kept}, title="Session ended",
                          status_code=401)
        return PlainTextResponse("login required", status_code=401, headers={"WWW-Authenticate": "Cookie"})

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return render(request, "web/error.html", {"message": "This page is for administrators."},
                      title="Not allowed", status_code=403)

    @app.exception_handler(CsrfError)
    async def csrf_failed(request: Request, exc: CsrfError) -> Response:
        return render(request, "web/error.html",
                      {"message": "This form has expired or did not come from this site. "
                                  "Go back, reload the page and try again."},
                      title="Form expired", status_code=403)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "Something went wrong."
        return render(request, "web/error.html", {"message": message}, title=f"Error {exc.status_code}",
                      status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        fields = ", ".join(".".join(str(p) for p in e["loc"][1:]) for e in exc.errors()) or "input"
        return render(request, "web/error.html", {"message": f"The request was not valid ({fields})."},
                      title="Bad request", status_code=422)


_TEXT_FIELDS = ("body", "question", "reply_text", "reason")


async def _typed_text(request: Request) -> list[tuple[str, str]]:
    """Free text a form carried (draft, question, reply), to hand back."""
    if not request.headers.get("content-type", "").startswith(("application/x-www-form-urlencoded",
                                                                "multipart/form-data")):
        return []
    form = await request.form()
    return [(name, value) for name in _TEXT_FIELDS
            if isinstance(value := form.get(name), str) and value.strip()]


def _middleware(app: FastAPI, ctx: Context) -> None:
    web = ctx.settings.web
    app.add_middleware(SessionMiddleware, secret=session_secret(ctx.settings),
                       max_age=web.session_hours * 3600, secure=web.secure_cookies)
    histogram = app.state.request_seconds

    @app.middleware("http")
    async def headers_and_timing(request: Request, call_next) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        histogram.labels(getattr(route, "path", "other"), request.method).observe(time.perf_counter() - started)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response
