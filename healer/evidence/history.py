"""Recent commits that touched a job: a bad commit is the other usual cause."""

from __future__ import annotations

from dataclasses import dataclass

import git


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    author: str
    date: str
    subject: str  # untrusted text: fenced before it reaches a model
    files: tuple[str, ...]


def recent_commits(repo: git.Repo, paths: list[str], rev: str = "HEAD", limit: int = 5) -> list[CommitInfo]:
    """The newest commits (up to ``limit``) at or before ``rev`` touching any of ``paths``."""
    out = []
    try:
        for c in repo.iter_commits(rev, paths=paths, max_count=limit):
            out.append(CommitInfo(sha=c.hexsha, author=str(c.author), date=c.committed_datetime.isoformat(),
                                  subject=c.message.strip().splitlines()[0] if c.message.strip() else "",
                                  files=tuple(sorted(c.stats.files))))
    except (git.GitCommandError, ValueError):
        return []
    return out
