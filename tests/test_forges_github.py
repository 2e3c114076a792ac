"""The GitHub forge against a local HTTP server that speaks the part of the REST API Healer uses.

The fake GitHub keeps its pull requests in memory but reads branches, merges and commits
from a real bare git remote, to which Healer's real workspace pushes the branch first.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re

import pytest

from forge_fixtures import no_forge_settings, pushed, remote, server, sleeps  # noqa: F401 -- shared fixtures
from forgeserver import ForgeServer, Request, commits_since, head_of, merge_in_bare, proposal, push_fix, revert_in_bare
from healer.errors import ConfigError, ForgeError
from healer.fixers.base import FileEdit
import healer.forges
from healer.forges import GitHubForge, LocalForge, Retry, forge_kind, get_forge, sync
from healer.forges.remote import fingerprint_in, labels_for
from healer.ledger import prs

TOKEN = "ghs_test_token"
REPO = "acme/pipelines"
NOW = 1_700_000_000.0  # the clock the forge sees: 2023-11-14 22:13:20 UTC
WEB = "https://github.example"


class FakeGitHub:
    """Pull requests, labels, reviewers, comments, merges and commits of one repository."""

    def __init__(self, origin, prefix: str = "", drafts: bool = True):
        self.origin, self.prefix, self.drafts = origin, prefix, drafts
        self.pulls: dict[int, dict] = {}
        self.comments: dict[int, list[str]] = {}
        self.numbers = itertools.count(1)

    def __call__(self, req: Request):
        if req.headers.get("authorization") != f"Bearer {TOKEN}":
            return 401, {}, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
        base = f"{self.prefix}/repos/{REPO}"
        if not req.path.startswith(base + "/"):
            return 404, {}, {"message": "Not Found"}
        route = (req.method, req.path[len(base):])
        for (method, pattern), handler in self.routes.items():
            match = re.fullmatch(pattern, route[1])
            if method == route[0] and match:
                return handler(self, req, *match.groups())
        return 404, {}, {"message": "Not Found"}

    def _pull(self, number: int) -> dict:
        pr = self.pulls[number]
        pr["head"]["sha"] = head_of(self.origin, pr["head"]["ref"]) or pr["head"]["sha"]
        return pr

    def list_pulls(self, req, *_):
        owner, _, branch = req.query.get("head", ":").partition(":")
        state = req.query.get("state", "open")
        found = [self._pull(n) for n, p in self.pulls.items()
                 if (not branch or (owner == "acme" and p["head"]["ref"] == branch)) and (state == "all" or p["state"] == state)]
        return 200, {}, found

    def create_pull(self, req, *_):
        data = req.body
        missing = [k for k in ("title", "head", "base") if not data.get(k)]
        if missing:
            return 422, {}, {"message": "Validation Failed", "errors": [{"resource": "PullRequest", "field": missing[0],
                                                                          "code": "missing_field"}]}
        sha = head_of(self.origin, data["head"])
        if sha is None:
            return 422, {}, {"message": "Validation Failed",
                             "errors": [{"resource": "PullRequest", "field": "head", "code": "invalid"}]}
        if data.get("draft") and not self.drafts:
            return 422, {}, {"message": "Validation Failed", "errors": [
                {"resource": "PullRequest", "code": "custom",
                 "message": "Draft pull requests are not supported in this repository."}]}
        if any(p["head"]["ref"] == data["head"] and p["state"] == "open" for p in self.pulls.values()):
            return 422, {}, {"message": "Validation Failed", "errors": [
                {"resource": "PullRequest", "code": "custom",
                 "message": f"A pull request already exists for acme:{data['head']}."}]}
        number = next(self.numbers)
        self.pulls[number] = {"number": number, "state": "open", "title": data["title"], "body": data.get("body"),
                              "draft": bool(data.get("draft")), "merged": False, "merged_at": None,
                              "merge_commit_sha": None, "html_url": f"{WEB}/{REPO}/pull/{number}",
                              "head": {"ref": data["head"], "sha": sha}, "base": {"ref": data["base"]},
                              "labels": [], "requested_reviewers": [], "requested_teams": [], "assignees": []}
        return 201, {}, self.pulls[number]

    def get_pull(self, req, number):
        if int(number) not in self.pulls:
            return 404, {}, {"message": "Not Found"}
        return 200, {}, self._pull(int(number))

    def update_pull(self, req, number):
        pr = self.pulls[int(number)]
        for key in ("title", "body", "state"):
            if key in req.body:
                pr[key] = req.body[key]
        return 200, {}, self._pull(int(number))

    def add_labels(self, req, number):
        pr = self.pulls[int(number)]
        for name in req.body["labels"]:
            if name not in [label["name"] for label in pr["labels"]]:
                pr["labels"].append({"name": name})
        return 200, {}, pr["labels"]

    def request_reviewers(self, req, number):
        pr = self.pulls[int(number)]
        pr["requested_reviewers"] += [{"login": u} for u in req.body.get("reviewers", [])]
        pr["requested_teams"] += [{"slug": t} for t in req.body.get("team_reviewers", [])]
        return 201, {}, pr

    def add_assignees(self, req, number):
        pr = self.pulls[int(number)]
        pr["assignees"] += [{"login": u} for u in req.body.get("assignees", [])]
        return 201, {}, pr

    def comment(self, req, number):
        self.comments.setdefault(int(number), []).append(req.body["body"])
        return 201, {}, {"id": len(self.comments[int(number)]), "body": req.body["body"]}

    def merge_pull(self, req, number):
        return 200, {}, self.merge(int(number))

    def merge(self, number: int, tmp_path=None) -> dict:
        """What the merge button does: a real merge commit on the base branch."""
        pr = self.pulls[number]
        sha = merge_in_bare(self.origin, self.origin.parent, pr["head"]["ref"], pr["base"]["ref"],
                            f"Merge pull request #{number} from acme/{pr['head']['ref']}\n\n{pr['title']}")
        pr.update(state="closed", merged=True, merge_commit_sha=sha,
                  merged_at=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
        return {"sha": sha, "merged": True, "message": "Pull Request successfully merged"}

    def list_commits(self, req, *_):
        page, per_page = int(req.query.get("page", 1)), int(req.query.get("per_page", 30))
        found = commits_since(self.origin, req.query.get("sha", "main"), req.query.get("since"))
        chunk = found[(page - 1) * per_page: page * per_page]
        return 200, {}, [{"sha": sha, "commit": {"message": msg, "committer": {"date": when}}} for sha, when, msg in chunk]

    routes = {
        ("GET", r"/pulls"): list_pulls,
        ("POST", r"/pulls"): create_pull,
        ("GET", r"/pulls/(\d+)"): get_pull,
        ("PATCH", r"/pulls/(\d+)"): update_pull,
        ("POST", r"/issues/(\d+)/labels"): add_labels,
        ("POST", r"/pulls/(\d+)/requested_reviewers"): request_reviewers,
        ("POST", r"/issues/(\d+)/assignees"): add_assignees,
        ("POST", r"/issues/(\d+)/comments"): comment,
        ("PUT", r"/pulls/(\d+)/merge"): merge_pull,
        ("GET", r"/commits"): list_commits,
    }


@pytest.fixture
def fake(remote):
    return FakeGitHub(remote[0])


@pytest.fixture
def forge(ledger, server, sleeps):
    return GitHubForge(ledger, REPO, TOKEN, api_url=server.url, reviewers=["alice", "acme/data-eng"],
                       retry=Retry(attempts=4, backoff=1.0), sleep=sleeps.append, clock=lambda: NOW)


def test_open_makes_a_labelled_pull_request_with_reviewers_and_records_it(forge, server, fake, remote, tmp_path, ledger):
    args = pushed(remote, tmp_path)

    pr = forge.open(**args)

    assert [(r.method, r.path) for r in server.requests] == [
        ("GET", f"/repos/{REPO}/pulls"), ("POST", f"/repos/{REPO}/pulls"), ("POST", f"/repos/{REPO}/issues/1/labels"),
        ("POST", f"/repos/{REPO}/pulls/1/requested_reviewers")]
    lookup, create, labels, reviewers = server.requests
    assert lookup.query == {"head": f"acme:{args['branch']}", "state": "open"}
    assert create.body == {"title": args["title"], "head": args["branch"], "base": "main", "body": args["body"],
                           "draft": False}
    assert labels.body == {"labels": ["healer", "UNRESOLVED_COLUMN.WITH_SUGGESTION"]}
    assert reviewers.body == {"reviewers": ["alice"], "team_reviewers": ["data-eng"]}
    for r in server.requests:
        assert r.headers["authorization"] == f"Bearer {TOKEN}"
        assert r.headers["accept"] == "application/vnd.github+json"
        assert r.headers["x-github-api-version"] == "2022-11-28"
        assert r.headers["user-agent"].startswith("healer/")
    # the fake GitHub saw the real pushed branch
    assert fake.pulls[1]["head"]["sha"] == head_of(remote[0], args["branch"])
    assert "<!-- healer:fingerprint=" + args["fingerprint"] + " -->" in fake.pulls[1]["body"]
    # recorded in the ledger, where `healer prs` reads every forge
    assert (pr.forge, pr.number, pr.url, pr.status, pr.draft) == ("github", "1", f"{WEB}/{REPO}/pull/1", "open", False)
    assert [p.id for p in LocalForge(ledger).list()] == [pr.id]
    assert forge.get(pr.id).fingerprint == args["fingerprint"]


def test_draft_is_opened_as_a_github_draft(forge, server, remote, tmp_path):
    args = pushed(remote, tmp_path, "draft_fix")
    assert args["draft"]

    pr = forge.open(**args)

    create = server.calls("POST", r"/pulls$")[0]
    assert create.body["draft"] is True and create.body["title"] == args["title"]
    assert server.calls("POST", r"/labels$")[0].body == {"labels": ["healer", "CAST_INVALID_INPUT"]}
    assert pr.draft and pr.status == "open"


def test_repository_without_drafts_gets_a_titled_draft(ledger, remote, tmp_path, sleeps):
    fake = FakeGitHub(remote[0], drafts=False)
    server = ForgeServer(fake).start()
    try:
        forge = GitHubForge(ledger, REPO, TOKEN, api_url=server.url, sleep=sleeps.append)
        pr = forge.open(**pushed(remote, tmp_path, "draft_fix"))
    finally:
        server.stop()
    first, second = server.calls("POST", r"/pulls$")
    assert first.body["draft"] is True and second.body["draft"] is False
    assert second.body["title"].startswith("[draft] heal(customer_lifetime): ")
    assert fake.pulls[1]["title"].startswith("[draft] ")
    assert pr.status == "open" and any("no draft pull requests" in w for w in forge.warnings)


def test_second_heal_of_the_same_cause_updates_the_open_pull_request(forge, server, fake, remote, tmp_path, ledger):
    first = forge.open(**pushed(remote, tmp_path))
    # the cause comes back: a new fix is pushed to the same branch with a new body
    ex_args = proposal("rule_fix")
    new_body = ex_args["body"].replace("Confidence: **0.93**", "Confidence: **0.95**")
    from forgeserver import example

    edits = [FileEdit(e.path, e.before, e.after + "-- healed again\n") for e in example("rule_fix")["patch"].edits]
    new_sha = push_fix(remote[1], tmp_path, ex_args["branch"], edits)

    second = forge.open(**dict(ex_args, body=new_body, heal_id=8, remote=str(remote[0])))

    assert second.id == first.id and second.number == "1"
    assert len(fake.pulls) == 1 and len(server.calls("POST", r"/pulls$")) == 1
    patch_call = server.calls("PATCH", r"/pulls/1$")[0]
    assert patch_call.body == {"title": ex_args["title"], "body": new_body}
    assert fake.pulls[1]["body"] == new_body
    (comment,) = fake.comments[1]
    assert new_sha[:10] in comment and "heal #8" in comment and ex_args["branch"] in comment
    rows = ledger.select(prs)
    assert len(rows) == 1 and rows[0]["body"] == new_body and rows[0]["heal_id"] == 8


def test_a_draft_fix_for_a_ready_pull_request_says_so_in_title_and_comment(forge, server, fake, remote, tmp_path):
    forge.open(**pushed(remote, tmp_path))
    again = proposal("rule_fix", draft=True)
    forge.open(**dict(again, remote=str(remote[0])))
    assert fake.pulls[1]["title"] == "[draft] " + again["title"]
    assert "only good enough for a draft" in fake.comments[1][0]


def test_branch_that_was_never_pushed_is_a_one_line_error_and_stays_pending(forge, remote, ledger, server):
    args = dict(proposal("rule_fix"), remote=str(remote[0]))

    with pytest.raises(ForgeError) as err:
        forge.open(**args)

    text = str(err.value)
    assert "\n" not in text
    assert f"POST {server.url}/repos/{REPO}/pulls answered 422 Unprocessable Entity: Validation Failed; " \
           "PullRequest head invalid" in text
    assert f"open a pull request {args['branch']} -> main in {REPO}" in text
    (row,) = ledger.select(prs)
    assert row["status"] == "pending" and row["number"] is None and "pending #" in text


def test_server_errors_are_retried_with_backoff(forge, server, fake, remote, tmp_path, sleeps):
    server.fault("POST", r"/pulls$", 502, {"message": "Server Error"}, times=2)

    pr = forge.open(**pushed(remote, tmp_path))

    assert sleeps == [1.0, 2.0]
    assert len(server.calls("POST", r"/pulls$")) == 3 and len(fake.pulls) == 1
    assert pr.status == "open" and pr.number == "1"


def test_a_lost_answer_to_the_create_call_does_not_open_a_second_pull_request(forge, server, fake, remote, tmp_path):
    # GitHub opened the pull request but the answer was lost: the retry is told it exists.
    server.fault("POST", r"/pulls$", 504, {"message": "Gateway Timeout"}, after=True)

    pr = forge.open(**pushed(remote, tmp_path))

    assert len(fake.pulls) == 1 and pr.number == "1" and pr.status == "open"
    assert len(server.calls("POST", r"/pulls$")) == 2
    assert len(server.calls("GET", r"/pulls$")) == 2  # looked again after "already exists"


def test_rate_limit_with_a_near_reset_waits_then_succeeds(forge, server, remote, tmp_path, sleeps):
    server.fault("POST", r"/pulls$", 403, {"message": "API rate limit exceeded for installation ID 1."},
                 headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 5)})

    pr = forge.open(**pushed(remote, tmp_path))

    assert sleeps == [6.0] and pr.status == "open"


def test_secondary_rate_limit_with_retry_after_waits(forge, server, remote, tmp_path, sleeps):
    server.fault("POST", r"/pulls$", 403, {"message": "You have exceeded a secondary rate limit."},
                 headers={"retry-after": "7"})
    forge.open(**pushed(remote, tmp_path))
    assert sleeps == [7.0]


def test_rate_limit_far_from_reset_fails_at_once_and_sync_opens_it_later(forge, server, fake, remote, tmp_path, sleeps,
                                                                          ledger):
    server.fault("POST", r"/pulls$", 403, {"message": "API rate limit exceeded for user ID 1."},
                 headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 3600)})
    args = pushed(remote, tmp_path)

    with pytest.raises(ForgeError) as err:
        forge.open(**args)

    text = str(err.value)
    assert sleeps == [] and "\n" not in text
    assert "answered 403 Forbidden: API rate limit exceeded for user ID 1." in text
    assert "rate limited; the limit resets at 2023-11-14 23:13:21 UTC, in 3601 s" in text
    assert f"branch {args['branch']} is pushed" in text and "healer sync" in text
    (row,) = ledger.select(prs)
    assert row["status"] == "pending" and fake.pulls == {}

    # later, `healer sync` opens what was left pending
    env = {"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": server.url, "HEALER_FORGE_REPO": REPO}
    (result,) = sync(ledger, env=env, sleep=sleeps.append)

    assert (result.before, result.after, result.error) == ("pending", "open", None)
    assert len(fake.pulls) == 1 and fake.pulls[1]["body"] == args["body"]
    assert [label["name"] for label in fake.pulls[1]["labels"]] == ["healer", "UNRESOLVED_COLUMN.WITH_SUGGESTION"]
    (row,) = ledger.select(prs)
    assert (row["status"], row["number"], row["url"]) == ("open", "1", f"{WEB}/{REPO}/pull/1")


def test_bad_token_and_missing_repository_are_one_line_errors(ledger, server, remote, sleeps):
    args = dict(proposal("rule_fix"), remote=str(remote[0]))
    bad = GitHubForge(ledger, REPO, "wrong", api_url=server.url, sleep=sleeps.append)
    with pytest.raises(ForgeError) as err:
        bad.open(**args)
    assert "\n" not in str(err.value)
    assert f"GET {server.url}/repos/{REPO}/pulls answered 401 Unauthorized: Bad credentials (check GITHUB_TOKEN)" \
           in str(err.value)

    missing = GitHubForge(ledger, "acme/nope", TOKEN, api_url=server.url, sleep=sleeps.append)
    with pytest.raises(ForgeError) as err:
        missing.open(**args)
    assert "/repos/acme/nope/pulls answered 404 Not Found: Not Found (not found, or GITHUB_TOKEN cannot see it)" \
           in str(err.value)
    assert sleeps == []  # neither is worth a retry


def test_persistent_server_error_gives_up_after_the_attempts(forge, server, remote, tmp_path, sleeps):
    server.fault("POST", r"/pulls$", 500, {"message": "boom"}, times=10)
    with pytest.raises(ForgeError) as err:
        forge.open(**pushed(remote, tmp_path))
    assert sleeps == [1.0, 2.0, 4.0]
    assert "answered 500 Internal Server Error: boom" in str(err.value)


def test_enterprise_api_url_is_chosen_for_its_host_and_used(ledger, remote, tmp_path, sleeps):
    fake = FakeGitHub(remote[0], prefix="/api/v3")
    server = ForgeServer(fake).start()
    try:
        env = {"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": f"{server.url}/api/v3"}
        forge = get_forge(ledger, "git@127.0.0.1:acme/pipelines.git", env=env, sleep=sleeps.append)
        assert isinstance(forge, GitHubForge)
        pr = forge.open(**pushed(remote, tmp_path))
    finally:
        server.stop()
    assert pr.number == "1"
    assert server.requests and all(r.path.startswith(f"/api/v3/repos/{REPO}/") for r in server.requests)


@pytest.mark.parametrize("remote_url, env, kind", [
    ("git@github.com:acme/pipelines.git", {}, "local"),  # no token: stays local
    ("git@github.com:acme/pipelines.git", {"GITHUB_TOKEN": "t"}, "github"),
    ("https://github.com/acme/pipelines", {"GITHUB_TOKEN": "t"}, "github"),
    ("git@ghe.corp.example:acme/pipelines.git", {"GITHUB_TOKEN": "t"}, "local"),  # unknown host
    ("git@ghe.corp.example:acme/pipelines.git", {"GITHUB_TOKEN": "t", "GITHUB_API_URL": "https://ghe.corp.example/api/v3"},
     "github"),
    ("git@acme.ghe.com:acme/pipelines.git", {"GITHUB_TOKEN": "t", "GITHUB_API_URL": "https://api.acme.ghe.com"},
     "github"),
    ("git@gitlab.com:acme/pipelines.git", {"GITHUB_TOKEN": "t"}, "local"),
    ("git@gitlab.com:acme/pipelines.git", {"GITLAB_TOKEN": "t"}, "gitlab"),
    ("https://gitlab.corp.example/data/pipelines.git", {"GITLAB_TOKEN": "t"}, "gitlab"),
    ("https://git.corp.example/data/pipelines.git", {"GITLAB_TOKEN": "t", "GITLAB_API_URL": "https://git.corp.example/api/v4"},
     "gitlab"),
    ("/tmp/origin.git", {"GITHUB_TOKEN": "t", "GITLAB_TOKEN": "t"}, "local"),
    ("git@bitbucket.org:acme/pipelines.git", {"GITHUB_TOKEN": "t"}, "local"),
    ("git@github.com:acme/pipelines.git", {"GITHUB_TOKEN": "t", "HEALER_FORGE": "local"}, "local"),
    ("/tmp/origin.git", {"GITHUB_TOKEN": "t", "HEALER_FORGE": "GitHub"}, "github"),
])
def test_forge_choice(remote_url, env, kind):
    assert forge_kind(remote_url, env) == kind


def test_forge_settings_from_the_environment(ledger):
    forge = get_forge(ledger, "git@ghe.corp.example:acme/pipelines.git",
                      env={"HEALER_FORGE": "github", "GITHUB_TOKEN": "t", "HEALER_REVIEWERS": "@alice, bob acme/sre"})
    assert forge.api.base_url == "https://ghe.corp.example/api/v3" and forge.project == REPO
    assert forge.reviewers == ["alice", "bob", "acme/sre"]
    assert get_forge(ledger, "https://github.com/acme/pipelines.git", env={"GITHUB_TOKEN": "t"}).api.base_url \
        == "https://api.github.com"
    assert isinstance(get_forge(ledger, "git@github.com:acme/pipelines.git", env={}), LocalForge)
    with pytest.raises(ForgeError, match="GITHUB_TOKEN is not set"):
        get_forge(ledger, "/tmp/origin.git", env={"HEALER_FORGE": "github"})
    with pytest.raises(ForgeError, match="set HEALER_FORGE_REPO=owner/name"):
        get_forge(ledger, "/tmp/origin.git", env={"HEALER_FORGE": "github", "GITHUB_TOKEN": "t"})
    with pytest.raises(ConfigError, match="^HEALER_FORGE='bitbucket': expected one of github, gitlab, local$"):
        get_forge(ledger, "/tmp/origin.git", env={"HEALER_FORGE": "bitbucket"})


def test_merge_and_close_go_through_the_api(forge, server, fake, remote, tmp_path, ledger):
    pr = forge.open(**pushed(remote, tmp_path))
    merged = forge.merge(pr.id)
    assert server.calls("PUT", r"/pulls/1/merge$") and merged.status == "merged"
    assert "Merge pull request #1" in commits_since(remote[0], "main", None)[0][2]
    with pytest.raises(ForgeError, match="is merged, not open"):
        forge.close(pr.id)

    other = forge.open(**pushed(remote, tmp_path, "draft_fix"))
    closed = forge.close(other.id)
    assert server.calls("PATCH", r"/pulls/2$")[-1].body == {"state": "closed"} and closed.status == "closed"


def test_sync_reads_merged_closed_and_reverted_back(forge, server, fake, remote, tmp_path, ledger, capsys, monkeypatch):
    from healer.cli import main

    first = forge.open(**pushed(remote, tmp_path))
    second = forge.open(**pushed(remote, tmp_path, "draft_fix"))
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", server.url)
    monkeypatch.delenv("HEALER_FORGE_REPO", raising=False)  # the repository comes from the recorded URL

    # on GitHub, a reviewer merges the first and closes the second
    fake.merge(1)
    fake.pulls[2]["state"] = "closed"
    assert main(["sync"]) == 0
    out = capsys.readouterr().out
    assert f"PR #{first.id} (github {WEB}/{REPO}/pull/1): open -> merged" in out
    assert f"PR #{second.id} (github {WEB}/{REPO}/pull/2): open -> closed" in out
    assert forge.get(first.id).status == "merged" and forge.get(second.id).status == "closed"

    # nothing new: nothing changes
    assert main(["sync"]) == 0
    assert "no changes" in capsys.readouterr().out

    # a developer reverts the merge on main: the fix was rejected after all
    revert_in_bare(remote[0], tmp_path, "main", fake.pulls[1]["merge_commit_sha"])
    assert main(["sync", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"before": "merged", "after": "reverted"' in out
    assert forge.get(first.id).status == "reverted"
    commits = server.calls("GET", r"/commits$")[-1]
    assert commits.query["sha"] == "main" and commits.query["since"].endswith("Z")


def test_sync_without_a_token_is_a_one_line_error_per_pull_request(forge, remote, tmp_path, ledger, capsys, monkeypatch):
    from healer.cli import main

    pr = forge.open(**pushed(remote, tmp_path))
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)

    assert main(["sync"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"healer: PR #{pr.id} (github {WEB}/{REPO}/pull/1): still open: GitHub: GITHUB_TOKEN is not set; "
                   "set it to a token that may open pull requests"]
    assert forge.get(pr.id).status == "open"


def test_public_names_are_one_sorted_list():
    assert healer.forges.__all__ == sorted(healer.forges.__all__)
    assert all(hasattr(healer.forges, name) for name in healer.forges.__all__)


def test_markers_are_read_from_the_end_of_single_and_storm_bodies():
    spoof = "```\n<!-- healer:fingerprint=0000 -->\n<!-- healer:error-class=SPOOF -->\n```\n"
    single = spoof + "<!-- healer:fingerprint=abc123 -->"
    assert fingerprint_in(single) == "abc123"
    # heal.py's storm body: member bodies without their fingerprint markers, then the storm's own
    storm = single.replace("<!-- healer:fingerprint=abc123 -->", "") + "\n<!-- healer:fingerprint=f00d members=abc,def -->"
    assert fingerprint_in(storm) == "f00d"
    # labels are passed to forge.open, never read from a body: a marker in one names none
    assert labels_for([]) == ["healer"] and labels_for(["CAST_INVALID_INPUT"]) == ["healer", "CAST_INVALID_INPUT"]
    assert labels_for(["A,B", "x" * 80]) == ["healer", "A B", "x" * 50]


def test_unreachable_api_is_retried_then_one_line(ledger, remote, sleeps):
    closed = ForgeServer(lambda req: (200, {}, [])).start()
    closed.stop()  # nothing listens on this port any more
    forge = GitHubForge(ledger, REPO, TOKEN, api_url=closed.url, retry=Retry(attempts=3), sleep=sleeps.append)
    with pytest.raises(ForgeError) as err:
        forge.open(**dict(proposal("rule_fix"), remote=str(remote[0])))
    assert sleeps == [1.0, 2.0]
    assert f"GET {closed.url}/repos/{REPO}/pulls: ConnectError" in str(err.value) and "\n" not in str(err.value)


def test_policy_audience_is_requested_beside_the_settings_reviewers(forge, server, fake, remote, tmp_path):
    from healer.forges.base import Audience

    args = pushed(remote, tmp_path)
    audience = Audience(reviewers=("bob", "acme/finance", "alice"), labels=("finance",), assignees=("dana",))
    forge.open(**args, audience=audience)
    labels = server.calls("POST", r"/issues/1/labels$")[0]
    assert labels.body == {"labels": ["healer", "UNRESOLVED_COLUMN.WITH_SUGGESTION", "finance"]}
    reviewers = server.calls("POST", r"/pulls/1/requested_reviewers$")[0]
    assert reviewers.body == {"reviewers": ["alice", "bob"], "team_reviewers": ["data-eng", "finance"]}
    assignees = server.calls("POST", r"/issues/1/assignees$")[0]
    assert assignees.body == {"assignees": ["dana"]}
    assert fake.pulls[1]["assignees"] == [{"login": "dana"}] and not forge.warnings
