"""The workspace: clone at a commit, branch, commit as Healer, push; clear errors."""

from __future__ import annotations

import subprocess

import pytest

from healer.errors import WorkspaceError
from healer.fixers.base import FileEdit
from healer.workspace import Workspace, safe_path


def git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    origin = tmp_path / "origin.git"
    work = tmp_path / "work"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "job.sql").write_text("SELECT 1 AS one\n")
    git(work, "add", "-A")
    git(work, "-c", "user.name=Dev", "-c", "user.email=dev@x", "commit", "-q", "-m", "first")
    git(work, "remote", "add", "origin", str(origin))
    git(work, "push", "-q", "-u", "origin", "main")
    first = git(work, "rev-parse", "HEAD")
    (work / "job.sql").write_text("SELECT 2 AS two\n")
    git(work, "-c", "user.name=Dev", "-c", "user.email=dev@x", "commit", "-q", "-am", "second")
    git(work, "push", "-q", "origin", "main")
    return work, origin, first


def test_clone_at_the_failed_commit_commit_and_push(repo, tmp_path, monkeypatch):
    work, origin, first = repo
    monkeypatch.setenv("HEALER_GIT_NAME", "Healer Bot")
    monkeypatch.setenv("HEALER_GIT_EMAIL", "bot@example.com")
    ws = Workspace.create(work, first, "p", root=tmp_path / "ws")
    assert (ws.path / "job.sql").read_text() == "SELECT 1 AS one\n"  # the failed commit, not HEAD
    assert ws.base_branch == "main" and ws.remote_url == str(origin)
    ws.apply([FileEdit("job.sql", "SELECT 1 AS one\n", "SELECT 1 AS uno\n")])
    assert "+SELECT 1 AS uno" in ws.diff()
    ws.commit_on_branch("healer/p/abcd1234", "heal(p): fix")
    ws.push("healer/p/abcd1234")
    author = git(work, "--git-dir", str(origin), "log", "-1", "--format=%an <%ae>|%P", "healer/p/abcd1234")
    assert author == f"Healer Bot <bot@example.com>|{first}"
    ws.remove()
    assert not ws.path.exists()


def test_not_a_git_repo_is_a_clear_error(tmp_path):
    with pytest.raises(WorkspaceError, match="not a git repository"):
        Workspace.create(tmp_path, None, "p", root=tmp_path / "ws")


def test_unknown_commit_is_a_clear_error(repo, tmp_path):
    work, _, _ = repo
    with pytest.raises(WorkspaceError, match="cannot clone .* at deadbeef"):
        Workspace.create(work, "deadbeef" * 5, "p", root=tmp_path / "ws")


def test_unreachable_remote_is_a_clear_error_on_push(repo, tmp_path):
    work, origin, first = repo
    ws = Workspace.create(work, first, "p", root=tmp_path / "ws")
    ws.repo.remotes.origin.set_url(str(tmp_path / "gone.git"))
    ws.commit_on_branch("healer/p/x", "m")
    with pytest.raises(WorkspaceError, match="cannot push healer/p/x"):
        ws.push("healer/p/x")


def test_edits_cannot_escape_the_repo(tmp_path):
    for bad in ("../outside.sql", "/etc/passwd", ".git/config"):
        with pytest.raises(WorkspaceError, match="outside the repo"):
            safe_path(tmp_path, bad)
    assert safe_path(tmp_path, "jobs/a.sql") == (tmp_path / "jobs/a.sql").resolve()
