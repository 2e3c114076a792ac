"""Airflow with the Celery executor, for the tests marked ``celery``: one deployment per session.

A scheduler, a dag-processor, a triggerer, the api-server and two Celery workers, with the
metadata DB and Healer's ledger in databases of their own on the local PostgreSQL and the
broker on the local Redis (see benchmarks/fleet_deployment.py). Every process is stopped and
the databases dropped at the end of the session, also when starting failed. Component logs
are kept in tests/artifacts/celery-logs/ when a test of the session failed.

Import the fixture into a test module (``from celery_fixtures import celery_deployment``).
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

# A storm's failures chain by gaps of up to a minute (eight Spark jobs starting at once on a busy 2-core machine
# start up to a minute apart); a dead leader's lease runs out in 60 s (30 s was too short for a loaded machine).
HEALER_ENV = {
    "HEALER_STORM_WINDOW": "60",
    "HEALER_LEASE_SECONDS": "60",
    "HEALER_SHADOW": "off",  # the shadow run has its own tests; here it would only double each heal's JVMs
}


@pytest.fixture(scope="session")
def celery_deployment(request, tmp_path_factory):
    from benchmarks import fleet_deployment

    base = tmp_path_factory.mktemp("celery")
    started = time.monotonic()
    deployment = None
    failed_before = request.session.testsfailed
    try:
        deployment = fleet_deployment.start(base, workers=2, concurrency=4, healer_env=HEALER_ENV, pool_slots=2)
        print(f"\ncelery_deployment: up in {time.monotonic() - started:.1f}s", file=sys.stderr)
        yield deployment
    finally:
        if deployment is not None:
            keep = None
            if request.session.testsfailed > failed_before:
                keep = ARTIFACTS / "celery-logs"
                shutil.rmtree(keep, ignore_errors=True)
            fleet_deployment.stop_all(deployment, keep_logs=keep)
