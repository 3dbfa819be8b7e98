"""A two-node Ray cluster on 127.0.0.1, started once for the session's Ray tests.

The head has one CPU; the second node one CPU, one (declared) GPU and two units of the
custom resource ``scorer``. The driver (the test process) joins it, so an Engine's Ray
placement uses it as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from reactor.placement import loopback_only


@dataclass(frozen=True)
class RayCluster:
    """The running cluster: the Cluster, the GPU node's id, the recorder actor."""

    cluster: Any
    gpu_node: str
    recorder: Any


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    """Two local nodes on loopback, and the driver connected to them."""
    ray = pytest.importorskip("ray")
    loopback_only()
    from ray.cluster_utils import Cluster

    from tests.support.ray_steps import RECORDER, Recorder

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": False},
    )
    node = cluster.add_node(num_cpus=1, num_gpus=1, resources={"scorer": 2})
    try:
        ray.init(address=cluster.address, namespace="reactor-tests", log_to_driver=False)
        cluster.wait_for_nodes()
        recorder = ray.remote(Recorder).options(name=RECORDER, num_cpus=0).remote()
        yield RayCluster(cluster=cluster, gpu_node=node.node_id, recorder=recorder)
    finally:
        ray.shutdown()
        cluster.shutdown()  # type: ignore[no-untyped-call]
