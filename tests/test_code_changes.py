"""The commits since the last good run as evidence (issue 17): real git repos, no Spark."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import git
import pytest

from healer.evidence.history import changes_since, hunks_touched, parse_diff, pipeline_paths, revert_hunk
from healer.evidence.intent import contract_check
from healer.failure import Failure, classify
from healer.fixers.base import FileEdit, Patch

JOB = "jobs/mix.sql"
GOOD = "-- orders per channel\nSELECT channel,\n  COUNT(*) AS orders\nFROM orders\nGROUP BY channel\n"
BAD = ("-- orders per channel\nSELECT channel,\n  COUNT(*) AS orders,\n  MAX(stauts) AS last_status\n"
       "FROM orders\nGROUP BY channel\n")


def _commit(repo: git.Repo, root: Path, files: dict[str, str], who: str, message: str) -> str:
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
        repo.index.add([path])
    actor = git.Actor(who, f"{who.lower().replace(' ', '.')}@example.com")
    return repo.index.commit(message, author=actor, committer=actor).hexsha


@pytest.fixture
def history(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    repo = git.Repo.init(root)
    helper = "def label(c):\n    return c\n"
    good = _commit(repo, root, {JOB: GOOD, "healer.yml": "pipelines: {}\n", "jobs/helpers.py": helper,
                                "README.md": "x\n"}, "Old Hand", "good")
    _commit(repo, root, {"README.md": "y\n"}, "Doc Writer", "docs only")
    bad = _commit(repo, root, {JOB: BAD}, "Dana Dev", "mix: last status per channel")
    return SimpleNamespace(root=root, repo=repo, good=good, bad=bad)


def test_changes_since_the_last_good_commit_name_the_commit_author_and_hunk(history):
    changes = changes_since(history.repo, history.good, history.bad, pipeline_paths(history.root, JOB, None, "sql"))
    assert [c.commit.author for c in changes.commits] == ["Dana Dev"]  # the README commit is not the pipeline's
    assert changes.changed_paths == [JOB]
    assert changes.introduced("stauts", JOB) and not changes.introduced("channel", JOB)
    assert changes.old_text(JOB) == GOOD
    hunk = changes.hunk_with("stauts", JOB)
    assert hunk is not None and "+  MAX(stauts) AS last_status" in hunk.text()
    assert revert_hunk(BAD, hunk) == GOOD
    assert changes.commits_touching(JOB, hunk)[0].subject == "mix: last status per channel"
    fix = FileEdit(JOB, BAD, BAD.replace("stauts", "status"))
    assert hunks_touched(changes, [fix]) == [hunk]
    assert "Dana Dev" in changes.render() and changes.to_json()["commits"][0]["author"] == "Dana Dev"


def test_no_changes_when_the_commit_is_the_same_or_unknown(history):
    paths = [JOB]
    assert changes_since(history.repo, history.bad, history.bad, paths) is None
    assert changes_since(history.repo, None, history.bad, paths) is None
    assert changes_since(history.repo, "0" * 40, history.bad, paths) is None


def test_a_pyspark_job_s_imported_modules_are_pipeline_files(tmp_path):
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "helpers.py").write_text("")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "__init__.py").write_text("")
    (tmp_path / "jobs" / "job.py").write_text("import helpers\nfrom shared import x\nimport os\n")
    assert pipeline_paths(tmp_path, "jobs/job.py", "jobs/job.expectations.yml", "python") == [
        "jobs/job.py", "healer.yml", "jobs/job.expectations.yml", "jobs/helpers.py", "shared/__init__.py"]


def test_parse_diff_reads_hunks_without_counts():
    diff = "diff --git a/x.sql b/x.sql\n--- a/x.sql\n+++ b/x.sql\n@@ -1 +1 @@\n-a\n+b\n"
    (f,) = parse_diff(diff)
    assert f.path == "x.sql" and f.hunks[0].removed == ["a"] and f.hunks[0].added == ["b"]


def test_the_pr_body_and_the_prompt_show_the_commits(history):
    from healer.report import _code_changes

    changes = changes_since(history.repo, history.good, history.bad, [JOB])
    patch = Patch("rule:code_typo", "typo", "why", 0.85, [FileEdit(JOB, BAD, BAD.replace("stauts", "status"))])
    evidence = SimpleNamespace(changes=changes)
    body = "\n".join(_code_changes(evidence, patch))
    assert "Dana Dev" in body and "mix: last status per channel" in body and "MAX(stauts)" in body
    assert "Doc Writer" not in body


@pytest.mark.parametrize("error_class, stage, message, category", [
    ("INCONSISTENT_BEHAVIOR_CROSS_VERSION.DATETIME_PATTERN_RECOGNITION", "job", "", "legacy_behavior"),
    ("INCONSISTENT_BEHAVIOR_CROSS_VERSION.READ_ANCIENT_DATETIME", "job", "", "legacy_behavior"),
    ("FAILED_READ_FILE.CANNOT_READ_FILE_FOOTER", "input", "", "unreadable_input"),
    ("UNABLE_TO_INFER_SCHEMA", "input", "", "unreadable_input"),
    ("SparkException", "input", "input 'orders': x is not a Parquet file", "unreadable_input"),
    ("Py4JJavaError", "input", "input 'orders': java.lang.RuntimeException", "unreadable_input"),
    ("INPUT_NOT_FOUND", "input", "", "missing_table"),
])
def test_triage_classifies_legacy_behaviour_and_unreadable_inputs(error_class, stage, message, category):
    f = classify(Failure("p", "r", stage, error_class, message, params={"input": "orders"}))
    assert f.category == category


def test_the_contract_is_the_new_commit_s_columns(history):
    """A fix keeping the commit's new column passes; a revert that drops it, or a column retyped, does not."""
    last_good = SimpleNamespace(commit=history.good, output_schema=_schema(channel="string", orders="long"))
    pipeline = SimpleNamespace(root=history.root, job=JOB, expectations=None, kind="sql", name="mix")
    ok, detail = contract_check(pipeline, last_good, [], _schema(channel="string", orders="long", last_status="string"))
    assert ok and "new: last_status string" in detail and "Dana Dev" in detail
    ok, detail = contract_check(pipeline, last_good, [], _schema(channel="string", orders="long"))
    assert not ok and "last_status missing (added by the commit)" in detail
    retyped = _schema(channel="string", orders="integer", last_status="string")
    ok, detail = contract_check(pipeline, last_good, [], retyped)
    assert not ok and "orders was bigint, now int" in detail
    same = SimpleNamespace(commit=history.bad, output_schema=last_good.output_schema)
    assert contract_check(pipeline, same, [], _schema(channel="string")) is None  # code unchanged: the old check


def _schema(**cols) -> dict:
    return {"type": "struct",
            "fields": [{"name": n, "type": t, "nullable": True, "metadata": {}} for n, t in cols.items()]}
