"""The GitHub forge: pull requests through the REST API, on github.com or GitHub Enterprise.

Settings: ``GITHUB_TOKEN`` (a personal access token or a GitHub App installation token; both
are bearer tokens), ``GITHUB_API_URL`` (Enterprise: ``https://HOST/api/v3``; derived from
the remote's host when unset), ``HEALER_FORGE_REPO`` (``owner/name`` when the remote URL
does not say, e.g. a mirror) and ``HEALER_REVIEWERS`` (``alice, acme/data-eng``).

The API calls, in the order a heal makes them::

    GET   /repos/{o}/{r}/pulls?head={o}:{branch}&state=open   an open PR of the same cause?
    POST  /repos/{o}/{r}/pulls                                open (draft when asked)
    POST  /repos/{o}/{r}/issues/{n}/labels                    healer + the error class
    POST  /repos/{o}/{r}/pulls/{n}/requested_reviewers        reviewers and teams
    PATCH /repos/{o}/{r}/pulls/{n}                            same cause again: new body
    POST  /repos/{o}/{r}/issues/{n}/comments                  ... and a comment saying so
    GET   /repos/{o}/{r}/pulls/{n}                            sync: merged or closed?
    GET   /repos/{o}/{r}/commits?sha={base}&since=...         sync: was the merge reverted?
    PUT   /repos/{o}/{r}/pulls/{n}/merge                      `healer pr merge`
"""

from __future__ import annotations

import os
import re
import time
from typing import TYPE_CHECKING, Callable, Mapping, Sequence
from urllib.parse import urlsplit


from healer.errors import ForgeError
from healer.forges.base import Audience
from healer.forges.remote import Api, ApiError, RemoteForge, RemoteState, Retry, parse_remote, reverts, \
    reviewers_from, since
from healer.ledger import Ledger
from healer.settings import Settings

if TYPE_CHECKING:  # httpx (with its CLI's imports) loads only when a remote forge is used
    import httpx

DEFAULT_API_URL = "https://api.github.com"
GITHUB_HOSTS = {"github.com", "www.github.com", "ssh.github.com"}
DRAFT_PREFIX = "[draft] "
MAX_PAGES = 5


def is_github(host: str | None, env: Mapping[str, str]) -> bool:
    """github.com, or the Enterprise host that ``GITHUB_API_URL`` points at."""
    if not host:
        return False
    if host in GITHUB_HOSTS:
        return True
    api_host = urlsplit(env.get("GITHUB_API_URL", "")).hostname
    # GitHub Enterprise Cloud with data residency serves the API from api.<host>.
    return bool(api_host) and api_host in (host, f"api.{host}")


def api_url_for(host: str | None, env: Mapping[str, str]) -> str:
    """``GITHUB_API_URL``, else github.com's API, else Enterprise Server's ``https://HOST/api/v3``."""
    if env.get("GITHUB_API_URL"):
        return env["GITHUB_API_URL"]
    if host is None or host in GITHUB_HOSTS:
        return DEFAULT_API_URL
    return f"https://{host}/api/v3"


def repo_from_url(url: str | None) -> str | None:
    """``owner/name`` from a pull request's web address (.../owner/name/pull/12)."""
    match = re.search(r"/([^/]+)/([^/]+)/pull/\d+/?$", url or "")
    return f"{match.group(1)}/{match.group(2)}" if match else None


class GitHubForge(RemoteForge):
    """Pull requests on GitHub. ``transport`` is httpx's seam; ``api_url`` may point anywhere."""

    name = "github"
    label = "GitHub"
    REQUESTS_CODE_OWNERS = True  # GitHub asks the CODEOWNERS of changed files itself (branch protection)

    def __init__(self, ledger: Ledger, repo: str, token: str, *, api_url: str = DEFAULT_API_URL,
                 reviewers: Sequence[str] = (), transport: httpx.BaseTransport | None = None, retry: Retry = Retry(),
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time):
        if repo.count("/") != 1 or not all(repo.split("/")):
            raise ForgeError(f"GitHub: '{repo}' is not a repository name of the form owner/name")
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
                   "X-GitHub-Api-Version": "2022-11-28"}
        api = Api("GitHub", api_url, headers, token_env="GITHUB_TOKEN", transport=transport, retry=retry, sleep=sleep,
                  clock=clock)
        super().__init__(ledger, api, repo, reviewers)
        self.owner = repo.split("/")[0]
        self.path = f"repos/{repo}"

    @classmethod
    def from_env(cls, ledger: Ledger, remote: str | None, env: Mapping[str, str] | None = None,
                 pr_url: str | None = None, **kwargs) -> "GitHubForge":
        """The forge for a remote, configured from the environment (see the module docstring)."""
        env = os.environ if env is None else env
        token = env.get("GITHUB_TOKEN")
        if not token:
            raise ForgeError("GitHub: GITHUB_TOKEN is not set; set it to a token that may open pull requests")
        parsed = parse_remote(remote)
        repo = Settings.from_env(env).forge_repo or (parsed[1] if parsed else None) or repo_from_url(pr_url)
        if not repo:
            raise ForgeError(f"GitHub: cannot tell the repository from the remote {remote!r}; "
                             "set HEALER_FORGE_REPO=owner/name")
        return cls(ledger, repo, token, api_url=api_url_for(parsed[0] if parsed else None, env),
                   reviewers=reviewers_from(env), **kwargs)

    # -- the API ----------------------------------------------------------------------------
    def _state(self, data: dict) -> RemoteState:
        merged = bool(data.get("merged") or data.get("merged_at"))
        status = "merged" if merged else "closed" if data.get("state") == "closed" else "open"
        return RemoteState(number=str(data["number"]), url=data.get("html_url") or "", status=status,
                           draft=bool(data.get("draft")), title=data.get("title") or "", body=data.get("body") or "",
                           head_sha=(data.get("head") or {}).get("sha"),
                           merge_sha=data.get("merge_commit_sha") if merged else None, merged_at=data.get("merged_at"))

    def _find_open(self, branch: str, base: str) -> RemoteState | None:
        found = self.api.request("GET", f"{self.path}/pulls", params={"head": f"{self.owner}:{branch}", "state": "open"},
                                 what=f"look for an open pull request from {branch}")
        return self._state(found[0]) if found else None

    def _create(self, title, body, branch, base, draft, labels, audience: Audience) -> RemoteState:
        payload = {"title": title, "head": branch, "base": base, "body": body, "draft": bool(draft)}
        what = f"open a pull request {branch} -> {base} in {self.project}"
        try:
            return self._state(self.api.request("POST", f"{self.path}/pulls", json=payload, what=what))
        except ApiError as exc:
            if not (draft and exc.status == 422 and "draft" in exc.detail.lower()):
                raise
        # Draft pull requests need a public repository or a paid plan; the title says it instead.
        self._warn(f"GitHub: {self.project} has no draft pull requests; opened a regular one titled '{DRAFT_PREFIX}...'")
        payload.update(draft=False, title=DRAFT_PREFIX + title)
        return self._state(self.api.request("POST", f"{self.path}/pulls", json=payload, what=what))

    def _after_create(self, state: RemoteState, labels: list[str], audience: Audience) -> None:
        # Code owners are not added here: GitHub requests their reviews itself when the branch
        # protection asks for it (REQUESTS_CODE_OWNERS).
        self._label(state.number, labels)
        users = [r for r in audience.reviewers if "/" not in r]
        teams = [r.split("/", 1)[1] for r in audience.reviewers if "/" in r]
        if users or teams:
            try:
                self.api.request("POST", f"{self.path}/pulls/{state.number}/requested_reviewers",
                                 json={"reviewers": users, "team_reviewers": teams},
                                 what=f"request reviews on pull request #{state.number}")
            except ApiError as exc:  # e.g. a reviewer without access: the pull request still stands
                self._warn(str(exc))
        if audience.assignees:
            try:
                self.api.request("POST", f"{self.path}/issues/{state.number}/assignees",
                                 json={"assignees": list(audience.assignees)},
                                 what=f"assign pull request #{state.number}")
            except ApiError as exc:
                self._warn(str(exc))

    def _label(self, number: str, labels: list[str]) -> None:
        try:
            # Labels that do not exist yet are created by GitHub on first use.
            self.api.request("POST", f"{self.path}/issues/{number}/labels", json={"labels": labels},
                             what=f"label pull request #{number}")
        except ApiError as exc:
            self._warn(str(exc))

    def _update(self, state: RemoteState, title, body, draft, labels) -> RemoteState:
        # The REST API cannot turn a ready pull request back into a draft; the title says it.
        if draft and not state.draft:
            title = DRAFT_PREFIX + title
        data = self.api.request("PATCH", f"{self.path}/pulls/{state.number}", json={"title": title, "body": body},
                                what=f"update pull request #{state.number}")
        self._label(state.number, labels)
        return self._state(data)

    def _comment(self, state: RemoteState, text: str) -> None:
        self.api.request("POST", f"{self.path}/issues/{state.number}/comments", json={"body": text},
                         what=f"comment on pull request #{state.number}")

    def _fetch(self, number: str) -> RemoteState:
        return self._state(self.api.request("GET", f"{self.path}/pulls/{number}", what=f"read pull request #{number}"))

    def _merge(self, number: str) -> None:
        self.api.request("PUT", f"{self.path}/pulls/{number}/merge", json={}, what=f"merge pull request #{number}")

    def _close(self, number: str) -> None:
        self.api.request("PATCH", f"{self.path}/pulls/{number}", json={"state": "closed"},
                         what=f"close pull request #{number}")

    def _reverted(self, state: RemoteState, base: str) -> bool:
        params = {"sha": base, "per_page": 100}
        after = since(state.merged_at)
        if after:
            params["since"] = after
        for page in range(1, MAX_PAGES + 1):
            commits = self.api.request("GET", f"{self.path}/commits", params={**params, "page": page},
                                       what=f"list commits on {base} since pull request #{state.number} was merged")
            if any(reverts((c.get("commit") or {}).get("message", ""), state.merge_sha) for c in commits):
                return True
            if len(commits) < 100:
                return False
        return False
