"""`healer sync` on the local forge: merges and their reverts read from the real git remote."""

from __future__ import annotations

from forgeserver import commits_since, example, make_remote, proposal, push_fix, revert_in_bare
from healer.forges import LocalForge, sync
from healer.ledger import prs


def test_local_merge_then_revert_is_seen_by_sync(ledger, tmp_path, capsys):
    from healer.cli import main

    origin, repo = make_remote(tmp_path)
    forge = LocalForge(ledger)
    opened = []
    for name in ("rule_fix", "draft_fix"):
        args = proposal(name)
        push_fix(repo, tmp_path, args["branch"], example(name)["patch"].edits)
        opened.append(forge.open(**dict(args, remote=str(origin))))
    merged = forge.merge(opened[0].id)  # the local forge's real git merge into main

    assert [(r.pr_id, r.before, r.after, r.error) for r in sync(ledger)] == [
        (opened[0].id, "merged", "merged", None), (opened[1].id, "open", "open", None)]

    merge_sha = next(sha for sha, _, msg in commits_since(origin, "main", None) if msg.startswith(f"Merge {merged.branch}:"))
    revert_in_bare(origin, tmp_path, "main", merge_sha)
    assert main(["sync", "--forge", "local"]) == 0
    assert f"PR #{opened[0].id} (local healer://pr/{opened[0].id}): merged -> reverted" in capsys.readouterr().out
    assert forge.get(opened[0].id).status == "reverted" and forge.get(opened[1].id).status == "open"


def test_unreachable_local_remote_is_an_error_for_that_pull_request_only(ledger, tmp_path):
    origin, repo = make_remote(tmp_path)
    forge = LocalForge(ledger)
    args = proposal("rule_fix")
    push_fix(repo, tmp_path, args["branch"], example("rule_fix")["patch"].edits)
    pr = forge.merge(forge.open(**dict(args, remote=str(origin))).id)
    ledger.update(prs, pr.id, remote=str(tmp_path / "gone.git"))

    (result,) = sync(ledger)

    assert result.error and result.error.startswith(f"cannot fetch main from {tmp_path / 'gone.git'}: ")
    assert "\n" not in result.error and forge.get(pr.id).status == "merged"
