"""The GitLab forge: merge requests through API v4, on gitlab.com or a self-hosted GitLab.

Settings: ``GITLAB_TOKEN`` (a personal, project or group access token), ``GITLAB_API_URL``
(self-hosted: ``https://HOST/api/v4``; derived from the remote's host when unset),
``HEALER_FORGE_REPO`` (``group/sub/project`` when the remote URL does not say) and
``HEALER_REVIEWERS`` (GitLab usernames).

The API calls, in the order a heal makes them (``:id`` is the URL-encoded project path)::

    GET  /projects/:id/merge_requests?source_branch=...&state=opened   same cause already open?
    GET  /users?username=...                                            reviewer ids
    POST /projects/:id/merge_requests                                   open, with labels, reviewers
    PUT  /projects/:id/merge_requests/:iid                              same cause again: new description
    POST /projects/:id/merge_requests/:iid/notes                        ... and a note saying so
    GET  /projects/:id/merge_requests/:iid                              sync: merged or closed?
    GET  /projects/:id/repository/commits?ref_name=...&since=...       sync: was the merge reverted?
    PUT  /projects/:id/merge_requests/:iid/merge                        `healer pr merge`
"""

from __future__ import annotations

import os
import re
import time
from typing import TYPE_CHECKING, Callable, Mapping, Sequence
from urllib.parse import quote, urlsplit


from healer.errors import ForgeError
from healer.forges.base import Audience
from healer.forges.remote import Api, ApiError, RemoteForge, RemoteState, Retry, parse_remote, reverts, \
    reviewers_from, since
from healer.ledger import Ledger
from healer.settings import Settings

if TYPE_CHECKING:  # httpx (with its CLI's imports) loads only when a remote forge is used
    import httpx

DEFAULT_API_URL = "https://gitlab.com/api/v4"
DRAFT_PREFIX = "Draft: "
MAX_PAGES = 5


def is_gitlab(host: str | None, env: Mapping[str, str]) -> bool:
    """A host with 'gitlab' in its name, or the host ``GITLAB_API_URL`` points at."""
    if not host:
        return False
    return "gitlab" in host or host == urlsplit(env.get("GITLAB_API_URL", "")).hostname


def api_url_for(host: str | None, env: Mapping[str, str]) -> str:
    """``GITLAB_API_URL``, else ``https://HOST/api/v4`` of the remote's host, else gitlab.com's."""
    if env.get("GITLAB_API_URL"):
        return env["GITLAB_API_URL"]
    return f"https://{host}/api/v4" if host else DEFAULT_API_URL


def project_from_remote(path: str, api_url: str) -> str:
    """The project path of a remote, without the prefix of a GitLab served under a sub-path."""
    prefix = urlsplit(api_url).path.rstrip("/").removesuffix("/api/v4").strip("/")
    return path[len(prefix) + 1:] if prefix and path.startswith(prefix + "/") else path


def project_from_url(url: str | None) -> str | None:
    """``group/project`` from a merge request's web address (.../group/project/-/merge_requests/5)."""
    match = re.search(r"^[a-z]+://[^/]+/(.+?)/-/merge_requests/\d+/?$", url or "")
    return match.group(1) if match else None


def _strip_draft(title: str) -> str:
    return re.sub(r"^\s*(?:\[draft\]|\(draft\)|draft:)\s*", "", title, flags=re.IGNORECASE)


class GitLabForge(RemoteForge):
    """Merge requests on GitLab. ``transport`` is httpx's seam; ``api_url`` may point anywhere."""

    name = "gitlab"
    label = "GitLab"

    def __init__(self, ledger: Ledger, project: str, token: str, *, api_url: str = DEFAULT_API_URL,
                 reviewers: Sequence[str] = (), transport: httpx.BaseTransport | None = None, retry: Retry = Retry(),
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time):
        if "/" not in project.strip("/"):
            raise ForgeError(f"GitLab: '{project}' is not a project path of the form group/project")
        api = Api("GitLab", api_url, {"PRIVATE-TOKEN": token}, token_env="GITLAB_TOKEN", transport=transport,
                  retry=retry, sleep=sleep, clock=clock)
        super().__init__(ledger, api, project.strip("/"), reviewers)
        self.path = f"projects/{quote(self.project, safe='')}"
        self._user_ids: dict[str, int | None] = {}

    @classmethod
    def from_env(cls, ledger: Ledger, remote: str | None, env: Mapping[str, str] | None = None,
                 pr_url: str | None = None, **kwargs) -> "GitLabForge":
        """The forge for a remote, configured from the environment (see the module docstring)."""
        env = os.environ if env is None else env
        token = env.get("GITLAB_TOKEN")
        if not token:
            raise ForgeError("GitLab: GITLAB_TOKEN is not set; set it to a token that may open merge requests")
        parsed = parse_remote(remote)
        api_url = api_url_for(parsed[0] if parsed else None, env)
        project = (Settings.from_env(env).forge_repo or (project_from_remote(parsed[1], api_url) if parsed else None)
                   or project_from_url(pr_url))
        if not project:
            raise ForgeError(f"GitLab: cannot tell the project from the remote {remote!r}; "
                             "set HEALER_FORGE_REPO=group/project")
        return cls(ledger, project, token, api_url=api_url, reviewers=reviewers_from(env), **kwargs)

    # -- the API ----------------------------------------------------------------------------
    def _state(self, data: dict) -> RemoteState:
        state = data.get("state")
        status = {"opened": "open", "locked": "open", "merged": "merged"}.get(state, "closed")
        return RemoteState(number=str(data["iid"]), url=data.get("web_url") or "", status=status,
                           draft=bool(data.get("draft", data.get("work_in_progress"))),
                           title=data.get("title") or "", body=data.get("description") or "", head_sha=data.get("sha"),
                           merge_sha=(data.get("merge_commit_sha") or data.get("squash_commit_sha")) if status == "merged"
                           else None, merged_at=data.get("merged_at"))

    def _mr(self, iid: str = "") -> str:
        return f"{self.path}/merge_requests" + (f"/{iid}" if iid else "")

    def _find_open(self, branch: str, base: str) -> RemoteState | None:
        found = self.api.request("GET", self._mr(), params={"source_branch": branch, "state": "opened"},
                                 what=f"look for an open merge request from {branch}")
        return self._state(found[0]) if found else None

    def _user_ids_of(self, names, role: str = "reviewer") -> list[int]:
        ids = []
        for name in names:
            if "/" in name:
                self._warn(f"GitLab: {role} '{name}' looks like a group; merge requests take users only")
                continue
            if name not in self._user_ids:
                try:
                    users = self.api.request("GET", "users", params={"username": name}, what=f"look up user {name}")
                except ApiError as exc:
                    self._warn(str(exc))
                    users = None
                self._user_ids[name] = users[0]["id"] if users else None
                if users == []:
                    self._warn(f"GitLab: no user '{name}' to make {role}")
            if self._user_ids[name] is not None:
                ids.append(self._user_ids[name])
        return ids

    def _create(self, title, body, branch, base, draft, labels, audience: Audience) -> RemoteState:
        payload = {"source_branch": branch, "target_branch": base, "title": (DRAFT_PREFIX if draft else "") + title,
                   "description": body, "labels": ",".join(labels), "remove_source_branch": True}
        reviewer_ids = self._user_ids_of(audience.reviewers)
        if reviewer_ids:
            payload["reviewer_ids"] = reviewer_ids
        assignee_ids = self._user_ids_of(audience.assignees, "assignee")
        if assignee_ids:
            payload["assignee_ids"] = assignee_ids
        return self._state(self.api.request("POST", self._mr(), json=payload,
                                            what=f"open a merge request {branch} -> {base} in {self.project}"))

    def _update(self, state: RemoteState, title, body, draft, labels) -> RemoteState:
        # On GitLab the title prefix is the draft state, so the new evidence sets it both ways.
        data = self.api.request("PUT", self._mr(state.number),
                                json={"title": (DRAFT_PREFIX if draft else "") + _strip_draft(title),
                                      "description": body, "add_labels": ",".join(labels)},
                                what=f"update merge request !{state.number}")
        return self._state(data)

    def _comment(self, state: RemoteState, text: str) -> None:
        self.api.request("POST", f"{self._mr(state.number)}/notes", json={"body": text},
                         what=f"comment on merge request !{state.number}")

    def _fetch(self, number: str) -> RemoteState:
        return self._state(self.api.request("GET", self._mr(number), what=f"read merge request !{number}"))

    def _merge(self, number: str) -> None:
        self.api.request("PUT", f"{self._mr(number)}/merge", json={}, what=f"merge merge request !{number}")

    def _close(self, number: str) -> None:
        self.api.request("PUT", self._mr(number), json={"state_event": "close"}, what=f"close merge request !{number}")

    def _reverted(self, state: RemoteState, base: str) -> bool:
        params = {"ref_name": base, "per_page": 100}
        after = since(state.merged_at)
        if after:
            params["since"] = after
        for page in range(1, MAX_PAGES + 1):
            commits = self.api.request("GET", f"{self.path}/repository/commits", params={**params, "page": page},
                                       what=f"list commits on {base} since merge request !{state.number} was merged")
            if any(reverts(c.get("message", ""), state.merge_sha)
                   or f"This reverts merge request !{state.number}" in (c.get("message") or "") for c in commits):
                return True
            if len(commits) < 100:
                return False
        return False
