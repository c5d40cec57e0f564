"""A multi-node Ray cluster on this machine for the node-failure tests (`ray.cluster_utils.Cluster`
with logical resources), and what their Tune callbacks need to kill a node. The callbacks find the
cluster in `CURRENT`, not in an attribute of their own: Tune pickles callbacks, and a Cluster holds locks."""

from __future__ import annotations

import time
from contextlib import contextmanager

CURRENT = None  # the running cluster, while `local_cluster` holds it


@contextmanager
def local_cluster(worker_nodes: int, cpus_per_node: int, object_store_mb: int = 100):
    """A head node with no CPUs (the driver's) and `worker_nodes` nodes of `cpus_per_node` CPUs each;
    Ray and every node are shut down on exit."""
    import ray
    from ray.cluster_utils import Cluster

    global CURRENT
    store = object_store_mb * 1024**2
    c = Cluster(initialize_head=True, connect=True,
                head_node_args={"num_cpus": 0, "include_dashboard": False, "object_store_memory": store})
    for _ in range(worker_nodes):
        c.add_node(num_cpus=cpus_per_node, object_store_memory=store)
    c.wait_for_nodes()
    CURRENT = c
    try:
        yield c
    finally:
        CURRENT = None
        ray.shutdown()
        c.shutdown()


def remove_node(node_id: str) -> None:
    """Remove, without grace, the worker node with this id (never the head)."""
    node = next(n for n in CURRENT.list_all_nodes() if n.node_id == node_id)
    assert node is not CURRENT.head_node
    CURRENT.remove_node(node, allow_graceful=False)


def wait_until_dead(pid: int | None, timeout_s: float = 20.0) -> None:
    """Wait for a trial process to be gone (else the dying trial may still write a newer checkpoint)."""
    import psutil

    deadline = time.monotonic() + timeout_s
    while pid and psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        if time.monotonic() > deadline:
            raise AssertionError(f"the trial process {pid} outlived its node by {timeout_s} s")
        time.sleep(0.05)
