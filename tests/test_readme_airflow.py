"""The README's Airflow quickstart as a newcomer copies it: every Python snippet is a DAG file
that real Airflow parses without an import error, and the shell steps include what Airflow 3
needs before DAGs appear and the settings every component needs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.airflow]


def airflow_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Turn healing on in Airflow")
    return text[start:text.index("\n## ", start + 1)]


def blocks(kind: str) -> list[str]:
    """Fenced blocks of one language, dedented (the numbered list indents them)."""
    found = []
    for indent, body in re.findall(rf"^( *)```{kind}\n(.*?)^\1```", airflow_section(), re.S | re.M):
        found.append("\n".join(line[len(indent):] for line in body.splitlines()) + "\n")
    return found


def test_every_python_snippet_is_a_dag_file_airflow_parses(airflow_env, tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    snippets = blocks("python")
    assert len(snippets) == 4  # the healer DAG and the three ways
    for i, code in enumerate(snippets):
        (tmp_path / f"snippet_{i}.py").write_text(code)

    bag = DagBag(dag_folder=str(tmp_path), include_examples=False, safe_mode=False)

    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == ["healer", "retail_callback", "retail_decorator", "retail_operator"]
    handed = {"retail_operator": "revenue", "retail_decorator": "clean_customers", "retail_callback": "sessions"}
    for dag_id, task_id in handed.items():
        task = bag.get_dag(dag_id).get_task(task_id)
        assert task.on_failure_callback, f"{dag_id}.{task_id} hands nothing off"


def test_shell_steps_name_every_step_a_newcomer_missed():
    shell = "\n".join(blocks("sh"))
    for needed in ("pip install \"healer[airflow]\"", "export HEALER_LEDGER_URL=", "export HEALER_API_TOKEN=",
                   "airflow db migrate", "airflow dags reserialize", "airflow dags test healer"):
        assert needed in shell, needed
    prose = " ".join(airflow_section().split())
    assert "simple_auth_manager_passwords.json.generated" in prose  # where the login password is
    for component in ("scheduler", "dag-processor", "triggerer", "api-server"):
        assert f"`airflow {component}`" in prose, component


# -- the quickstart, run as a newcomer runs it ----------------------------------------------

PIP_SHIM = '''#!{python}
"""`pip install "healer[airflow]"`, checked instead of done: Healer is installed in this venv."""
import importlib.metadata as m
import sys

from packaging.requirements import Requirement

if sys.argv[1:] != ["install", "healer[airflow]"]:
    sys.exit(f"pip shim: the quickstart runs `pip install \\"healer[airflow]\\"`, not: pip {{' '.join(sys.argv[1:])}}")
m.version("healer")
unmet = []
for line in m.requires("healer") or []:
    req = Requirement(line)
    if req.marker is not None and not req.marker.evaluate({{"extra": "airflow"}}):
        continue
    try:
        have = m.version(req.name)
    except m.PackageNotFoundError:
        unmet.append(f"{{req}} (not installed)")
        continue
    if not req.specifier.contains(have, prereleases=True):
        unmet.append(f"{{req}} (have {{have}})")
import airflow  # noqa: E402,F401 -- the extra's point: Airflow imports
if unmet:
    sys.exit("pip shim: healer[airflow] is not satisfied: " + "; ".join(unmet))
print("Requirement already satisfied: healer[airflow] (checked by the test's pip shim)")
'''

STEP = "::quickstart-step::"  # printed before each command of the shell blocks (bash's DEBUG trap)


@dataclass
class Step:
    command: str
    status: int | None
    output: str
    seconds: float


def run_shell_blocks(script: str, env: dict, cwd: Path, timeout: float) -> list[Step]:
    """Run ``script`` in one bash, as a person pastes it into one terminal (no ``set -e``);
    each top-level command with its exit status, output and duration."""
    import subprocess

    traced = (f"trap 'echo \"{STEP}$? $EPOCHREALTIME $BASH_COMMAND\"' DEBUG\n" + script
              + "\ntrue  # the last command's status\n")
    done = subprocess.run(["bash", "-c", traced], env=env, cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)
    # each marker carries the status of the command before it and names the command after it
    steps: list[Step] = []
    for part in done.stdout.split(STEP)[1:]:
        head, _, output = part.partition("\n")
        status, at, command = head.split(" ", 2)
        if steps:
            steps[-1].status, steps[-1].seconds = int(status), float(at) - steps[-1].seconds
        steps.append(Step(command, None, output, float(at)))
    assert steps and steps[-1].command.startswith("true"), done.stdout[-5000:]
    return steps[:-1]


def origin_branches(origin: Path) -> dict[str, str]:
    import subprocess

    out = subprocess.run(["git", "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads"],
                         cwd=origin, capture_output=True, text=True, check=True).stdout
    return dict(line.split() for line in out.splitlines())


@pytest.mark.slow
@pytest.mark.spark  # the pipeline and the heal start Spark in the airflow processes
def test_the_quickstart_verbatim_heals_a_handed_off_failure_into_a_pr(tmp_path, retail_data):
    """The README's quickstart, run in bash as written, in a fresh world: HOME is a temporary
    directory (so ``~/airflow`` lands in it), no ``AIRFLOW_*`` or ``HEALER_*`` variable is set
    beforehand, the venv's bin is first on PATH. Its shell blocks run in one bash, in order, as a
    person pastes them into one terminal; between them the test does what the prose says: puts
    the DAG files in ``$AIRFLOW_HOME/dags`` (after the first block) and breaks the pipeline
    upstream (before the last). The only substitutions:

    (a) ``pip install "healer[airflow]"`` runs a ``pip`` shim (first on PATH) that checks Healer
        and every requirement of its ``airflow`` extra are installed and Airflow imports, and
        fails otherwise; it installs nothing (the venv has them).
    (b) ``/repos/retail`` in the operator snippet is a real pipeline repo (``make_pipeline_repo``:
        git, a bare origin); the upstream change is the one the prose names, ``order_items.unit_price``
        renamed ``item_price`` in its data, so ``revenue_by_category`` fails.

    For speed only, ``HEALER_CACHE_DIR`` points at the machine's Spark class-data archive (the
    JVM starts in half the time; ``make install`` builds it); it changes no behaviour. Airflow
    keeps its defaults (example DAGs too, which ``airflow dags reserialize`` parses), and
    Healer its 20 s storm window. Measured: 485-679 s at load ~20 on 2 cores (each ``airflow dags
    test`` starts Spark: 90-230 s apiece; migrate 22-25 s, reserialize 31-43 s).
    """
    import os
    import shlex
    import sqlite3
    import subprocess
    import sys
    import time

    from conftest import make_pipeline_repo
    from healer.airflow import queue
    from healer.forges import LocalForge
    from healer.ledger import Ledger, heals
    from healer.runner import jvm_cache

    # (b) a real repo, and the upstream change the README names
    repo = make_pipeline_repo(tmp_path / "retail", retail_data)
    origin = tmp_path / "retail" / "origin.git"
    branches_before = origin_branches(origin)
    prose = " ".join(airflow_section().split())
    assert "`order_items.unit_price` is renamed `item_price`" in prose
    upstream_change = ("python -c " + shlex.quote(
        f"from healer.examples import drift; drift.rename_column({str(repo / 'data')!r}, "
        "'order_items', 'unit_price', 'item_price')") + "\n")

    # the DAG files, from the README's snippets: the healer DAG and the operator way
    healer_py, operator_py = blocks("python")[:2]
    assert "healer_dag()" in healer_py and "HealerPipelineOperator" in operator_py
    assert operator_py.count("/repos/retail") == 1
    staged = tmp_path / "snippets"
    staged.mkdir()
    (staged / "healer.py").write_text(healer_py)
    (staged / "retail_operator.py").write_text(operator_py.replace("/repos/retail", str(repo)))
    put_dag_files = "".join(f'cp {shlex.quote(str(staged / name))} "$AIRFLOW_HOME/dags/{name}"\n'
                            for name in ("healer.py", "retail_operator.py"))

    # (a) the pip shim, and a fresh world
    home, shims = tmp_path / "home", tmp_path / "shims"
    home.mkdir()
    shims.mkdir()
    (shims / "pip").write_text(PIP_SHIM.format(python=sys.executable))
    (shims / "pip").chmod(0o755)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW_", "HEALER_", "PYTHON", "VIRTUAL_ENV", "XDG_"))}
    env.update(HOME=str(home), HEALER_CACHE_DIR=str(jvm_cache.cache_dir()),
               PATH=os.pathsep.join([str(shims), str(Path(sys.executable).parent), os.environ.get("PATH", "")]))

    install, parse_and_run, heal = blocks("sh")
    started = time.monotonic()
    steps = run_shell_blocks(install + put_dag_files + parse_and_run + upstream_change + heal, env, cwd=tmp_path,
                             timeout=1100)
    took = time.monotonic() - started
    timing = ", ".join(f"{s.command.split('  #')[0][:40]} {s.seconds:.0f}s" for s in steps if s.seconds >= 1)
    print(f"\nthe quickstart ran in {took:.0f}s: {timing}")
    (tmp_path / "quickstart.log").write_text("".join(f"$ {s.command}  [exit {s.status}, {s.seconds:.0f}s]\n{s.output}"
                                                     for s in steps))
    log = "\n".join(f"$ {s.command}  [exit {s.status}, {s.seconds:.0f}s]\n{s.output[-4000:]}" for s in steps)
    log += f"\n(every line: {tmp_path / 'quickstart.log'})"

    # every step ran, in order; only the run after the upstream change exited non-zero
    wanted = ['pip install "healer[airflow]"', "airflow db migrate", "airflow dags reserialize",
              "airflow dags test retail_operator", "airflow dags test retail_operator", "airflow dags test healer",
              "healer prs"]
    ran = [s for s in steps if s.command in wanted]
    assert [s.command for s in ran] == wanted, log
    failing_run = ran[4]
    for s in steps:
        assert s.status == (1 if s is failing_run else 0), f"`{s.command}` exited {s.status}\n{log}"
    assert "checked by the test's pip shim" in ran[0].output, log

    airflow_home = home / "airflow"
    ledger_db = airflow_home / "healer-ledger.db"
    assert (airflow_home / "airflow.db").is_file() and ledger_db.is_file(), log
    with sqlite3.connect(airflow_home / "airflow.db") as db:
        dag_runs = db.execute("select dag_id, run_id, state, run_type from dag_run order by id").fetchall()
    ledger = Ledger(f"sqlite:///{ledger_db}")

    # the good run, then the failing one: it recorded its failure and a hand-off, and healed nothing itself
    [(_, good_run, good, _), (_, failed_run, failed, _)] = [r for r in dag_runs if r[0] == "retail_operator"]
    assert (good, failed) == ("success", "failed")
    assert "DagRun failed" in failing_run.output, log
    failure = ledger.last_failure("revenue_by_category", repo=str(repo.resolve()))
    history = ledger.runs(pipeline="revenue_by_category", repo=str(repo.resolve()))
    assert [r.status for r in history if r.id <= failure.id] == ["failed", "success"]
    assert failure.error_class.startswith("UNRESOLVED_COLUMN"), failure.error_class
    assert (failure.context["dag_id"], failure.context["run_id"]) == ("retail_operator", failed_run)
    [handoff] = queue.for_run(ledger, failure.id)
    assert (handoff["dag_id"], handoff["task_id"], handoff["airflow_run_id"]) == ("retail_operator", "revenue",
                                                                                  failed_run)

    # a plain `airflow dags test healer` (no conf) claimed that hand-off and healed it into a PR
    [(_, healer_run, state, run_type)] = [r for r in dag_runs if r[0] == "healer"]
    assert (state, run_type) == ("success", "manual"), log
    assert handoff["healer_run_id"] == healer_run
    [heal] = ledger.select(heals, heals.c.run_id == failure.id)
    assert heal["status"] == "proposed", heal["reason"]
    assert heal["fixer"] == "rule:renamed_column"
    assert (handoff["status"], handoff["outcome"], handoff["heal_id"]) == ("done", "proposed", heal["id"])

    # `healer prs` lists the open PR, whose branch is on the origin with the fix
    pr = LocalForge(ledger).get(heal["pr_id"])
    assert pr.status == "open" and pr.pipeline == "revenue_by_category" and pr.base == "main"
    assert pr.one_line() in ran[-1].output, log
    branches = origin_branches(origin)
    assert set(branches) - set(branches_before) == {pr.branch}, branches
    assert branches["main"] == branches_before["main"]  # a pull request, nothing pushed to main
    diff = subprocess.run(["git", "diff", f"main..{pr.branch}", "--", "jobs/revenue_by_category.sql"], cwd=origin,
                          capture_output=True, text=True, check=True).stdout
    added = [line for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert any("item_price" in line for line in added), diff
    print(diff)
