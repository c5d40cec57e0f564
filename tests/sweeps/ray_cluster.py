"""A multi-node Ray cluster on this machine for the node-failure tests (`ray.cluster_utils.Cluster`
with logical resources), and what their Tune callbacks need to kill a node or signal a trial. The
callbacks find the cluster in `CURRENT`, not in an attribute of their own: Tune pickles callbacks, and a
Cluster holds locks."""

from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager

from ray import tune

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
    """Wait for a trial process to be gone (else the dying trial may still write a newer checkpoint);
    an AssertionError if it is still running after `timeout_s`."""
    import psutil

    deadline = time.monotonic() + timeout_s
    while pid and psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        if time.monotonic() > deadline:
            raise AssertionError(f"the trial process {pid} is still running after {timeout_s} s")
        time.sleep(0.05)


class SigtermOnce(tune.Callback):
    """SIGTERM (as a preempted node or `kill <pid>` sends it) to one trial process once a result at step
    >= `at_step` arrives: the pid in `result[pid_field]` (a comma-separated list, e.g. a worker group's
    `worker_pids`, is indexed by `index`). Records what it signalled and the step the run said it stopped at."""

    def __init__(self, at_step: int, pid_field: str = "pid", index: int = 0):
        self.at_step, self.pid_field, self.index = at_step, pid_field, index
        self.signalled: dict | None = None
        self.stopped: dict | None = None

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result.get("stopped_by"):
            self.stopped = {"step": result["step"], "by": result["stopped_by"]}
        elif self.signalled is None and not result.get("done") and result.get("step", 0) >= self.at_step:
            pid = int(str(result[self.pid_field]).split(",")[self.index])
            os.kill(pid, signal.SIGTERM)
            self.signalled = {"step": result["step"], "pid": pid}
