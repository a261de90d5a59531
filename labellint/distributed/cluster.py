"""Reaching the cluster, and checking each of its nodes before a run's results are taken."""

from __future__ import annotations

import logging
import os
import socket
import sys
from contextlib import contextmanager

from labellint.errors import LabellintError

INSTALL_HINT = "pip install 'labellint-coco[ray]'"
SHARED_FS = ("images must be readable at the same path on every node (a shared file system mounted "
             "alike everywhere; see docs/scale.md)")
NO_CLIENT = ("run labellint on a node of the cluster with its GCS address (HOST:PORT, as `ray start "
             "--head` prints it), or submit it with `ray job submit -- labellint check ... --ray auto`")
CONNECT_TIMEOUT_S = 10
PROBE_TIMEOUT_S = 120

_started_here = False  # this process started its own local Ray instance (--ray auto without RAY_ADDRESS)


def ray_module():
    try:
        import ray
    except ImportError:
        raise LabellintError(f"--ray needs Ray: {INSTALL_HINT}") from None
    return ray


def connect(address: str):
    """Ray, connected: ``auto`` to $RAY_ADDRESS when set, else a local instance started here; an
    address to that cluster. A process already connected (a program that runs labellint inside
    its own Ray job) keeps its connection. An address that does not answer is a one-line error."""
    global _started_here
    ray = ray_module()
    target = address
    if address == "auto":
        target = os.environ.get("RAY_ADDRESS", "").strip() or None
    if target is not None and target.startswith("ray://"):
        raise LabellintError(f"--ray {target}: Ray Client addresses (ray://) are not supported; {NO_CLIENT}")
    if ray.is_initialized() and (address == "auto" or _connected_to(ray) == target):
        _quiet()
        return ray
    if target is not None and target != "auto":
        _reachable(target)
    if ray.is_initialized():  # connected elsewhere: this run asked for another cluster
        ray.shutdown()
    # the driver's Ray core logs to stderr; labellint says what went wrong in its own one line
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    try:
        with _stderr_silenced():  # Ray's core says at start which log level it took from the environment
            ray.init(address=target, logging_level=logging.ERROR, log_to_driver=False,
                     include_dashboard=False if target is None else None, configure_logging=True)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError, ... for a bad address
        raise LabellintError(f"cannot connect to the Ray cluster at {target or 'a local instance'}: "
                             f"{_first_line(exc)}") from None
    _started_here = target is None
    _quiet()
    return ray


@contextmanager
def _stderr_silenced():
    """File descriptor 2 to /dev/null for a moment (Ray's C++ core writes there, not to sys.stderr)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (a test runner's capture): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _connected_to(ray) -> str | None:
    try:
        return ray.get_runtime_context().gcs_address
    except Exception:  # an older Ray, a client connection: take it as another
        return None


def _reachable(address: str) -> None:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_S):
            return
    except ValueError:
        raise LabellintError(f"--ray {address}: not an address (use HOST:PORT, or auto)") from None
    except OSError as exc:
        raise LabellintError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc} "
                             "(is `ray start --head` running there?)") from None


def _quiet() -> None:
    """Ray Data's own progress bars and log lines off: the driver shows one bar of its own."""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.verbose_stats_logs = False
    for name in ("ray.data", "ray"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def working_nodes(ray) -> list[dict]:
    """The alive nodes that can run work (a head with no CPU and no GPU takes none)."""
    return [n for n in ray.nodes() if n.get("Alive") and (n["Resources"].get("CPU", 0) > 0
                                                            or n["Resources"].get("GPU", 0) > 0)]


def node_name(node: dict) -> str:
    return f"{node.get('NodeManagerAddress', '?')} ({node['NodeID'][:8]})"


class NodeCheck:
    """Every working node sees the image root and the sample images at the driver's paths and
    runs the driver's labellint. Started before the pipeline, so the probes run while the
    backbone's actors start, and awaited (:meth:`wait`) before the first result is taken: a node
    that fails is a one-line error naming it, and nothing of the run is stored."""

    def __init__(self, ray, root: str, samples: list[str]):
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from labellint.distributed import stages

        self.ray = ray
        self.nodes = working_nodes(ray)
        if not self.nodes:
            raise LabellintError("the Ray cluster has no node with a CPU or a GPU to work on")
        probe = ray.remote(num_cpus=0, max_retries=1)(stages.probe)
        digest = stages.code_digest()
        self.refs = [probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                     .remote(root, samples, digest) for n in self.nodes]
        self.passed = False

    def wait(self) -> list[dict]:
        """The checked nodes, once every one has passed (the probes' answers, waited for once)."""
        if self.passed:
            return self.nodes
        ray = self.ray
        try:
            answers = ray.get(self.refs, timeout=PROBE_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            raise LabellintError(f"the Ray cluster's nodes did not answer within {PROBE_TIMEOUT_S} s") from None
        except ray.exceptions.RayError as exc:
            raise LabellintError(f"a Ray node could not run labellint: {_first_line(exc)} "
                                 f"(install {INSTALL_HINT.split(' ', 2)[2]} on every node)") from None
        for node, why in zip(self.nodes, answers):
            if why is not None:
                raise LabellintError(f"Ray node {node_name(node)}: {why}; {SHARED_FS}")
        self.passed = True
        return self.nodes
