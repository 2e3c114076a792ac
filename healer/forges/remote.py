"""What the GitHub and GitLab forges share: the HTTP client and the open-or-update logic.

    RemoteForge                      open-or-update by fingerprint, ledger rows, merge, close,
    │                                sync (merged, closed, reverted), pending pull requests
    ├── GitHubForge  (github.py)     pull requests, REST API, github.com or Enterprise
    └── GitLabForge  (gitlab.py)     merge requests, API v4, gitlab.com or self-hosted

    Api                              JSON over HTTP: auth headers, retries with backoff,
                                     rate limits; every bad answer is one ApiError line

    ForgeError (healer.errors)
    └── ApiError                     a forge answered with an error or could not be reached

The forge never pushes: the workspace pushed the branch before ``open`` is called. What the
forge guarantees is that a pushed branch is not orphaned: when the forge keeps failing, the
pull request is recorded in the ledger as ``pending`` and ``healer sync`` opens it later.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence
from urllib.parse import urlsplit


from healer.errors import ApiError, ForgeError  # ApiError is imported from here too
from healer.forges.base import Audience, PullRequest
from healer.ledger import Ledger, as_utc, prs, utcnow
from healer.settings import Settings

if TYPE_CHECKING:  # httpx (with its CLI's imports) loads only when a remote forge is used
    import httpx

log = logging.getLogger("healer.forges")

# A storm PR's marker also lists its members: <!-- healer:fingerprint=abc members=d,e -->
FINGERPRINT_MARKER = re.compile(r"<!--\s*healer:fingerprint=([0-9A-Za-z]+)(?:\s[^<>]*?)?\s*-->")
LABEL = "healer"
RETRY_STATUSES = frozenset({500, 502, 503, 504})
# GitHub documents no reset header for its secondary rate limit, only "wait a minute".
SECONDARY_LIMIT_WAIT = 60.0


@dataclass(frozen=True)
class Retry:
    """How hard to try: transient answers (5xx, network, short rate limits) are retried.

    A rate limit that resets later than ``max_wait`` seconds fails at once: a heal should
    not hold a worker for an hour; the pull request is kept as pending instead.
    """

    attempts: int = 5
    backoff: float = 1.0  # seconds before the second attempt; doubles each time
    max_backoff: float = 30.0
    max_wait: float = 60.0

    def delay(self, attempt: int) -> float:
        return min(self.backoff * 2 ** attempt, self.max_backoff)


@dataclass(frozen=True)
class RemoteState:
    """A pull (merge) request as the forge reports it."""

    number: str
    url: str
    status: str  # open | merged | closed
    draft: bool
    title: str = ""
    body: str = ""
    head_sha: str | None = None
    merge_sha: str | None = None
    merged_at: str | None = None


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("healer")
    except Exception:  # running from a source tree that is not installed
        log.debug("no installed healer version", exc_info=True)
        return "dev"


class Api:
    """JSON over HTTP to one forge API.

    ``transport`` is httpx's seam: tests and proxies may pass their own; the default talks
    to ``base_url``. ``sleep`` and ``clock`` are injectable so retries can be tested fast.
    """

    def __init__(self, label: str, base_url: str, headers: Mapping[str, str], *, token_env: str,
                 transport: httpx.BaseTransport | None = None, retry: Retry = Retry(),
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time,
                 timeout: float = 30.0):
        import httpx

        self.label, self.token_env = label, token_env
        self.base_url = base_url.rstrip("/")
        self.retry, self.sleep, self.clock = retry, sleep, clock
        self.client = httpx.Client(base_url=self.base_url + "/", transport=transport, timeout=timeout,
                                   headers={"User-Agent": f"healer/{_version()}", **headers})

    def request(self, method: str, path: str, *, what: str, json: Any = None,
                params: Mapping[str, Any] | None = None) -> Any:
        """The decoded JSON answer, or an ApiError saying what failed, where, and why."""
        import httpx

        path = path.lstrip("/")
        where = f"{method} {self.base_url}/{path}"
        for attempt in range(self.retry.attempts):
            try:
                response = self.client.request(method, path, json=json, params=params)
            except httpx.TransportError as exc:
                problem = ApiError(_line(f"{self.label}: cannot {what}: {where}: {type(exc).__name__}: {exc}"))
                wait = self.retry.delay(attempt)
            else:
                if response.status_code < 400:
                    return self._decode(response, where, what)
                wait = self._wait(response, attempt)
                problem = self._error(response, where, what, wait)
                if wait is None or wait > self.retry.max_wait:
                    raise problem
            if attempt == self.retry.attempts - 1:
                raise problem
            log.warning("%s; retrying in %.0f s (attempt %d of %d)", problem, wait, attempt + 2, self.retry.attempts)
            self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _decode(self, response: httpx.Response, where: str, what: str) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            # A proxy or login page answering for the API: say so instead of a JSON traceback.
            raise ApiError(_line(f"{self.label}: cannot {what}: {where} answered {response.status_code} with "
                                 f"{response.headers.get('content-type', 'no content type')}, not JSON: "
                                 f"{response.text[:120]}"), response.status_code) from None

    def _wait(self, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before trying again, or None when trying again cannot help."""
        status, headers = response.status_code, response.headers
        if status in RETRY_STATUSES:
            return self.retry.delay(attempt)
        if status not in (403, 429):
            return None
        if "retry-after" in headers:
            return _retry_after(headers["retry-after"], self.clock())
        remaining = headers.get("x-ratelimit-remaining", headers.get("ratelimit-remaining"))
        reset = headers.get("x-ratelimit-reset", headers.get("ratelimit-reset"))
        if remaining == "0" and reset:
            try:
                # +1: the reset second itself may still be limited
                return max(0.0, float(reset) - self.clock()) + 1.0
            except ValueError:
                pass
        if "secondary rate limit" in response.text.lower():
            return SECONDARY_LIMIT_WAIT
        # A 403 that is not a rate limit is a permission problem; retrying will not fix it.
        return self.retry.delay(attempt) if status == 429 else None

    def _error(self, response: httpx.Response, where: str, what: str, wait: float | None) -> ApiError:
        status = response.status_code
        detail = _detail(response)
        text = f"{self.label}: cannot {what}: {where} answered {status} {response.reason_phrase}"
        if detail:
            text += f": {detail}"
        if status in (403, 429) and wait is not None:
            reset = dt.datetime.fromtimestamp(self.clock() + wait, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
            text += f" (rate limited; the limit resets at {reset}, in {wait:.0f} s)"
        elif status == 401:
            text += f" (check {self.token_env})"
        elif status == 404:
            text += f" (not found, or {self.token_env} cannot see it)"
        return ApiError(_line(text), status, detail)

    def close(self) -> None:
        """Release the connection pool."""
        self.client.close()


def _retry_after(value: str, now: float) -> float:
    """Retry-After is seconds or an HTTP date."""
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError):
            return SECONDARY_LIMIT_WAIT


def _detail(response: httpx.Response) -> str:
    """The forge's own words for an error: GitHub's message and errors, GitLab's message or error."""
    try:
        data = response.json()
    except ValueError:
        return response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
    if not isinstance(data, dict):
        return str(data)[:300]
    parts = []
    for key in ("message", "error", "error_description"):
        value = data.get(key)
        if isinstance(value, dict):  # GitLab: {"message": {"field": ["problem"]}}
            parts += [f"{k} {', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in value.items()]
        elif isinstance(value, list):
            parts += [str(v) for v in value]
        elif value:
            parts.append(str(value))
    for err in data.get("errors") or []:
        if isinstance(err, dict):
            parts.append(err.get("message") or " ".join(str(err[k]) for k in ("resource", "field", "code") if err.get(k)))
        else:
            parts.append(str(err))
    return "; ".join(p for p in parts if p)


def _line(text: str, limit: int = 600) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- remotes, markers, labels, reviewers --------------------------------------------------

def parse_remote(url: str | None) -> tuple[str, str] | None:
    """(host, project path) of a git remote URL, or None for a local path.

    Understands https://host/owner/repo.git, ssh://git@host:22/owner/repo and the scp-like
    git@host:group/sub/repo.git.
    """
    if not url:
        return None
    url = url.strip()
    if "://" in url:
        parts = urlsplit(url)
        if parts.scheme == "file" or not parts.hostname:
            return None
        host, path = parts.hostname, parts.path
    else:
        match = re.match(r"^(?:[^@/\s]+@)?([A-Za-z0-9.-]+\.[A-Za-z0-9.-]+|[A-Za-z0-9-]{2,}):(?!/)(.+)$", url)
        if not match:
            return None
        host, path = match.group(1), match.group(2)
    path = path.strip("/").removesuffix(".git").strip("/")
    return (host.lower(), path) if "/" in path else None


def fingerprint_in(body: str | None) -> str | None:
    """The fingerprint marker of a body; the last one, since Healer writes it at the very end."""
    found = FINGERPRINT_MARKER.findall(body or "")
    return found[-1] if found else None


def labels_for(labels: Sequence[str], limit: int = 50) -> list[str]:
    """``healer`` plus the given labels, each once, as every forge takes them."""
    out = [LABEL]
    for label in labels:
        # GitHub caps label names at 50 characters; GitLab splits its label list on commas.
        label = str(label).replace(",", " ").strip()[:limit]
        if label and label not in out:
            out.append(label)
    return out


def _keep_for_sync(ledger: Ledger, pr_id: int, labels: Sequence[str]) -> None:
    """A pending PR's own labels, kept in its recorded audience so ``healer sync`` asks for them again."""
    from healer.governance import people  # governance imports the forges

    if labels:
        people.record(ledger, pr_id, Audience(labels=tuple(labels)), dict.fromkeys(labels, "heal"))


def reviewers_from(env: Mapping[str, str]) -> list[str]:
    """``HEALER_REVIEWERS``: comma- or space-separated users; ``org/team`` names a GitHub team."""
    return list(Settings.from_env(env).reviewers)


def _aware(value) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return as_utc(value)


def pr_from_row(row: Mapping) -> PullRequest:
    """A ledger ``prs`` row as a PullRequest."""
    return PullRequest(id=row["id"], forge=row["forge"], title=row["title"], body=row["body"], branch=row["branch"],
                       base=row["base"], status=row["status"], draft=bool(row["draft"]), remote=row["remote"],
                       pipeline=row["pipeline"], fingerprint=row["fingerprint"], url=row["url"],
                       heal_id=row["heal_id"], number=row["number"])


# -- the shared forge ----------------------------------------------------------------------

class RemoteForge:
    """Pull requests on a hosted forge, mirrored in the ledger's ``prs`` table.

    Subclasses speak one API; this class decides when to open, when to update, and what the
    ledger says. Ledger ids are the PullRequest ids everywhere (``healer pr show 3``); the
    forge's own number is ``PullRequest.number``.
    """

    name = "remote"
    label = "Remote"
    SUPPORTS_MERGE = True
    SUPPORTS_AUDIENCE = True
    REQUESTS_CODE_OWNERS = False

    def __init__(self, ledger: Ledger, api: Api, project: str, reviewers: Sequence[str] = ()):
        self.ledger, self.api, self.project = ledger, api, project
        self.reviewers = list(reviewers)
        self.warnings: list[str] = []  # what went wrong but did not stop the pull request

    # -- the Forge protocol -----------------------------------------------------------
    def open(self, *, title: str, body: str, branch: str, base: str, remote: str, draft: bool, pipeline: str,
             fingerprint: str, heal_id: int | None = None, labels: Sequence[str] = (),
             audience: Audience = Audience()) -> PullRequest:
        """Open a pull request for a pushed branch, or update the open one for the same cause.

        An open pull request from ``branch`` (the branch name carries the fingerprint) gets
        the new title and body and a comment saying a new commit was pushed. When the forge
        keeps failing, the pull request is recorded as ``pending`` and a ForgeError says so.
        ``labels``: the heal's own (the error class); ``audience``: the policy's reviewers (beside
        HEALER_REVIEWERS), labels and assignees.
        """
        asked = tuple(labels)
        labels = labels_for([*asked, *audience.labels])
        audience = Audience(tuple(dict.fromkeys([*self.reviewers, *audience.reviewers])), (), audience.assignees)
        values = dict(forge=self.name, heal_id=heal_id, pipeline=pipeline, fingerprint=fingerprint, remote=remote,
                      branch=branch, base=base, title=title, body=body, draft=draft)
        row = self._row(fingerprint=fingerprint, remote=remote)
        try:
            state = self._open_or_update(title, body, branch, base, draft, labels, heal_id, audience)
        except ForgeError as exc:
            pr_id = self._save(row, values, "pending")
            _keep_for_sync(self.ledger, pr_id, asked)
            raise ForgeError(f"{exc} -- branch {branch} is pushed; the pull request is kept as pending #{pr_id} "
                             "in the ledger and `healer sync` opens it") from None
        if row and row["number"] and row["number"] != state.number:
            # The recorded pull request was closed on the forge behind the ledger's back.
            self.ledger.update(prs, row["id"], status="closed", updated_at=utcnow())
            row = None
        row = row or self._row(number=state.number, remote=remote)
        values.update(number=state.number, url=state.url, draft=state.draft or draft)
        return self.get(self._save(row, values, "open"))

    def get(self, pr_id: int) -> PullRequest:
        """The recorded pull request with ledger id ``pr_id``."""
        row = self.ledger.get(prs, pr_id)
        if not row or row["forge"] != self.name:
            raise ForgeError(f"no {self.label} pull request #{pr_id} in the ledger {self.ledger.url}")
        return pr_from_row(row)

    def list(self, status: str | None = None) -> list[PullRequest]:
        """This forge's recorded pull requests, newest first."""
        where = [prs.c.forge == self.name] + ([prs.c.status == status] if status else [])
        return [pr_from_row(r) for r in self.ledger.select(prs, *where, limit=500)]

    def merge(self, pr_id: int) -> PullRequest:
        """Merge on the forge (its merge button, its rules and checks) and record it."""
        pr = self._open_pr(pr_id)
        self._merge(pr.number)
        return self._recorded(self._refresh(pr_id), "merged")

    def close(self, pr_id: int) -> PullRequest:
        """Close on the forge without merging, and record it."""
        pr = self._open_pr(pr_id)
        self._close(pr.number)
        return self._recorded(self._refresh(pr_id), "closed")

    def _recorded(self, pr: PullRequest, done: str) -> PullRequest:
        """A merge or close by Healer's hand, on the heal's audit trail (merges read back by sync are too)."""
        from healer.governance import trail
        from healer.governance.audit import Action

        action = Action.PR_MERGED if pr.status == "merged" else Action.PR_CLOSED if pr.status == "closed" else None
        if action is not None:
            trail.pr_event(self.ledger, self.ledger.get(prs, pr.id), action, status=pr.status, asked=done)
        return pr

    def sync(self, row: Mapping) -> str:
        """The status a ledger row should have now: open, merged, closed or reverted.

        A pending row is opened (and saved) first; a merged one is reverted when a commit
        on the base branch reverts its merge commit.
        """
        if row["status"] == "pending":
            from healer.governance import people  # governance imports the forges

            return self.open(title=row["title"], body=row["body"], branch=row["branch"], base=row["base"],
                             remote=row["remote"], draft=bool(row["draft"]), pipeline=row["pipeline"],
                             fingerprint=row["fingerprint"], heal_id=row["heal_id"],
                             labels=people.audience_of(self.ledger, row["id"]).labels).status
        state = self._fetch(row["number"])
        if state.status == "merged" and state.merge_sha and self._reverted(state, row["base"]):
            return "reverted"
        return state.status

    # -- the decision ---------------------------------------------------------------------
    def _open_or_update(self, title, body, branch, base, draft, labels, heal_id,
                        audience: Audience = Audience()) -> RemoteState:
        existing = self._find_open(branch, base)
        if existing is None:
            try:
                created = self._create(title, body, branch, base, draft, labels, audience)
            except ApiError as exc:
                # A POST retried after a lost answer, or a heal racing us, already opened it.
                if exc.status not in (409, 422) or "already exists" not in exc.detail.lower():
                    raise
                existing = self._find_open(branch, base)
                if existing is None:
                    raise
            else:
                self._after_create(created, labels, audience)
                return created
        theirs = fingerprint_in(existing.body)
        if theirs and theirs != fingerprint_in(body):
            self._warn(f"{self.label} #{existing.number} on {branch} carried fingerprint {theirs}; "
                       "its branch was just pushed with a new cause, so it is updated")
        updated = self._update(existing, title, body, draft, labels)
        note = (f"Healer healed the same cause again{f' (heal #{heal_id})' if heal_id else ''} and pushed a new commit"
                f"{f' `{updated.head_sha[:10]}`' if updated.head_sha else ''} to `{branch}`. "
                "The description now holds the new evidence.")
        if draft and not updated.draft:
            note += " **The new fix is only good enough for a draft: read its doubts before merging.**"
        elif updated.draft and not draft:
            note += " The new fix passed the bar for a ready pull request; mark it ready when the evidence convinces you."
        self._comment(updated, note)
        return updated

    def _warn(self, text: str) -> None:
        log.warning(text)
        self.warnings.append(text)

    # -- the ledger -----------------------------------------------------------------------
    def _row(self, *, fingerprint: str | None = None, number: str | None = None, remote: str | None = None) -> dict | None:
        where = [prs.c.forge == self.name]
        if fingerprint is not None:
            where += [prs.c.fingerprint == fingerprint, prs.c.status.in_(("open", "pending"))]
        if number is not None:
            where.append(prs.c.number == str(number))
        if remote is not None:
            where.append(prs.c.remote == remote)
        found = self.ledger.select(prs, *where, limit=1)
        return found[0] if found else None

    def _save(self, row: dict | None, values: dict, status: str) -> int:
        now = utcnow()
        if row:
            self.ledger.update(prs, row["id"], **values, status=status, updated_at=now)
            return row["id"]
        return self.ledger.insert(prs, **values, status=status, created_at=now, updated_at=now)

    def _open_pr(self, pr_id: int) -> PullRequest:
        pr = self.get(pr_id)
        if pr.status != "open" or not pr.number:
            raise ForgeError(f"PR #{pr_id} is {pr.status}, not open on {self.label}")
        return pr

    def _refresh(self, pr_id: int) -> PullRequest:
        pr = self.get(pr_id)
        state = self._fetch(pr.number)
        self.ledger.update(prs, pr_id, status=state.status, draft=state.draft, url=state.url, updated_at=utcnow())
        return self.get(pr_id)

    # -- one API (subclasses) -------------------------------------------------------------
    def _find_open(self, branch: str, base: str) -> RemoteState | None:
        raise NotImplementedError

    def _create(self, title, body, branch, base, draft, labels, audience: Audience) -> RemoteState:
        raise NotImplementedError

    def _after_create(self, state: RemoteState, labels: list[str], audience: Audience) -> None:
        """Labels, reviewers and assignees, where the API sets them apart; failures only warn."""

    def _update(self, state: RemoteState, title, body, draft, labels) -> RemoteState:
        raise NotImplementedError

    def _comment(self, state: RemoteState, text: str) -> None:
        raise NotImplementedError

    def _fetch(self, number: str) -> RemoteState:
        raise NotImplementedError

    def _merge(self, number: str) -> None:
        raise NotImplementedError

    def _close(self, number: str) -> None:
        raise NotImplementedError

    def _reverted(self, state: RemoteState, base: str) -> bool:
        raise NotImplementedError


def reverts(message: str, merge_sha: str) -> bool:
    """Whether a commit message is git's revert of ``merge_sha`` (``git revert`` or a forge's button)."""
    return f"This reverts commit {merge_sha}" in (message or "")


def since(merged_at: str | None) -> str | None:
    """An ISO time a little before the merge, so clock skew cannot hide the revert."""
    when = _aware(merged_at)
    return (when - dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ") if when else None
