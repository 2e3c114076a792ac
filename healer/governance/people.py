"""Who a Healer PR is put in front of: the policy's reviewers, labels and assignees, and code owners.

GitHub requests reviews from the CODEOWNERS of the changed files itself (when branch protection
asks for code owner review), so Healer leaves them to it. GitLab's merge request API takes no
code owners on creation (its approval rules are a paid feature that may be off), and the local
forge has none: there the owners of the files a fix changes are added as reviewers, the way
GitHub would pick them (the last matching CODEOWNERS line wins). Owners that are groups
(``@org/team``) or e-mail addresses are requested as written, and GitLab warns that it takes
users only.

Every audience is recorded in the ledger (``pr_audience``, append-only), whatever the forge,
so the reviewers a PR asked for can be read back (``audience_of``).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import sqlalchemy as sa

from healer.forges.base import Audience
from healer.governance.effective import Effective
from healer.ledger import Ledger, UTCDateTime, metadata, utcnow

log = logging.getLogger(__name__)

# where GitHub and GitLab look for the file, in their order
CODEOWNERS_PLACES = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS", ".gitlab/CODEOWNERS")

audience_rows = sa.Table(
    "pr_audience",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pr_id", sa.Integer, nullable=False, index=True),
    sa.Column("role", sa.String(20), nullable=False),  # reviewer | label | assignee
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("source", sa.String(300)),  # policy | CODEOWNERS:<line>
    sa.Column("at", UTCDateTime(), nullable=False),
)


def _pattern(text: str) -> re.Pattern:
    """A CODEOWNERS (gitignore-style) pattern as a regex over repo-relative paths."""
    anchored = text.startswith("/") or "/" in text.rstrip("/")
    body = text.strip("/")
    if text.endswith("/"):
        body += "/**"
    out = ""
    for token in re.split(r"(\*\*|\*|\?)", body):
        out += {"**": ".*", "*": "[^/]*", "?": "[^/]"}.get(token, re.escape(token))
    return re.compile(("^" if anchored else "^(?:.*/)?") + out + "(?:/.*)?$")


def code_owners(root: Path, files: list[str]) -> dict[str, str]:
    """The owners of ``files`` by CODEOWNERS, each with the line that names them (``CODEOWNERS:7``)."""
    path = next((root / p for p in CODEOWNERS_PLACES if (root / p).is_file()), None)
    if path is None:
        return {}
    rules = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("["):  # blank, comment, or a GitLab section header
            continue
        pattern, *owners = line.split()
        rules.append((_pattern(pattern), owners, f"{path.relative_to(root)}:{number}"))
    found: dict[str, str] = {}
    for file in files:
        match = next(((owners, where) for regex, owners, where in reversed(rules) if regex.match(file)), None)
        for owner in match[0] if match else ():
            found.setdefault(owner.lstrip("@"), match[1])
    return found


def audience_for(rules: Effective | None, root: Path, files: list[str], forge) -> tuple[Audience, dict[str, str]]:
    """The audience of a PR changing ``files`` in the clone at ``root``, and where each name came from."""
    sources: dict[str, str] = {}
    reviewers = list(rules.people("reviewers")) if rules is not None else []
    for name in reviewers:
        sources[name] = next(w.where for w in rules.reviewers if name in w.value)
    if not getattr(forge, "REQUESTS_CODE_OWNERS", False):
        for owner, where in code_owners(Path(root), files).items():
            if owner not in reviewers:
                reviewers.append(owner)
                sources[owner] = where
    labels = rules.people("labels") if rules is not None else ()
    assignees = rules.people("assignees") if rules is not None else ()
    return Audience(tuple(reviewers), tuple(labels), tuple(assignees)), sources


def record(ledger: Ledger, pr_id: int, audience: Audience, sources: dict[str, str] | None = None) -> None:
    """Append who PR ``pr_id`` was put in front of."""
    ledger.ensure(audience_rows)
    now = utcnow()
    sources = sources or {}
    for role, names in (("reviewer", audience.reviewers), ("label", audience.labels),
                        ("assignee", audience.assignees)):
        for name in names:
            ledger.insert(audience_rows, pr_id=pr_id, role=role, name=name, source=sources.get(name, "policy"), at=now)


def audience_of(ledger: Ledger, pr_id: int) -> Audience:
    """Everyone PR ``pr_id`` was put in front of, as recorded."""
    ledger.ensure(audience_rows)
    rows = ledger.select(audience_rows, audience_rows.c.pr_id == pr_id, order_desc=False, limit=1000)

    def names(role: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r["name"] for r in rows if r["role"] == role))

    return Audience(names("reviewer"), names("label"), names("assignee"))
