"""The job's history: recent commits, and every change since the last good run.

A bad commit is the other usual cause of a failure. When the job's code changed between
the last good run's commit and the failed one, the diff of every commit in between — the
job, the repo modules it imports, healer.yml and the expectations — is evidence: the code
rules reason from it (a name the commit introduced, a hunk to revert), and the PR body and
the model's prompt show it. Commit subjects, authors and diffs are untrusted text.
"""

from __future__ import annotations

import ast
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import git

log = logging.getLogger(__name__)

MAX_DIFF_CHARS = 20000  # per file and commit: a generated file must not flood the evidence


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    author: str
    date: str
    subject: str  # untrusted text: fenced before it reaches a model
    files: tuple[str, ...]


@dataclass(frozen=True)
class Hunk:
    """One hunk of a unified diff: where it sits in the old and new file, and its lines."""

    path: str
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    lines: tuple[str, ...]  # with their " ", "-", "+" markers

    @property
    def removed(self) -> list[str]:
        return [line[1:] for line in self.lines if line.startswith("-")]

    @property
    def added(self) -> list[str]:
        return [line[1:] for line in self.lines if line.startswith("+")]

    def text(self) -> str:
        head = f"@@ -{self.old_start},{self.old_count} +{self.new_start},{self.new_count} @@"
        return "\n".join([head, *self.lines])


@dataclass(frozen=True)
class FileChange:
    path: str
    hunks: tuple[Hunk, ...]
    truncated: bool = False


@dataclass(frozen=True)
class CommitChange:
    """One commit since the last good run, with its diff of the files that make the pipeline."""

    commit: CommitInfo
    files: tuple[FileChange, ...]

    def hunks(self, path: str | None = None) -> list[Hunk]:
        return [h for f in self.files if path is None or f.path == path for h in f.hunks]


@dataclass(frozen=True)
class CodeChanges:
    """Everything that changed in the pipeline's files from the last good run's commit to the failed one.

    ``net`` is the whole change base..head per file (what a revert works on); ``commits``
    the same split by commit (who changed what), oldest first; ``before`` the files' text at
    the base commit.
    """

    base: str
    head: str
    paths: tuple[str, ...]
    commits: tuple[CommitChange, ...]
    net: tuple[FileChange, ...]
    before: tuple[tuple[str, str], ...] = ()  # (path, text at base) for files that existed then

    @property
    def changed_paths(self) -> list[str]:
        return [f.path for f in self.net if f.hunks]

    def touches(self, path: str) -> bool:
        return path in self.changed_paths

    def net_hunks(self, path: str | None = None) -> list[Hunk]:
        return [h for f in self.net if path is None or f.path == path for h in f.hunks]

    def old_text(self, path: str) -> str | None:
        return dict(self.before).get(path)

    def added_lines(self, path: str | None = None) -> list[str]:
        return [line for h in self.net_hunks(path) for line in h.added]

    def removed_lines(self, path: str | None = None) -> list[str]:
        return [line for h in self.net_hunks(path) for line in h.removed]

    def introduced(self, word: str, path: str | None = None) -> bool:
        """Whether the change added ``word`` (a whole identifier, any case): more of it on the lines it
        added than on the lines it removed (a line edited around an old name does not make the name new)."""
        pattern = re.compile(rf"(?<![\w$]){re.escape(word)}(?![\w$])", re.IGNORECASE)
        added = sum(len(pattern.findall(line)) for line in self.added_lines(path))
        return added > sum(len(pattern.findall(line)) for line in self.removed_lines(path))

    def hunk_with(self, word: str, path: str) -> Hunk | None:
        """The net hunk of ``path`` whose added lines hold ``word``, when exactly one does."""
        pattern = re.compile(rf"(?<![\w$]){re.escape(word)}(?![\w$])", re.IGNORECASE)
        found = [h for h in self.net_hunks(path) if any(pattern.search(line) for line in h.added)]
        return found[0] if len(found) == 1 else None

    def commits_touching(self, path: str, hunk: Hunk | None = None) -> list[CommitInfo]:
        """The commits that changed ``path`` (those whose added lines overlap ``hunk``'s, when given)."""
        out = []
        for c in self.commits:
            mine = c.hunks(path)
            if not mine:
                continue
            if hunk is not None and not {x.strip() for h in mine for x in h.added if x.strip()} & {
                    x.strip() for x in hunk.added if x.strip()}:
                continue
            out.append(c.commit)
        return out

    def render(self, limit: int = 4000) -> str:
        """The commits and their diffs as plain text (untrusted: fence it before a model reads it)."""
        parts = []
        for c in self.commits:
            parts.append(f"commit {c.commit.sha[:10]} by {c.commit.author} on {c.commit.date[:10]}: {c.commit.subject}")
            for f in c.files:
                parts.append(f"--- {f.path}")
                parts += [h.text() for h in f.hunks]
        text = "\n".join(parts)
        return text if len(text) <= limit else text[:limit] + "\n[... diff cut ...]"

    def to_json(self) -> dict:
        return {"base": self.base, "head": self.head, "paths": list(self.paths),
                "commits": [{**c.commit.__dict__, "files": list(c.commit.files),
                             "diff": {f.path: "\n".join(h.text() for h in f.hunks) for f in c.files}}
                            for c in self.commits]}


def recent_commits(repo: git.Repo, paths: list[str], rev: str = "HEAD", limit: int = 5) -> list[CommitInfo]:
    """The newest commits (up to ``limit``) at or before ``rev`` touching any of ``paths``."""
    out = []
    try:
        for c in repo.iter_commits(rev, paths=paths, max_count=limit):
            out.append(_info(c))
    except (git.GitCommandError, ValueError):
        return []
    return out


def _info(c) -> CommitInfo:
    return CommitInfo(sha=c.hexsha, author=str(c.author), date=c.committed_datetime.isoformat(),
                      subject=c.message.strip().splitlines()[0] if c.message.strip() else "",
                      files=tuple(sorted(c.stats.files)))


def pipeline_paths(root: Path, job: str, expectations: str | None, kind: str) -> list[str]:
    """The files that make a pipeline: its job, the repo modules a PySpark job imports, healer.yml, expectations."""
    paths = [job, "healer.yml"] + ([expectations] if expectations else [])
    if kind == "python":
        paths += imported_modules(root, job)
    return list(dict.fromkeys(paths))


def imported_modules(root: Path, job: str) -> list[str]:
    """Repo-relative paths of the modules the job imports from its own folder or the repo root."""
    try:
        tree = ast.parse((root / job).read_text())
    except (OSError, SyntaxError, ValueError):
        return []
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    out = []
    folders = [Path(job).parent, Path(".")]
    for name in names:
        rel = Path(*name.split("."))
        for folder in folders:
            for candidate in (folder / rel.with_suffix(".py"), folder / rel / "__init__.py"):
                if (root / candidate).is_file():
                    out.append(candidate.as_posix())
    return out


def changes_since(repo: git.Repo, base: str | None, head: str | None, paths: list[str]) -> CodeChanges | None:
    """The pipeline files' changes from ``base`` (the last good run's commit) to ``head``.

    None when there is no base, the two are the same commit, or git cannot say (a base no
    longer in the clone): then the code is not known to have changed.
    """
    if not base:
        return None
    try:
        head = head or repo.head.commit.hexsha
        base_sha, head_sha = repo.commit(base).hexsha, repo.commit(head).hexsha
        if base_sha == head_sha:
            return None
        commits = []
        for c in reversed(list(repo.iter_commits(f"{base_sha}..{head_sha}", paths=paths))):
            parent = c.parents[0].hexsha if c.parents else None
            files = _diff(repo, parent, c.hexsha, paths) if parent else ()
            commits.append(CommitChange(_info(c), files))
        net = _diff(repo, base_sha, head_sha, paths, context=0)  # minimal hunks: what a revert undoes
        before = []
        for p in paths:
            try:
                before.append((p, repo.git.show(f"{base_sha}:{p}", strip_newline_in_stdout=False)))
            except git.GitCommandError:
                pass  # the file did not exist at the base
        return CodeChanges(base_sha, head_sha, tuple(paths), tuple(commits), net, tuple(before))
    except (git.GitCommandError, ValueError, git.BadName) as exc:
        log.info("no code changes for %s..%s: %s", base, head, exc)
        return None


def _diff(repo: git.Repo, a: str, b: str, paths: list[str], context: int = 3) -> tuple[FileChange, ...]:
    text = repo.git.diff(a, b, "--no-color", "--no-ext-diff", f"-U{context}", "--", *paths)
    return parse_diff(text)


_FILE = re.compile(r"^diff --git a/(.+?) b/(.+)$")
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def parse_diff(text: str) -> tuple[FileChange, ...]:
    """Unified diff text -> the hunks of each file (binary files and mode changes have none)."""
    files: list[FileChange] = []
    path, hunks, cur, size = None, [], None, 0

    def close():
        nonlocal cur
        if cur is not None:
            hunks.append(Hunk(path, *cur[0], tuple(cur[1])))
            cur = None

    def flush():
        close()
        if path is not None:
            files.append(FileChange(path, tuple(hunks), truncated=size > MAX_DIFF_CHARS))

    for line in text.splitlines():
        m = _FILE.match(line)
        if m:
            flush()
            path, hunks, size = m.group(2), [], 0
            continue
        m = _HUNK.match(line)
        if m and path is not None:
            close()
            cur = ((int(m.group(1)), int(m.group(2) or 1), int(m.group(3)), int(m.group(4) or 1)), [])
            continue
        if cur is not None and line[:1] in (" ", "-", "+", "\\"):
            size += len(line)
            if size <= MAX_DIFF_CHARS and not line.startswith("\\"):
                cur[1].append(line)
    flush()
    return tuple(files)


def revert_hunk(text: str, hunk: Hunk) -> str | None:
    """``text`` (the file at the head) with ``hunk`` undone; None when the hunk's lines are not where it says."""
    lines = text.splitlines(keepends=True)
    new_block = [line[1:] for line in hunk.lines if line[:1] in (" ", "+")]
    old_block = [line[1:] for line in hunk.lines if line[:1] in (" ", "-")]
    start = hunk.new_start - 1 if hunk.new_count else hunk.new_start
    got = [line.rstrip("\r\n") for line in lines[start:start + len(new_block)]]
    if got != new_block:
        return None
    ending = "\n"
    replaced = [line + ending for line in old_block]
    if start + len(new_block) >= len(lines) and lines and not lines[-1].endswith("\n") and replaced:
        replaced[-1] = replaced[-1].rstrip("\n")
    return "".join(lines[:start] + replaced + lines[start + len(new_block):])


def hunks_touched(changes: CodeChanges, edits) -> list[Hunk]:
    """The net hunks of ``changes`` whose new lines a fix's edits (FileEdit: path, before, after) change."""
    import difflib

    out = []
    for e in edits:
        hunks = changes.net_hunks(e.path)
        if not hunks:
            continue
        touched = set()
        matcher = difflib.SequenceMatcher(a=e.before.splitlines(), b=e.after.splitlines(), autojunk=False)
        for tag, i1, i2, _, _ in matcher.get_opcodes():
            if tag != "equal":
                touched.update(range(i1 + 1, max(i2, i1 + 1) + 1))  # 1-based lines of the file at the head
        for h in hunks:
            lines = set(range(h.new_start, h.new_start + max(h.new_count, 1)))
            if lines & touched:
                out.append(h)
    return out
