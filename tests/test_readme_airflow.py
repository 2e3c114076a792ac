"""The README's Airflow quickstart as a newcomer copies it: every Python snippet is a DAG file
that real Airflow parses without an import error, and the shell steps include what Airflow 3
needs before DAGs appear and the settings every component needs."""

from __future__ import annotations

import re
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
