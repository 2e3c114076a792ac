"""The GitLab forge against a local HTTP server that speaks the part of API v4 Healer uses.

The fake GitLab keeps merge requests in memory but reads branches, merges and commits from
a real bare git remote, to which Healer's real workspace pushes the branch first. The
project sits in a subgroup, so its id travels URL-encoded (``acme%2Fdata%2Fpipelines``).
"""

from __future__ import annotations

import datetime as dt
import itertools
import re

import pytest

from forge_fixtures import no_forge_settings, pushed, remote, server, sleeps  # noqa: F401 -- shared fixtures
from forgeserver import ForgeServer, Request, commits_since, example, head_of, merge_in_bare, proposal, push_fix, \
    revert_in_bare
from healer.errors import ForgeError
from healer.fixers.base import FileEdit
from healer.forges import GitLabForge, LocalForge, Retry, get_forge, sync
from healer.forges.gitlab import project_from_remote
from healer.ledger import prs

TOKEN = "glpat-test-token"
PROJECT = "acme/data/pipelines"
ENCODED = "acme%2Fdata%2Fpipelines"
NOW = 1_700_000_000.0
WEB = "https://gitlab.example"
USERS = {"alice": 7, "bob": 9}


class FakeGitLab:
    """Merge requests, notes, users, merges and commits of one project."""

    def __init__(self, origin, prefix: str = "/api/v4"):
        self.origin, self.prefix = origin, prefix
        self.mrs: dict[int, dict] = {}
        self.notes: dict[int, list[str]] = {}
        self.iids = itertools.count(1)

    def __call__(self, req: Request):
        if req.headers.get("private-token") != TOKEN:
            return 401, {}, {"message": "401 Unauthorized"}
        if req.path == f"{self.prefix}/users":
            name = req.query.get("username")
            return 200, {}, [{"id": USERS[name], "username": name}] if name in USERS else []
        base = f"{self.prefix}/projects/{ENCODED}"
        if not req.path.startswith(base):
            return 404, {}, {"message": "404 Project Not Found"}
        for (method, pattern), handler in self.routes.items():
            match = re.fullmatch(pattern, req.path[len(base):])
            if method == req.method and match:
                return handler(self, req, *match.groups())
        return 404, {}, {"error": "404 Not Found"}

    def _mr(self, iid: int) -> dict:
        mr = self.mrs[iid]
        mr["sha"] = head_of(self.origin, mr["source_branch"]) or mr["sha"]
        mr["draft"] = mr["title"].lower().startswith(("draft:", "[draft]", "(draft)"))
        return mr

    def list_mrs(self, req, *_):
        state = req.query.get("state", "all")
        found = [self._mr(i) for i, m in self.mrs.items()
                 if m["source_branch"] == req.query.get("source_branch", m["source_branch"]) and state in ("all", m["state"])]
        return 200, {}, found

    def create_mr(self, req, *_):
        data = req.body
        missing = [k for k in ("source_branch", "target_branch", "title") if not data.get(k)]
        if missing:
            return 400, {}, {"error": f"{missing[0]} is missing"}
        sha = head_of(self.origin, data["source_branch"])
        if sha is None:
            return 422, {}, {"message": ["Source branch does not exist"]}
        for m in self.mrs.values():
            if m["source_branch"] == data["source_branch"] and m["state"] == "opened":
                return 409, {}, {"message": [f"Another open merge request already exists for this source branch: "
                                             f"!{m['iid']}"]}
        iid = next(self.iids)
        self.mrs[iid] = {"iid": iid, "id": 1000 + iid, "state": "opened", "title": data["title"],
                         "description": data.get("description"), "source_branch": data["source_branch"],
                         "target_branch": data["target_branch"], "sha": sha, "merge_commit_sha": None,
                         "squash_commit_sha": None, "merged_at": None,
                         "labels": [x for x in (data.get("labels") or "").split(",") if x],
                         "reviewers": [{"id": i} for i in data.get("reviewer_ids", [])],
                         "assignees": [{"id": i} for i in data.get("assignee_ids", [])],
                         "web_url": f"{WEB}/{PROJECT}/-/merge_requests/{iid}"}
        return 201, {}, self._mr(iid)

    def get_mr(self, req, iid):
        if int(iid) not in self.mrs:
            return 404, {}, {"message": "404 Not found"}
        return 200, {}, self._mr(int(iid))

    def update_mr(self, req, iid):
        mr = self.mrs[int(iid)]
        for key in ("title", "description"):
            if key in req.body:
                mr[key] = req.body[key]
        if req.body.get("state_event") == "close":
            mr["state"] = "closed"
        for label in (req.body.get("add_labels") or "").split(","):
            if label and label not in mr["labels"]:
                mr["labels"].append(label)
        return 200, {}, self._mr(int(iid))

    def add_note(self, req, iid):
        self.notes.setdefault(int(iid), []).append(req.body["body"])
        return 201, {}, {"id": len(self.notes[int(iid)]), "body": req.body["body"]}

    def merge_mr(self, req, iid):
        return 200, {}, self.merge(int(iid))

    def merge(self, iid: int) -> dict:
        """What the merge button does: a real merge commit on the target branch."""
        mr = self.mrs[iid]
        sha = merge_in_bare(self.origin, self.origin.parent, mr["source_branch"], mr["target_branch"],
                            f"Merge branch '{mr['source_branch']}' into '{mr['target_branch']}'\n\n{mr['title']}\n\n"
                            f"See merge request {PROJECT}!{iid}")
        mr.update(state="merged", merge_commit_sha=sha,
                  merged_at=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"))
        return self._mr(iid)

    def list_commits(self, req, *_):
        page, per_page = int(req.query.get("page", 1)), int(req.query.get("per_page", 20))
        found = commits_since(self.origin, req.query.get("ref_name", "main"), req.query.get("since"))
        chunk = found[(page - 1) * per_page: page * per_page]
        return 200, {}, [{"id": sha, "message": msg, "committed_date": when} for sha, when, msg in chunk]

    routes = {
        ("GET", r"/merge_requests"): list_mrs,
        ("POST", r"/merge_requests"): create_mr,
        ("GET", r"/merge_requests/(\d+)"): get_mr,
        ("PUT", r"/merge_requests/(\d+)"): update_mr,
        ("POST", r"/merge_requests/(\d+)/notes"): add_note,
        ("PUT", r"/merge_requests/(\d+)/merge"): merge_mr,
        ("GET", r"/repository/commits"): list_commits,
    }


@pytest.fixture
def fake(remote):
    return FakeGitLab(remote[0])


@pytest.fixture
def forge(ledger, server, sleeps):
    return GitLabForge(ledger, PROJECT, TOKEN, api_url=f"{server.url}/api/v4", reviewers=["alice", "carol"],
                       retry=Retry(attempts=4, backoff=0.5), sleep=sleeps.append, clock=lambda: NOW)


def test_open_makes_a_labelled_merge_request_with_reviewers_and_records_it(forge, server, fake, remote, tmp_path, ledger):
    args = pushed(remote, tmp_path)

    pr = forge.open(**args)

    base = f"/api/v4/projects/{ENCODED}"
    assert [(r.method, r.path) for r in server.requests] == [
        ("GET", f"{base}/merge_requests"), ("GET", "/api/v4/users"), ("GET", "/api/v4/users"),
        ("POST", f"{base}/merge_requests")]
    lookup, alice, carol, create = server.requests
    assert lookup.query == {"source_branch": args["branch"], "state": "opened"}
    assert (alice.query, carol.query) == ({"username": "alice"}, {"username": "carol"})
    assert create.body == {"source_branch": args["branch"], "target_branch": "main", "title": args["title"],
                           "description": args["body"], "labels": "healer,UNRESOLVED_COLUMN.WITH_SUGGESTION",
                           "remove_source_branch": True, "reviewer_ids": [7]}
    assert all(r.headers["private-token"] == TOKEN and r.headers["user-agent"].startswith("healer/")
               for r in server.requests)
    assert fake.mrs[1]["sha"] == head_of(remote[0], args["branch"])
    assert any("no user 'carol'" in w for w in forge.warnings)  # an unknown reviewer warns, does not fail
    assert (pr.forge, pr.number, pr.url, pr.status, pr.draft) == (
        "gitlab", "1", f"{WEB}/{PROJECT}/-/merge_requests/1", "open", False)
    assert [p.id for p in LocalForge(ledger).list()] == [pr.id]


def test_draft_is_a_draft_title(forge, server, fake, remote, tmp_path):
    args = pushed(remote, tmp_path, "draft_fix")

    pr = forge.open(**args)

    create = server.calls("POST", r"/merge_requests$")[0]
    assert create.body["title"] == "Draft: " + args["title"]
    assert create.body["labels"] == "healer,CAST_INVALID_INPUT"
    assert fake.mrs[1]["draft"] and pr.draft


def test_second_heal_of_the_same_cause_updates_the_open_merge_request(forge, server, fake, remote, tmp_path, ledger):
    first = forge.open(**pushed(remote, tmp_path, "draft_fix"))
    again = proposal("draft_fix", draft=False, heal_id=12)
    new_body = again["body"].replace("Confidence: **0.62**", "Confidence: **0.81**")
    edits = [FileEdit(e.path, e.before, e.after + "-- second heal\n") for e in example("draft_fix")["patch"].edits]
    new_sha = push_fix(remote[1], tmp_path, again["branch"], edits)

    second = forge.open(**dict(again, body=new_body, remote=str(remote[0])))

    assert second.id == first.id and len(fake.mrs) == 1
    assert len(server.calls("POST", r"/merge_requests$")) == 1
    update = server.calls("PUT", r"/merge_requests/1$")[0]
    # the new fix is good enough for a ready merge request: the Draft: prefix goes
    assert update.body == {"title": again["title"], "description": new_body, "add_labels": "healer,CAST_INVALID_INPUT"}
    assert not fake.mrs[1]["draft"] and not second.draft
    (note,) = fake.notes[1]
    assert new_sha[:10] in note and "heal #12" in note
    (row,) = ledger.select(prs)
    assert row["body"] == new_body and row["heal_id"] == 12


def test_conflict_after_a_lost_answer_updates_instead_of_duplicating(forge, server, fake, remote, tmp_path):
    server.fault("POST", r"/merge_requests$", 502, {"message": "502 Bad Gateway"}, after=True)

    pr = forge.open(**pushed(remote, tmp_path))

    assert len(fake.mrs) == 1 and pr.number == "1"
    statuses = [r.method for r in server.calls(path=r"/merge_requests$")]
    assert statuses == ["GET", "POST", "POST", "GET"]  # the retried POST met 409 and looked again


def test_rate_limit_with_retry_after_waits(forge, server, remote, tmp_path, sleeps):
    server.fault("POST", r"/merge_requests$", 429, {"message": "Retry later"}, headers={"Retry-After": "3"})
    pr = forge.open(**pushed(remote, tmp_path))
    assert sleeps == [3.0] and pr.status == "open"


def test_rate_limit_far_from_reset_fails_at_once_and_is_kept_pending(forge, server, remote, tmp_path, sleeps, ledger):
    server.fault("GET", r"/merge_requests$", 429, {"message": "Retry later"},
                 headers={"RateLimit-Remaining": "0", "RateLimit-Reset": str(int(NOW) + 600)})
    args = pushed(remote, tmp_path)
    with pytest.raises(ForgeError) as err:
        forge.open(**args)
    text = str(err.value)
    assert sleeps == [] and "\n" not in text
    assert f"GitLab: cannot look for an open merge request from {args['branch']}: GET {server.url}/api/v4/projects/" \
           f"{ENCODED}/merge_requests answered 429 Too Many Requests: Retry later (rate limited; the limit resets at " \
           "2023-11-14 22:23:21 UTC, in 601 s)" in text
    assert ledger.select(prs)[0]["status"] == "pending"


def test_missing_branch_and_bad_token_are_one_line_errors(ledger, forge, server, remote):
    args = dict(proposal("rule_fix"), remote=str(remote[0]))
    with pytest.raises(ForgeError) as err:
        forge.open(**args)
    assert "answered 422 Unprocessable Entity: Source branch does not exist" in str(err.value)
    assert "\n" not in str(err.value)

    bad = GitLabForge(ledger, PROJECT, "nope", api_url=f"{server.url}/api/v4")
    with pytest.raises(ForgeError) as err:
        bad.open(**args)
    assert "answered 401 Unauthorized: 401 Unauthorized (check GITLAB_TOKEN)" in str(err.value)


def test_self_hosted_gitlab_under_a_sub_path(ledger, remote, tmp_path, sleeps):
    fake = FakeGitLab(remote[0], prefix="/gitlab/api/v4")
    server = ForgeServer(fake).start()
    try:
        env = {"GITLAB_TOKEN": TOKEN, "GITLAB_API_URL": f"{server.url}/gitlab/api/v4"}
        forge = get_forge(ledger, f"https://127.0.0.1/gitlab/{PROJECT}.git", env=env, sleep=sleeps.append)
        assert isinstance(forge, GitLabForge) and forge.project == PROJECT
        pr = forge.open(**pushed(remote, tmp_path))
    finally:
        server.stop()
    assert pr.number == "1"
    assert all(r.path.startswith("/gitlab/api/v4/") for r in server.requests)
    assert server.calls("POST")[0].path == f"/gitlab/api/v4/projects/{ENCODED}/merge_requests"


def test_project_paths_from_remotes():
    assert project_from_remote("gitlab/acme/data/pipelines", "https://corp.example/gitlab/api/v4") == PROJECT
    assert project_from_remote(PROJECT, "https://gitlab.com/api/v4") == PROJECT
    forge = get_forge(None, "git@gitlab.corp.example:acme/data/pipelines.git", env={"GITLAB_TOKEN": "t"})
    assert forge.api.base_url == "https://gitlab.corp.example/api/v4" and forge.path == f"projects/{ENCODED}"
    assert get_forge(None, "https://gitlab.com/acme/pipelines.git", env={"GITLAB_TOKEN": "t"}).api.base_url \
        == "https://gitlab.com/api/v4"


def test_sync_reads_merged_closed_and_reverted_back(forge, server, fake, remote, tmp_path, ledger, sleeps):
    first = forge.open(**pushed(remote, tmp_path))
    second = forge.open(**pushed(remote, tmp_path, "draft_fix"))
    env = {"GITLAB_TOKEN": TOKEN, "GITLAB_API_URL": f"{server.url}/api/v4", "HEALER_FORGE_REPO": PROJECT}

    fake.merge(1)
    fake.mrs[2]["state"] = "closed"
    results = {r.pr_id: r for r in sync(ledger, env=env, sleep=sleeps.append)}
    assert (results[first.id].before, results[first.id].after) == ("open", "merged")
    assert (results[second.id].before, results[second.id].after) == ("open", "closed")

    revert_in_bare(remote[0], tmp_path, "main", fake.mrs[1]["merge_commit_sha"])
    (result,) = sync(ledger, env=env, forge="gitlab", sleep=sleeps.append)  # closed ones are settled
    assert (result.pr_id, result.before, result.after) == (first.id, "merged", "reverted")
    assert forge.get(first.id).status == "reverted" and forge.get(second.id).status == "closed"
    commits = server.calls("GET", r"/repository/commits$")[-1]
    assert commits.query["ref_name"] == "main" and "since" in commits.query
    assert sync(ledger, env=env, sleep=sleeps.append) == []  # reverted is final


def test_merged_pull_requests_are_watched_only_within_the_revert_window(forge, server, fake, remote, tmp_path, ledger,
                                                                        sleeps):
    pr = forge.open(**pushed(remote, tmp_path))
    env = {"GITLAB_TOKEN": TOKEN, "GITLAB_API_URL": f"{server.url}/api/v4", "HEALER_FORGE_REPO": PROJECT}
    fake.merge(1)
    sync(ledger, env=env, sleep=sleeps.append)
    assert forge.get(pr.id).status == "merged"
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=31)
    assert sync(ledger, env=env, now=later, sleep=sleeps.append) == []
    assert len(sync(ledger, env=env, now=later, revert_window_days=40, sleep=sleeps.append)) == 1


def test_policy_audience_is_requested_beside_the_settings_reviewers(forge, server, fake, remote, tmp_path):
    from healer.forges.base import Audience

    args = pushed(remote, tmp_path)
    forge.open(**args, audience=Audience(reviewers=("bob",), labels=("finance",), assignees=("alice", "acme/ops")))
    create = server.calls("POST", r"/merge_requests$")[0]
    assert create.body["reviewer_ids"] == [7, 9]  # alice (HEALER_REVIEWERS), bob (the policy); carol is unknown
    assert create.body["assignee_ids"] == [7]
    assert create.body["labels"] == "healer,UNRESOLVED_COLUMN.WITH_SUGGESTION,finance"
    assert fake.mrs[1]["assignees"] == [{"id": 7}]
    assert any("assignee 'acme/ops' looks like a group" in w for w in forge.warnings)
