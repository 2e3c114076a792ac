"""The workspace: an isolated clone of the pipeline repo at the commit that failed.

Cloned with gitpython from the repo's ``origin`` when it holds the commit (what a healer
on another machine would do), else from the local repo. Branches are
``healer/<pipeline>/<short fingerprint>``; commits carry a configurable Healer identity.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import git

from healer import config
from healer.errors import WorkspaceError
from healer.settings import Settings


def healer_identity() -> tuple[str, str]:
    """Author of Healer's commits (``HEALER_GIT_NAME`` / ``HEALER_GIT_EMAIL``)."""
    settings = Settings.from_env()
    return settings.git_name, settings.git_email


def branch_name(pipeline: str, short_fingerprint: str) -> str:
    return f"healer/{pipeline}/{short_fingerprint}"


@dataclass
class Workspace:
    """A clone on disk, checked out at the failed commit."""

    path: Path
    repo: git.Repo
    commit: str
    remote_url: str
    base_branch: str

    @classmethod
    def create(cls, source: str | Path, commit: str | None, name: str, root: Path | None = None) -> "Workspace":
        """Clone ``source`` (a repo path) at ``commit`` into a fresh directory under HEALER_HOME."""
        source = Path(source)
        try:
            local = git.Repo(source, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise WorkspaceError(f"{source}: not a git repository; Healer needs the pipeline repo under git") from None
        remote_url = _origin_url(local)
        commit = commit or local.head.commit.hexsha
        base = _base_branch(local)
        root = root or config.healer_home() / "workspaces"
        root.mkdir(parents=True, exist_ok=True)
        path = root / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        clone_from = remote_url if remote_url and _has_commit(local, commit, remote=True) else local.working_dir
        try:
            repo = git.Repo.clone_from(clone_from, path, no_checkout=True)
            repo.git.checkout("--detach", commit)
        except git.GitCommandError as exc:
            shutil.rmtree(path, ignore_errors=True)
            raise WorkspaceError(f"cannot clone {clone_from} at {commit[:12]}: {_git_reason(exc)}") from None
        if remote_url:
            repo.remotes.origin.set_url(remote_url)
        return cls(path=path, repo=repo, commit=commit, remote_url=remote_url or "", base_branch=base)

    def apply(self, edits) -> None:
        """Write a patch's edits into the working tree (files are relative to the repo root)."""
        for edit in edits:
            target = safe_path(self.path, edit.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(edit.after)

    def revert(self) -> None:
        """Throw away uncommitted changes."""
        self.repo.git.checkout("--", ".")
        self.repo.git.clean("-fdq")

    def commit_on_branch(self, branch: str, message: str) -> str:
        """Create ``branch`` at the current tree and commit everything as Healer."""
        name, email = healer_identity()
        self.repo.git.checkout("-B", branch)
        self.repo.git.add("-A")
        actor = git.Actor(name, email)
        return self.repo.index.commit(message, author=actor, committer=actor).hexsha

    def push(self, branch: str) -> None:
        """Push the branch to origin; an unreachable remote is a WorkspaceError."""
        if not self.remote_url:
            raise WorkspaceError(f"{self.path}: the pipeline repo has no 'origin' remote to push {branch} to")
        try:
            self.repo.git.push("--force", "origin", f"{branch}:refs/heads/{branch}")
        except git.GitCommandError as exc:
            raise WorkspaceError(f"cannot push {branch} to {self.remote_url}: {_git_reason(exc)}") from None

    def diff(self) -> str:
        """Unified diff of uncommitted changes, relative to the failed commit."""
        self.repo.git.add("-A", "--intent-to-add")
        return self.repo.git.diff(self.commit)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def safe_path(root: Path, relative: str) -> Path:
    """``root/relative``, refusing anything that escapes the repo (absolute paths, ``..``, .git)."""
    target = (root / relative).resolve()
    if not str(target).startswith(str(root.resolve()) + os.sep) or ".git" in Path(relative).parts:
        raise WorkspaceError(f"refusing to write outside the repo: {relative}")
    return target


def _origin_url(repo: git.Repo) -> str | None:
    try:
        return repo.remotes.origin.url
    except (AttributeError, IndexError, ValueError):
        return None


def _has_commit(repo: git.Repo, commit: str, remote: bool) -> bool:
    """Whether origin's branches contain the commit (fetched refs; no network)."""
    try:
        branches = repo.git.branch("-r", "--contains", commit)
    except git.GitCommandError:
        return False
    return bool(branches.strip()) if remote else True


def _base_branch(repo: git.Repo) -> str:
    """The branch PRs target: ``HEALER_BASE_BRANCH``, else origin's default, else the current branch."""
    configured = Settings.from_env().base_branch
    if configured:
        return configured
    try:
        ref = repo.git.symbolic_ref("refs/remotes/origin/HEAD")
        return ref.rsplit("/", 1)[-1]
    except git.GitCommandError:
        pass
    try:
        return repo.active_branch.name
    except TypeError:
        return "main"


def _git_reason(exc: git.GitCommandError) -> str:
    text = (exc.stderr or str(exc)).strip().replace("\n", " ")
    return text.replace("stderr: ", "")[:300]
