"""A storm across Celery workers: one upstream change breaks 8 pipelines in 2 repos, their
failures are handed off from two workers at about the same moment, a worker is killed in the
middle of a heal, and still each repo gets exactly one pull request and no failure is lost."""

from __future__ import annotations

import time

import pytest

from celery_fixtures import celery_deployment  # noqa: F401  (the session's deployment)

pytestmark = [pytest.mark.celery, pytest.mark.airflow, pytest.mark.postgres, pytest.mark.spark, pytest.mark.slow]


def _wait(what: str, check, timeout: float, deployment, every: float = 2.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout:.0f}s\n--- scheduler\n{deployment.log('scheduler')}"
                                 f"\n--- w1\n{deployment.log('w1')}\n--- w2\n{deployment.log('w2')}")
        deployment.check_alive()
        time.sleep(every)


def test_a_storm_over_two_workers_heals_once_per_repo_and_survives_a_killed_worker(celery_deployment, spark,
                                                                                  tmp_path):
    from benchmarks.fleet_world import break_upstream, make_world, run_all_good, write_storm_dag
    from healer.airflow import queue
    from healer.forges import LocalForge
    from healer.ledger import Ledger, heals
    from healer.storm import members, storm_groups

    d = celery_deployment
    ledger = Ledger(d.ledger_url)
    world = make_world(tmp_path, repos=2, per_repo=4)
    run_all_good(world, spark, ledger)
    good = {r.id for r in ledger.runs(status="success", limit=100)}
    assert len(good) == world.total == 8
    write_storm_dag(world, d.dags)
    d.wait_for_dags("storm")
    break_upstream(world)

    storm_run = d.trigger("storm")

    # Kill the worker that leads a storm group while that group heals (every pipeline task has ended by then:
    # the kill is to hit a heal, not a pipeline).
    def leader_healing():
        if len(ledger.runs(status="failed", limit=100)) < world.total:
            return None
        for g in ledger.select(storm_groups, storm_groups.c.status == "healing", limit=10):
            running = ledger.select(heals, heals.c.run_id.in_([m["run_id"] for m in members(ledger, g["id"])]),
                                    heals.c.status == "running", limit=1)
            worker = d.group_of(int(g["holder"].rsplit(":", 1)[1]))
            if running and worker:
                return g, worker
        return None

    group, worker = _wait("a storm group healing", leader_healing, 1800, d, every=1.0)
    d.stop(worker, kill=True)  # SIGKILL to the worker's process group: the heal dies with it
    d.start_worker(worker)  # back to two workers; the killed task's retry may land on either

    assert d.wait_run("storm", storm_run, timeout=300)["state"] == "failed"
    failed = [r for r in ledger.runs(status="failed", limit=100)]
    assert len(failed) == 8 and {r.pipeline for r in failed} == {p for ps in world.pipelines.values() for p in ps}
    # the failures were handed off from both workers
    assert set().union(*(d.ran_on(r.pipeline) for r in failed)) >= {"w1", "w2"}

    def settled():
        latest = {}
        for r in failed:
            rows = ledger.select(heals, heals.c.run_id == r.id, limit=20)
            if not rows or rows[0]["status"] in ("running",):
                return None
            latest[r.id] = rows
        open_handoffs = [h for r in failed for h in queue.for_run(ledger, r.id) if h["status"] != queue.DONE]
        unfinished = ledger.select(storm_groups, storm_groups.c.status != "done", limit=10)
        return None if open_handoffs or unfinished else latest

    latest = _wait("every failure accounted for", settled, 1800, d)

    # one PR per repo (one root cause each), none duplicated
    prs = LocalForge(ledger).list()
    assert len(prs) == 2, [(p.id, p.title, p.branch) for p in prs]
    assert len({p.branch for p in prs}) == 2 and all(p.branch.startswith("healer/storm/") for p in prs)
    by_repo = {}
    for r in failed:
        final = next(h for h in latest[r.id] if h["status"] != "abandoned")
        assert final["status"] == "proposed", (r.pipeline, final["status"], final["reason"])
        by_repo.setdefault(r.repo, set()).add(final["pr_id"])
    assert sorted(len(v) for v in by_repo.values()) == [1, 1] and len(set().union(*by_repo.values())) == 2
    for pr in prs:
        assert pr.title.endswith("— 4 pipelines"), pr.title
        repo = next(name for name, path in world.repos.items() if pr.pipeline.split(",")[0] in world.pipelines[name])
        assert sorted(pr.pipeline.split(",")) == sorted(world.pipelines[repo])
        for pipeline in world.pipelines[repo]:
            assert f"## `{pipeline}`" in pr.body

    # the killed leader's heals were abandoned and the group was healed by another process
    killed = ledger.get(storm_groups, group["id"])
    assert killed["status"] == "done" and killed["holder"] != group["holder"]
    abandoned = [h for rows in latest.values() for h in rows if h["status"] == "abandoned"]
    assert any(group["holder"] in (h["reason"] or "") for h in abandoned), abandoned
    # heals ran in the `healer` pool the plugin made, never more than its 2 slots at once
    assert d.pool("healer")["slots"] == 2
    heal_tis = [ti for run in d.dag_runs("healer") for ti in d.task_instances("healer", run["dag_run_id"])
                if ti["task_id"] == "heal" and ti["start_date"]]
    assert heal_tis and all(ti["pool"] == "healer" for ti in heal_tis)
    edges = sorted([(ti["start_date"], 1) for ti in heal_tis] +
                   [(ti["end_date"], -1) for ti in heal_tis if ti["end_date"]])
    running = [sum(step for _, step in edges[:i + 1]) for i in range(len(edges))]
    assert max(running) <= 2, running
    # every hand-off of every failure is closed
    for r in failed:
        assert queue.for_run(ledger, r.id) and all(h["status"] == queue.DONE for h in queue.for_run(ledger, r.id))
