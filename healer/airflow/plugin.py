"""HealerPlugin: the listener, the pages and API, the nav and task-instance views, the PR link.

Registered through the ``airflow.plugins`` entry point. ``[healer] enabled = False``
(``AIRFLOW__HEALER__ENABLED=false``) turns all of it off.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from airflow.sdk import conf

from healer.airflow.links import URL_PREFIX


def enabled() -> bool:
    """The plugin's switch, ``[healer] enabled`` (default on)."""
    return conf.getboolean("healer", "enabled", fallback=True)


class HealerPlugin(AirflowPlugin):
    name = "healer"
    if enabled():
        from healer.airflow import listener
        from healer.airflow.api import create_app
        from healer.airflow.operators import HandedOffPRLink, HealerPRLink

        listeners = [listener]
        fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Healer"}]
        external_views = [
            {"name": "Healer", "href": f"{URL_PREFIX}/heals", "destination": "nav", "url_route": "healer"},
            {"name": "Healer fleet", "href": f"{URL_PREFIX}/dashboard", "destination": "nav", "url_route": "healer_fleet"},
            # the UI fills in the ids (URL-encoded) and shows the page in a tab of the task instance
            {"name": "Healer", "href": f"{URL_PREFIX}/task?dag_id={{DAG_ID}}&run_id={{RUN_ID}}&task_id={{TASK_ID}}"
                                       "&map_index={MAP_INDEX}", "destination": "task_instance", "url_route": "healer_task"},
        ]
        operator_extra_links = [HealerPRLink()]
        # the button on decorator and callback tasks too, once they handed a failure off
        global_operator_extra_links = [HandedOffPRLink()]

    @classmethod
    def on_load(cls, *args, **kwargs):
        if enabled():
            from healer.airflow.pool import ensure_pool

            ensure_pool()  # only in the scheduler and api-server; never raises
