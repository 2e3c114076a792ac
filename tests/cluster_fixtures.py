"""A real Spark standalone cluster for the tests marked ``cluster`` (see benchmarks/spark_cluster.py).

One master and one worker per test session, started on first use and stopped at the end
(their process groups, whatever the tests did). The worker does not share the driver's
``/tmp``: only ``cluster.shared`` is visible to both, so a pipeline repo, its data and the
healer's scratch must live there. Tests drive the cluster from a new process (``healer run``
/ ``healer heal`` with ``cluster.client_env(...)``): the test process's own SparkSession is
the local one of the ``spark`` fixture, and a process holds only one.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory):
    """A running standalone cluster: ``.master_url``, ``.shared`` (the only directory its worker
    shares with the driver) and ``.client_env(scratch_uri)`` for a process that drives it."""
    from benchmarks.spark_cluster import StandaloneCluster

    base = tmp_path_factory.mktemp("spark-cluster")
    cluster = StandaloneCluster.start(base / "daemons", base / "shared")
    try:
        yield cluster
    finally:
        cluster.stop()
