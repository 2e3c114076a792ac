"""Forges: where pull requests are opened. Local by default; GitHub and GitLab with a token.

    get_forge(ledger, remote)   the forge a heal opens its pull request on
    forge_for(ledger, row)      the forge a recorded pull request lives on
    sync(ledger)                states read back (merged, closed, reverted); pending ones opened

Every forge records its pull requests in the ledger's ``prs`` table (forge, number, url),
so ``healer prs`` and the Airflow pages read one place whatever the forge.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Mapping

import git

from healer.errors import ForgeError, HealerError
from healer.forges.base import Forge, PullRequest
from healer.forges.github import GitHubForge, is_github
from healer.forges.gitlab import GitLabForge, is_gitlab
from healer.forges.local import LocalForge
from healer.forges.remote import ApiError, RemoteForge, Retry, parse_remote
from healer.ledger import Ledger, as_utc, prs, utcnow
from healer.settings import Settings

__all__ = ["ApiError", "Forge", "GitHubForge", "GitLabForge", "LocalForge", "PullRequest", "RemoteForge", "Retry",
           "SyncResult", "forge_for", "forge_kind", "get_forge", "sync"]



def forge_kind(remote: str | None, env: Mapping[str, str] | None = None) -> str:
    """github, gitlab or local for a remote URL.

    ``HEALER_FORGE`` decides when set. Otherwise the remote's host does (github.com or the
    ``GITHUB_API_URL`` host; a host naming gitlab or the ``GITLAB_API_URL`` host), and only
    when that forge's token is set: without a token every heal stays on the local forge.
    """
    env = os.environ if env is None else env
    explicit = Settings.from_env(env).forge
    if explicit:
        return explicit
    parsed = parse_remote(remote)
    host = parsed[0] if parsed else None
    if is_github(host, env) and env.get("GITHUB_TOKEN"):
        return "github"
    if is_gitlab(host, env) and env.get("GITLAB_TOKEN"):
        return "gitlab"
    return "local"


def get_forge(ledger: Ledger, remote: str | None = None, env: Mapping[str, str] | None = None, **kwargs) -> Forge:
    """The forge for a remote (see ``forge_kind``); ``kwargs`` reach the GitHub/GitLab client."""
    env = os.environ if env is None else env
    kind = forge_kind(remote, env)
    if kind == "github":
        return GitHubForge.from_env(ledger, remote, env, **kwargs)
    if kind == "gitlab":
        return GitLabForge.from_env(ledger, remote, env, **kwargs)
    return LocalForge(ledger)


def forge_for(ledger: Ledger, row: Mapping, env: Mapping[str, str] | None = None, **kwargs) -> Forge:
    """The forge a recorded pull request (a ledger ``prs`` row) lives on."""
    if row["forge"] == "github":
        return GitHubForge.from_env(ledger, row["remote"], env, pr_url=row["url"], **kwargs)
    if row["forge"] == "gitlab":
        return GitLabForge.from_env(ledger, row["remote"], env, pr_url=row["url"], **kwargs)
    if row["forge"] == "local":
        return LocalForge(ledger)
    raise ForgeError(f"PR #{row['id']} is on an unknown forge '{row['forge']}'")


@dataclass(frozen=True)
class SyncResult:
    """What ``sync`` found for one recorded pull request."""

    pr_id: int
    forge: str
    before: str
    after: str
    number: str | None = None
    url: str | None = None
    error: str | None = None

    @property
    def changed(self) -> bool:
        return self.error is None and self.after != self.before

    def one_line(self) -> str:
        where = self.forge + (f" {self.url}" if self.url else f" #{self.number}" if self.number else "")
        if self.error:
            return f"PR #{self.pr_id} ({where}): still {self.before}: {self.error}"
        return f"PR #{self.pr_id} ({where}): " + (f"{self.before} -> {self.after}" if self.changed else f"{self.after}")


def sync(ledger: Ledger, *, env: Mapping[str, str] | None = None, forge: str | None = None,
         revert_window_days: int = 30, now: dt.datetime | None = None, **kwargs) -> list[SyncResult]:
    """Read the state of every open, pending or recently merged pull request back into the ledger.

    Pending pull requests (pushed, but the forge failed) are opened. Merged ones become
    ``reverted`` when a commit on the base branch reverts their merge; they are watched for
    ``revert_window_days`` after the merge. One pull request's error does not stop the rest.
    """
    env = os.environ if env is None else env
    now = now or utcnow()
    where = [prs.c.status.in_(("open", "pending", "merged"))] + ([prs.c.forge == forge] if forge else [])
    forges: dict[tuple, Forge] = {}
    history = _LocalHistory()
    results = []
    try:
        for row in ledger.select(prs, *where, order_desc=False, limit=100_000):
            if row["status"] == "merged" and now - as_utc(row["updated_at"] or now) > dt.timedelta(days=revert_window_days):
                continue
            try:
                if row["forge"] == "local":
                    after = history.state(row)
                else:
                    key = (row["forge"], row["remote"])
                    if key not in forges:
                        forges[key] = forge_for(ledger, row, env, **kwargs)
                    after = forges[key].sync(row)
            except HealerError as exc:
                results.append(SyncResult(row["id"], row["forge"], row["status"], row["status"], row["number"], row["url"],
                                          error=str(exc)))
                continue
            fresh = ledger.get(prs, row["id"]) or row
            if after != row["status"]:
                ledger.update(prs, row["id"], status=after, updated_at=now)
            results.append(SyncResult(row["id"], row["forge"], row["status"], after, fresh["number"], fresh["url"]))
    finally:
        history.close()
    return results


class _LocalHistory:
    """Reverts of local-forge merges, read from the remote's base branch with git.

    The local forge merges with ``Merge <branch>: <title>``; a revert is a commit saying
    ``This reverts commit <that merge>`` (what ``git revert -m 1`` writes).
    """

    def __init__(self):
        self.clones: dict[tuple[str, str], git.Repo] = {}
        self.dirs: list[str] = []

    def state(self, row: Mapping) -> str:
        if row["status"] != "merged":
            return row["status"]  # the ledger is the local forge: nothing else to read
        repo = self._clone(row["remote"], row["base"])
        try:
            merges = repo.git.log(row["base"], "--merges", "--format=%H", "-F", f"--grep=Merge {row['branch']}:").split()
            for sha in merges:
                if repo.git.log(row["base"], "--format=%H", "-F", f"--grep=This reverts commit {sha}").strip():
                    return "reverted"
        except git.GitCommandError as exc:
            raise ForgeError(f"cannot read {row['base']} of {row['remote']}: {_git_reason(exc)}") from None
        return "merged"

    def _clone(self, remote: str, base: str) -> git.Repo:
        key = (remote, base)
        if key not in self.clones:
            tmp = tempfile.mkdtemp(prefix="healer-sync-")
            self.dirs.append(tmp)
            try:
                self.clones[key] = git.Repo.clone_from(remote, tmp, bare=True, branch=base, single_branch=True)
            except git.GitCommandError as exc:
                raise ForgeError(f"cannot fetch {base} from {remote}: {_git_reason(exc)}") from None
        return self.clones[key]

    def close(self) -> None:
        for tmp in self.dirs:
            shutil.rmtree(tmp, ignore_errors=True)


def _git_reason(exc: git.GitCommandError) -> str:
    return " ".join((exc.stderr or str(exc)).replace("stderr:", "").split())[:300]
