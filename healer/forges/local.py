"""The local forge: pull requests kept in the ledger, merged with git into the remote.

It needs nothing but git, so the whole heal loop works offline; GitHub and GitLab follow
the same interface.
"""

from __future__ import annotations

import shutil
import tempfile

import git

from healer.errors import ForgeError
from healer.forges.base import PullRequest
from healer.governance import trail
from healer.governance.audit import Action
from healer.ledger import Ledger, prs, utcnow
from healer.workspace import healer_identity


class LocalForge:
    name = "local"
    SUPPORTS_MERGE = True
    SUPPORTS_AUDIENCE = False  # the ledger is the forge: healer.governance.people records who was asked
    REQUESTS_CODE_OWNERS = False

    def __init__(self, ledger: Ledger):
        self.ledger = ledger

    def open(self, *, title, body, branch, base, remote, draft, pipeline, fingerprint, heal_id=None,
             labels=()) -> PullRequest:  # labels: the ledger's pull requests have none
        now = utcnow()
        pr_id = self.ledger.insert(prs, forge=self.name, heal_id=heal_id, pipeline=pipeline, fingerprint=fingerprint,
                                   remote=remote, branch=branch, base=base, title=title, body=body, draft=draft,
                                   status="open", created_at=now, updated_at=now)
        self.ledger.update(prs, pr_id, url=f"healer://pr/{pr_id}", number=str(pr_id))
        return self.get(pr_id)

    def get(self, pr_id: int) -> PullRequest:
        row = self.ledger.get(prs, pr_id)
        if not row:
            raise ForgeError(f"no pull request #{pr_id} in the ledger {self.ledger.url}")
        return _pr(row)

    def list(self, status: str | None = None) -> list[PullRequest]:
        where = [prs.c.status == status] if status else []
        return [_pr(r) for r in self.ledger.select(prs, *where, limit=500)]

    def merge(self, pr_id: int) -> PullRequest:
        """Merge the branch into the base on the remote (a real git merge and push)."""
        pr = self.get(pr_id)
        if pr.status != "open":
            raise ForgeError(f"PR #{pr_id} is {pr.status}, not open")
        tmp = tempfile.mkdtemp(prefix="healer-merge-")
        try:
            repo = git.Repo.clone_from(pr.remote, tmp, branch=pr.base)
            name, email = healer_identity()
            with repo.config_writer() as cfg:
                cfg.set_value("user", "name", name)
                cfg.set_value("user", "email", email)
            repo.git.fetch("origin", f"{pr.branch}:refs/remotes/origin/{pr.branch}")
            repo.git.merge("--no-ff", "-m", f"Merge {pr.branch}: {pr.title}", f"origin/{pr.branch}")
            repo.git.push("origin", pr.base)
        except git.GitCommandError as exc:
            reason = (exc.stderr or str(exc)).strip().replace("\n", " ")[:300]
            raise ForgeError(f"cannot merge PR #{pr_id} ({pr.branch} into {pr.base}) on {pr.remote}: {reason}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.ledger.update(prs, pr_id, status="merged", updated_at=utcnow())
        trail.pr_event(self.ledger, self.ledger.get(prs, pr_id), Action.PR_MERGED, status="merged")
        return self.get(pr_id)

    def close(self, pr_id: int) -> PullRequest:
        pr = self.get(pr_id)
        if pr.status != "open":
            raise ForgeError(f"PR #{pr_id} is {pr.status}, not open")
        self.ledger.update(prs, pr_id, status="closed", updated_at=utcnow())
        trail.pr_event(self.ledger, self.ledger.get(prs, pr_id), Action.PR_CLOSED, status="closed")
        return self.get(pr_id)


def _pr(row: dict) -> PullRequest:
    return PullRequest(id=row["id"], forge=row["forge"], title=row["title"], body=row["body"], branch=row["branch"],
                       base=row["base"], status=row["status"], draft=bool(row["draft"]), remote=row["remote"],
                       pipeline=row["pipeline"], fingerprint=row["fingerprint"], url=row["url"],
                       heal_id=row["heal_id"], number=row["number"])
