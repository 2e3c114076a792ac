"""The plugin's FastAPI app: a JSON API for heals and pull requests, and the pages.

Airflow mounts plugin apps without protecting them, so every route here depends on
``authenticated``: an Airflow user (the API server's JWT, as a bearer token or the UI's
cookie) or the token configured as ``HEALER_API_TOKEN`` (or ``[healer] api_token``). The app
only reads the ledger; no route changes anything.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import asdict
from functools import lru_cache

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from healer import config
from healer import fleet, markdown_html
from healer.airflow import dashboard, pages, views
from healer.airflow.links import URL_PREFIX
from healer.errors import ConfigError
from healer.ledger import Ledger, jsonable
from healer.redact import redact_json
from healer.settings import Settings

log = logging.getLogger(__name__)

AIRFLOW_COOKIE = "_token"  # airflow.api_fastapi.auth.managers.base_auth_manager.COOKIE_NAME_JWT_TOKEN


def configured_token() -> str | None:
    """The shared API token: ``HEALER_API_TOKEN``, else ``[healer] api_token``; None when unset."""
    token = Settings.from_env().api_token
    if not token:
        try:
            from airflow.configuration import conf

            token = conf.get("healer", "api_token", fallback=None)
        except Exception:  # no Airflow config to read: no configured token, the API refuses tokens
            log.debug("[healer] api_token not read", exc_info=True)
            token = None
    return token or None


class NotAuthenticated(HTTPException):
    def __init__(self, detail: str):
        super().__init__(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


async def authenticated(request: Request) -> str:
    """The caller's name; 401 unless an Airflow user or the configured token."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    bearer = credentials.strip() if scheme.lower() == "bearer" else ""
    token = configured_token()
    if token and bearer and hmac.compare_digest(bearer.encode(), token.encode()):
        return "api token"
    user = getattr(request.state, "user", None)  # set by an auth manager's middleware
    if user is None:
        jwt = bearer or request.cookies.get(AIRFLOW_COOKIE)
        if not jwt:
            raise NotAuthenticated("Not authenticated: log in to Airflow, or send 'Authorization: Bearer <token>'")
        user = await _airflow_user(jwt)
    try:
        return user.get_name()
    except Exception:  # an auth manager's user without get_name(): its text names it
        log.debug("user %r has no name", type(user).__name__, exc_info=True)
        return str(user)


async def _airflow_user(jwt: str):
    try:
        from airflow.api_fastapi.core_api.security import resolve_user_from_token

        return await resolve_user_from_token(jwt)
    except HTTPException as exc:
        raise NotAuthenticated(f"Not authenticated: {exc.detail}") from None
    except Exception:  # outside the API server there is no auth manager to ask
        raise NotAuthenticated("Not authenticated: this token is not valid here") from None


@lru_cache(maxsize=4)
def _ledger_for(url: str) -> Ledger:
    return Ledger(url)


def ledger() -> Ledger:
    """The ledger the pages read (``HEALER_LEDGER_URL``, or SQLite in ``HEALER_HOME``)."""
    from healer.airflow import queue

    led = _ledger_for(config.ledger_url())
    queue.ensure_table(led)
    return led


def _page(request: Request, user: str, name: str, status_code: int = 200, **values) -> HTMLResponse:
    html = pages.render(name, prefix=request.scope.get("root_path", "").rstrip("/") or URL_PREFIX, user=user, **values)
    return HTMLResponse(html, status_code=status_code)


def _not_found(what: str):
    raise HTTPException(status_code=404, detail=f"{what} not found")


api = APIRouter(prefix="/api", dependencies=[Depends(authenticated)])
ui = APIRouter(dependencies=[Depends(authenticated)])


@api.get("/heals")
def list_heals(status: str | None = None, pipeline: str | None = None, limit: int = Query(100, ge=1, le=1000)):
    """Heals, newest first."""
    return {"heals": views.heal_rows(ledger(), status=status, pipeline=pipeline, limit=limit)}


@api.get("/heals/{heal_id}")
def get_heal(heal_id: int):
    """One heal with its evidence, candidates, diff and validation."""
    return views.heal_detail(ledger(), heal_id) or _not_found(f"heal {heal_id}")


@api.get("/prs")
def list_prs(status: str | None = None, limit: int = Query(100, ge=1, le=1000)):
    """Pull requests, newest first."""
    return {"prs": views.pr_rows(ledger(), status=status, limit=limit)}


@api.get("/prs/{pr_id}")
def get_pr(pr_id: int):
    """One pull request with its body."""
    return views.pr_detail(ledger(), pr_id) or _not_found(f"pull request {pr_id}")


@api.get("/handoffs")
def list_handoffs(status: str | None = None, limit: int = Query(100, ge=1, le=1000)):
    """Failures handed off by Airflow tasks (waiting ones are healed by the next scheduled run)."""
    from healer.airflow import queue

    return {"handoffs": [views._handoff_json(r) for r in queue.recent(ledger(), status=status, limit=limit)]}


@api.get("/metrics")
def get_metrics():
    """Every heal's figures from the ledger in Prometheus' text format (scrape it with the API token)."""
    from healer.telemetry import prometheus
    from healer.telemetry.figures import ledger_figures

    return Response(prometheus.render(ledger_figures(ledger())), media_type=prometheus.CONTENT_TYPE)


def _index(map_index: str | None) -> int | None:
    # the UI leaves {MAP_INDEX} unfilled where a task is not mapped: every index is meant
    try:
        return int(map_index) if map_index not in (None, "") else None
    except ValueError:
        return None


@api.get("/task")
def get_task(dag_id: str, run_id: str, task_id: str, map_index: str | None = None):
    """Hand-offs, heals and PR of one task instance."""
    return views.task_view(ledger(), dag_id, run_id, task_id, _index(map_index))


def _fleet(pipeline: str | None, repo: str | None, since: str | None, until: str | None) -> fleet.Fleet:
    try:
        wanted = fleet.FleetFilter.parse(pipeline=pipeline, repo=repo, since=since, until=until)
    except ConfigError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    return fleet.figures(ledger(), wanted)


@api.get("/fleet")
def get_fleet(pipeline: str | None = None, repo: str | None = None, since: str | None = None,
              until: str | None = None):
    """The dashboard's figures (UTC days ``since``..``until``, YYYY-MM-DD; the last 30 days by default)."""
    return redact_json(jsonable(asdict(_fleet(pipeline, repo, since, until))))


@ui.get("/", response_class=HTMLResponse)
def index(request: Request):
    """The list of heals."""
    return RedirectResponse(url=str(request.url_for("heals_page")))


@ui.get("/heals", response_class=HTMLResponse, name="heals_page")
def heals_page(request: Request, user: str = Depends(authenticated), status: str | None = None,
               pipeline: str | None = None):
    """Heals, newest first: status, pipeline, root cause, fixer, PR, time to PR."""
    led = ledger()
    return _page(request, user, "heals", heals=views.heal_rows(led, status=status, pipeline=pipeline),
                 counts=views.counts(led))


@ui.get("/dashboard", response_class=HTMLResponse, name="dashboard_page")
def dashboard_page(request: Request, user: str = Depends(authenticated), pipeline: str | None = None,
                   repo: str | None = None, since: str | None = None, until: str | None = None):
    """The fleet: heals per day by outcome, time to PR, PRs and verification, model spend, the
    upstream inputs that broke the most pipelines, and every pipeline's state."""
    return _page(request, user, "fleet", **dashboard.values(_fleet(pipeline, repo, since, until)))


@ui.get("/heals/{heal_id}", response_class=HTMLResponse)
def heal_page(request: Request, heal_id: int, user: str = Depends(authenticated)):
    """One heal: what failed, the evidence, candidates, the change and its validation."""
    heal = views.heal_detail(ledger(), heal_id) or _not_found(f"heal {heal_id}")
    return _page(request, user, "heal", h=heal)


@ui.get("/prs", response_class=HTMLResponse)
def prs_page(request: Request, user: str = Depends(authenticated), status: str | None = None):
    """Pull requests, newest first."""
    return _page(request, user, "prs", prs=views.pr_rows(ledger(), status=status))


@ui.get("/prs/{pr_id}", response_class=HTMLResponse)
def pr_page(request: Request, pr_id: int, user: str = Depends(authenticated)):
    """One pull request and its body."""
    pr = views.pr_detail(ledger(), pr_id) or _not_found(f"pull request {pr_id}")
    return _page(request, user, "pr", p=pr, body_html=markdown_html.render(pr.get("body")))


@ui.get("/task", response_class=HTMLResponse)
def task_page(request: Request, dag_id: str, run_id: str, task_id: str, map_index: str | None = None,
              go: str | None = None, user: str = Depends(authenticated)):
    """A task instance's heals; ``go=pr`` (the operator's extra link) goes straight to its PR."""
    view = views.task_view(ledger(), dag_id, run_id, task_id, _index(map_index))
    if go == "pr" and view["pr"]:
        href = view["pr"]["href"]
        if href.startswith(URL_PREFIX):  # the plugin's own page, wherever the app is mounted
            href = str(request.url_for("pr_page", pr_id=view["pr"]["id"]))
        return RedirectResponse(url=href, status_code=302)
    return _page(request, user, "task", t=view)


def create_app() -> FastAPI:
    """The app the plugin mounts at ``/healer`` (no OpenAPI docs: they would be unprotected)."""
    app = FastAPI(title="Healer", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(api)
    app.include_router(ui)

    @app.exception_handler(HTTPException)
    async def _errors(request: Request, exc: HTTPException):
        # a browser on a page gets a page (with a way to log in); API clients get JSON
        if "text/html" in request.headers.get("accept", "") and "/api/" not in request.url.path:
            login = "/" if exc.status_code == 401 else None
            title = "Log in to see Healer" if exc.status_code == 401 else f"{exc.status_code}"
            return _page(request, "not signed in" if exc.status_code == 401 else "", "error", exc.status_code,
                         title=title, message=str(exc.detail), login=login)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    return app
