"""HealerPipelineOperator: a pipeline run (write–audit–publish) as an Airflow task, with a PR link."""

from __future__ import annotations

import logging
from typing import Any, Mapping

from airflow.sdk import BaseOperator, BaseOperatorLink, conf

from healer.airflow.links import task_path
from healer.airflow.runs import PipelineSpec, run_managed

log = logging.getLogger(__name__)


class HealerPRLink(BaseOperatorLink):
    """The "Healer PR" button on a task: its pull request, or where its heal stands."""

    name = "Healer PR"

    def get_link(self, operator, *, ti_key) -> str:
        # Airflow stores the link when the task ends, before any heal ran; the page it
        # points at follows the hand-off and redirects to the PR once there is one.
        base = conf.get("api", "base_url", fallback="") or ""
        return base.rstrip("/") + task_path(ti_key.dag_id, ti_key.run_id, ti_key.task_id, ti_key.map_index, go="pr")


class HandedOffPRLink(HealerPRLink):
    """The same button on every other task (a ``@self_healing`` function, a task with the failure
    callback), registered for all operators by the plugin: shown once the task handed a failure off."""

    def get_link(self, operator, *, ti_key) -> str:
        # the API server asks for every task it shows links of: one ledger query, and
        # no link ("") when the ledger has no hand-off for this try's task or cannot be read
        try:
            from healer.airflow import queue
            from healer.ledger import Ledger

            if not queue.for_task(Ledger(), ti_key.dag_id, ti_key.task_id, ti_key.run_id, ti_key.map_index):
                return ""
        except Exception:
            log.debug("no hand-off link for %s.%s", ti_key.dag_id, ti_key.task_id, exc_info=True)
            return ""
        return super().get_link(operator, ti_key=ti_key)


class HealerPipelineOperator(BaseOperator):
    """Run one pipeline of a repo's healer.yml with write–audit–publish, recorded in the ledger.

    ``repo`` and ``env`` are templated; ``env`` overrides ``${VARS}`` of the manifest for this
    run (``env={"WAREHOUSE": "/lake/{{ ds }}"}``). A failed run fails the task with the
    recorded run attached, so ``on_failure_callback=heal_on_failure`` or the Healer plugin's
    listener hands it to the healer DAG. Returns a summary of the run (an XCom).
    """

    template_fields = ("repo", "env")
    operator_extra_links = (HealerPRLink(),)
    ui_color = "#e3f1e8"

    def __init__(self, *, pipeline: str, repo: str, env: Mapping[str, str] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.pipeline = pipeline
        self.repo = repo
        self.env = dict(env or {})

    @property
    def __healer__(self) -> PipelineSpec:
        # runs.SPEC_ATTR: the mark of a healer-managed task, read by the listener
        return PipelineSpec(self.pipeline, str(self.repo))

    def execute(self, context) -> dict:
        return run_managed(PipelineSpec(self.pipeline, str(self.repo)), env=self.env, ti=context["ti"],
                           source="airflow:operator")

