"""The forge interface: where pull requests live (the ledger, GitHub, GitLab)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence


@dataclass(frozen=True)
class Audience:
    """Who a pull request is put in front of, beyond the forge's own settings: the policy's reviewers,
    labels and assignees, and code owners of the files it changes where the forge does not add them itself."""

    reviewers: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    assignees: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.reviewers or self.labels or self.assignees)


@dataclass
class PullRequest:
    id: int
    forge: str
    title: str
    body: str
    branch: str
    base: str
    status: str  # open | merged | closed
    draft: bool
    remote: str
    pipeline: str | None = None
    fingerprint: str | None = None
    url: str | None = None
    heal_id: int | None = None
    number: str | None = None

    def one_line(self) -> str:
        flag = " (draft)" if self.draft else ""
        return f"PR #{self.id} [{self.status}{flag}] {self.title}  {self.branch} -> {self.base}"


class Forge(Protocol):
    """Opens and manages pull requests. Capability flags say what a forge can do."""

    name: str
    SUPPORTS_MERGE: bool
    # takes ``audience=`` in open() and requests those reviewers and assignees through the forge's API
    SUPPORTS_AUDIENCE: bool
    # the forge requests reviews from CODEOWNERS itself (GitHub); elsewhere Healer adds the owners
    REQUESTS_CODE_OWNERS: bool

    # ``labels``: the heal's own, beside ``healer`` (the error class); a forge without labels ignores them
    def open(self, *, title: str, body: str, branch: str, base: str, remote: str, draft: bool,
             pipeline: str, fingerprint: str, heal_id: int | None, labels: Sequence[str] = ()) -> PullRequest: ...

    def get(self, pr_id: int) -> PullRequest: ...

    def list(self, status: str | None = None) -> list[PullRequest]: ...

    def merge(self, pr_id: int) -> PullRequest: ...

    def close(self, pr_id: int) -> PullRequest: ...
