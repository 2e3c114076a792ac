"""Test helpers for the forges: a real HTTP server in a thread, real git remotes, real PR bodies.

``ForgeServer`` records every request (method, raw path, query, headers, JSON body) and
answers from an app (the fake GitHub or GitLab of the test module). ``fault`` makes the
server answer an error a given number of times first, before or after the app ran, which
is how lost answers, 5xx and rate limits are played.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Request:
    method: str
    path: str  # raw, percent-encoding kept
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: Any


@dataclass
class Fault:
    method: str
    path: str  # regex, matched against the raw path
    status: int
    body: Any = None
    headers: dict = field(default_factory=dict)
    times: int = 1
    after: bool = False  # let the app act first, then lose its answer


class ForgeServer:
    """A ThreadingHTTPServer on 127.0.0.1 that hands each request to ``app``."""

    def __init__(self, app: Callable[[Request], tuple[int, dict, Any]]):
        self.app = app
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                owner._serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> "ForgeServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def fault(self, method: str, path: str, status: int, body: Any = None, headers: dict | None = None,
              times: int = 1, after: bool = False) -> None:
        self.faults.append(Fault(method, path, status, body, headers or {}, times, after))

    def calls(self, method: str | None = None, path: str | None = None) -> list[Request]:
        """Requests made, filtered by method and a regex on the path."""
        return [r for r in self.requests if (method is None or r.method == method)
                and (path is None or re.search(path, r.path))]

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        request = Request(handler.command, parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()},
                          {k.lower(): v for k, v in handler.headers.items()}, json.loads(raw) if raw else None)
        with self.lock:
            self.requests.append(request)
            fault = next((f for f in self.faults if f.times > 0 and f.method == request.method
                          and re.search(f.path, request.path)), None)
            if fault:
                fault.times -= 1
            if fault is None or fault.after:
                status, headers, body = self.app(request)
            if fault is not None:
                status, headers, body = fault.status, fault.headers, fault.body
        data = b"" if body is None else json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            handler.send_header(key, str(value))
        handler.end_headers()
        handler.wfile.write(data)


# -- real git ---------------------------------------------------------------------------------

def git(cwd, *args) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def make_remote(tmp_path: Path) -> tuple[Path, Path]:
    """A bare origin with one commit on main, and a working clone of it: (origin, repo)."""
    origin, repo = tmp_path / "origin.git", tmp_path / "repo"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "dev@example.com")
    git(repo, "config", "user.name", "Dev")
    (repo / "jobs").mkdir()
    (repo / "jobs" / "revenue_by_category.sql").write_text(example("rule_fix")["patch"].edits[0].before)
    (repo / "jobs" / "customer_lifetime.sql").write_text(example("draft_fix")["patch"].edits[0].before)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "pipelines")
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "-q", "origin", "main")
    return origin, repo


def push_fix(repo: Path, tmp_path: Path, branch: str, edits, message: str = "heal") -> str:
    """Healer's real workspace: clone, apply the edits, commit on ``branch``, push. Returns the commit."""
    from healer.workspace import Workspace

    ws = Workspace.create(repo, None, "test", root=tmp_path / "workspaces")
    try:
        ws.apply(edits)
        sha = ws.commit_on_branch(branch, message)
        ws.push(branch)
    finally:
        ws.remove()
    return sha


def merge_in_bare(origin: Path, tmp_path: Path, branch: str, base: str, message: str) -> str:
    """Merge ``branch`` into ``base`` of a bare repo for real (what a forge's merge button does)."""
    work = tmp_path / f"merge-{abs(hash((branch, message)))}"
    git(tmp_path, "clone", "-q", "--branch", base, str(origin), str(work))
    git(work, "config", "user.email", "forge@example.com")
    git(work, "config", "user.name", "Forge")
    git(work, "fetch", "-q", "origin", f"{branch}:refs/remotes/origin/{branch}")
    git(work, "merge", "-q", "--no-ff", "-m", message, f"origin/{branch}")
    git(work, "push", "-q", "origin", base)
    return git(work, "rev-parse", "HEAD")


def revert_in_bare(origin: Path, tmp_path: Path, base: str, merge_sha: str) -> str:
    """A developer reverts a merge on ``base`` with ``git revert -m 1`` and pushes."""
    work = tmp_path / f"revert-{merge_sha[:8]}"
    git(tmp_path, "clone", "-q", "--branch", base, str(origin), str(work))
    git(work, "config", "user.email", "dev@example.com")
    git(work, "config", "user.name", "Dev")
    git(work, "revert", "--no-edit", "-m", "1", merge_sha)
    git(work, "push", "-q", "origin", base)
    return git(work, "rev-parse", "HEAD")


def commits_since(origin: Path, ref: str, since: str | None) -> list[tuple[str, str, str]]:
    """(sha, committer ISO date, message) of ``ref`` in a bare repo, newest first."""
    args = ["--git-dir", str(origin), "log", ref, "--format=%H%x1f%cI%x1f%B%x1e"]
    if since:
        args.append(f"--since={since}")
    out = subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout
    return [tuple(entry.strip("\n").split("\x1f", 2)) for entry in out.split("\x1e") if entry.strip()]


def head_of(origin: Path, branch: str) -> str | None:
    done = subprocess.run(["git", "--git-dir", str(origin), "rev-parse", "--verify", "-q", f"refs/heads/{branch}"],
                          capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


# -- real pull request bodies -------------------------------------------------------------

def _examples_module():
    spec = importlib.util.spec_from_file_location("render_examples", ROOT / "docs" / "render_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_EXAMPLES = None


def example(name: str) -> dict:
    """The fixed heal inputs of docs/render_examples.py (``rule_fix`` or ``draft_fix``), freshly built."""
    global _EXAMPLES
    _EXAMPLES = _EXAMPLES or _examples_module()
    return getattr(_EXAMPLES, name)()


def proposal(name: str, **overrides) -> dict:
    """Keyword arguments for ``forge.open`` as heal.py passes them, with the body the renderer writes."""
    from healer import report

    ex = example(name)
    ex.update({k: v for k, v in overrides.items() if k in ex})  # e.g. draft: rendered into the body too
    failure, patch = ex["failure"], ex["patch"]
    body = report.pr_body(failure, ex["evidence"], patch, ex["verdict"], ex["timings"], ex["branch"], ex["draft"],
                          ex["sample_plan"])
    args = dict(title=report.pr_title(failure.pipeline, patch), body=body, branch=ex["branch"], base="main",
                draft=ex["draft"], pipeline=failure.pipeline, fingerprint=failure.fingerprint, heal_id=7,
                labels=report.pr_labels(failure))
    args.update({k: v for k, v in overrides.items() if k not in ex})
    return args
