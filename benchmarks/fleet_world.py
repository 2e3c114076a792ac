"""A storm, cheaply: one shared upstream table, several repos of small SQL pipelines reading it,
and the Airflow DAG that runs them on the Celery workers.

    lake/orders (parquet, shared) ──► repo_a: a_total, a_country, a_largest, a_average, ...
                                  └─► repo_b: b_total, b_country, ...

``break_upstream`` renames ``amount`` to ``order_amount`` in the shared table: every pipeline
fails at once with an unresolved column, one root cause in every repo.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from healer.demo import make_repo
from healer.examples import drift

# (name suffix, query, key columns): four shapes of job, all reading `amount`
JOBS = [
    ("total", "SELECT customer_id, SUM(amount) AS total FROM orders GROUP BY customer_id", ["customer_id"]),
    ("country", "SELECT country, SUM(amount) AS revenue, COUNT(*) AS n FROM orders GROUP BY country", ["country"]),
    ("largest", "SELECT customer_id, MAX(amount) AS largest FROM orders GROUP BY customer_id", ["customer_id"]),
    ("average", "SELECT country, AVG(amount) AS avg_amount FROM orders GROUP BY country", ["country"]),
    ("big", "SELECT order_id, customer_id, amount FROM orders WHERE amount > 50", ["order_id"]),
    ("small", "SELECT order_id, country, amount FROM orders WHERE amount <= 50", ["order_id"]),
]


@dataclass(frozen=True)
class World:
    lake: Path
    repos: dict[str, Path]  # repo name -> working copy (its origin is beside it)
    pipelines: dict[str, list[str]]  # repo name -> pipeline names

    @property
    def total(self) -> int:
        return sum(len(p) for p in self.pipelines.values())

    def to_json(self) -> str:
        return json.dumps({"repos": {k: str(v) for k, v in self.repos.items()}, "pipelines": self.pipelines})


def make_world(base: Path, repos: int = 2, per_repo: int = 4, rows: int = 400, seed: int = 5, tag: str = "") -> World:
    """``repos`` pipeline repos of ``per_repo`` SQL pipelines each, over one shared table.

    ``tag`` prefixes the pipelines' names, so several worlds can share one ledger and deployment."""
    rng = random.Random(seed)
    lake = base / "lake"
    (lake / "orders").mkdir(parents=True)
    table = pa.table({
        "order_id": list(range(1, rows + 1)),
        "customer_id": [rng.randint(1, 40) for _ in range(rows)],
        "country": [rng.choice(["de", "fr", "it", "es", "nl"]) for _ in range(rows)],
        "amount": [round(rng.uniform(1, 100), 2) for _ in range(rows)],
    })
    pq.write_table(table, lake / "orders" / "part-0.parquet")
    made, names = {}, {}
    for r in range(repos):
        letter = chr(ord("a") + r)
        template = base / f"template_{letter}"
        (template / "jobs").mkdir(parents=True)
        manifest = {"vars": {"LAKE": str(lake)}, "pipelines": {}}
        names[f"repo_{letter}"] = []
        for i in range(per_repo):
            suffix, sql, keys = JOBS[i % len(JOBS)]
            name = f"{tag}{letter}_{suffix}" + (f"_{i // len(JOBS)}" if i >= len(JOBS) else "")
            (template / "jobs" / f"{name}.sql").write_text(sql + "\n")
            (template / "jobs" / f"{name}.expectations.yml").write_text(
                "".join(f"- {{expect: column_values_not_null, column: {k}}}\n" for k in keys)
                + "- {expect: row_count_between, min: 1}\n")
            manifest["pipelines"][name] = {
                "job": f"jobs/{name}.sql",
                "inputs": {"orders": {"path": "${LAKE}/orders", "format": "parquet"}},
                "output": {"path": f"${{OUTPUT:-output}}/{name}", "format": "parquet"},
                "expectations": f"jobs/{name}.expectations.yml",
            }
            names[f"repo_{letter}"].append(name)
        (template / "healer.yml").write_text(json.dumps(manifest, indent=2))  # JSON is YAML
        made[f"repo_{letter}"] = make_repo(base / f"repo_{letter}" / "repo", base / f"repo_{letter}" / "origin.git",
                                        template=template, author=("Data Team", "data@example.com"))
    return World(lake=lake, repos=made, pipelines=names)


def break_upstream(world: World) -> None:
    """The upstream team renames a column every pipeline reads."""
    drift.rename_column(world.lake, "orders", "amount", "order_amount")


def run_all_good(world: World, spark, ledger) -> None:
    """The last good run of every pipeline (its schema snapshot is what a heal compares with)."""
    from healer.runner.run import run_pipeline

    for name, repo in world.repos.items():
        for pipeline in world.pipelines[name]:
            run_pipeline(repo, pipeline, spark=spark, ledger=ledger)


STORM_DAG = '''\
"""Every pipeline of the fleet world as one task; failures go to the healer (callback and listener)."""
import datetime as dt
import json
from pathlib import Path

from airflow.sdk import DAG

from healer.airflow import HealerPipelineOperator, heal_on_failure

WORLD = json.loads(Path({world!r}).read_text())

with DAG({dag_id!r}, schedule=None, start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), catchup=False,
         default_args={{"retries": 0, "on_failure_callback": heal_on_failure}}) as dag:
    for name, repo in WORLD["repos"].items():
        for pipeline in WORLD["pipelines"][name]:
            HealerPipelineOperator(task_id=pipeline, pipeline=pipeline, repo=repo)
'''


def write_storm_dag(world: World, dags: Path, dag_id: str = "storm") -> None:
    """The DAG ``dag_id`` in a deployment's dags folder, one task per pipeline of the world."""
    spec = dags.parent / f"{dag_id}-world.json"
    spec.write_text(world.to_json())
    (dags / f"{dag_id}.py").write_text(STORM_DAG.format(world=str(spec), dag_id=dag_id))
