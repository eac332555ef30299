"""A real two-node Ray cluster on loopback for the Ray executor tests and the benchmark.

Each node is one ``ray start`` in its own session (process group), so a node is stopped — or killed mid-job — by
signalling exactly its group; nothing is stopped by name and no other Ray on the machine is touched. Ray turns the
address 127.0.0.1 into the machine's network address, so the nodes use two other loopback addresses (127.0.0.2
for the head, 127.0.0.3, ... for the others): every address stays on the loopback interface.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
HEAD_IP = "127.0.0.2"
START_TIMEOUT_S = 90
# Every process of a test cluster (nodes, drivers, the server) runs with the same explicit settings. Ray >= 2.5x turns
# token authentication on by itself when ~/.ray/auth_token exists (a local ray.init() writes one), which would make
# the nodes of a loopback test cluster disagree; the test cluster never leaves the loopback interface.
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class Node:
    ip: str
    pgid: int
    log: Path

    def alive(self) -> bool:
        try:
            os.killpg(self.pgid, 0)
            return True
        except ProcessLookupError:
            return False

    def kill(self, sig: int = signal.SIGKILL) -> None:
        try:
            os.killpg(self.pgid, sig)
        except ProcessLookupError:
            pass


@dataclass
class RayCluster:
    root: Path
    port: int
    nodes: list[Node] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"{HEAD_IP}:{self.port}"

    def _start(self, args: list[str], ip: str, cpus: int) -> Node:
        base = random.randrange(30000, 60000, 200)
        log = self.root / f"node-{ip}.log"
        env = dict(os.environ, **RAY_ENV)
        cmd = [RAY, "start", *args, "--node-ip-address", ip, "--num-cpus", str(cpus), "--num-gpus", "0",
               "--object-store-memory", str(80 * 1024 * 1024), "--min-worker-port", str(base),
               "--max-worker-port", str(base + 150), "--disable-usage-stats"]
        with open(log, "wb") as f:
            p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        node = Node(ip, p.pid, log)
        self.nodes.append(node)
        try:
            rc = p.wait(START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            node.kill()
            raise RuntimeError(f"ray start on {ip} did not finish:\n{log.read_text(errors='replace')[-3000:]}")
        if rc != 0:
            raise RuntimeError(f"ray start on {ip} failed ({rc}):\n{log.read_text(errors='replace')[-3000:]}")
        return node

    def start_head(self, cpus: int = 1) -> Node:
        return self._start(["--head", "--port", str(self.port), "--include-dashboard", "false",
                            "--ray-client-server-port", str(free_port()), "--temp-dir", str(self.root / "t")],
                           HEAD_IP, cpus)

    def add_node(self, cpus: int = 1) -> Node:
        ip = f"127.0.0.{2 + len(self.nodes)}"
        return self._start(["--address", self.address], ip, cpus)

    def wait_nodes(self, n: int, timeout: float = 60.0) -> None:
        """Until the cluster reports ``n`` live nodes (asked through a short-lived driver process)."""
        code = ("import ray,sys; ray.init(address=sys.argv[1], _node_ip_address=sys.argv[2], logging_level='ERROR',"
                " log_to_driver=False); print(sum(1 for x in ray.nodes() if x['Alive']))")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = subprocess.run([sys.executable, "-c", code, self.address, HEAD_IP], capture_output=True, text=True,
                                 timeout=60, env=dict(os.environ, **RAY_ENV))
            if out.returncode == 0 and out.stdout.strip().isdigit() and int(out.stdout.strip()) == n:
                return
            time.sleep(1.0)
        raise RuntimeError(f"the Ray cluster did not reach {n} live nodes")

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.kill(signal.SIGTERM)
        time.sleep(1.0)
        for node in reversed(self.nodes):
            node.kill(signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(n_nodes: int = 2, cpus_per_node: int = 1) -> RayCluster:
    """A head (127.0.0.2) plus ``n_nodes - 1`` more nodes, ``cpus_per_node`` CPUs each. Call ``stop()``."""
    root = Path(tempfile.mkdtemp(prefix="agray", dir="/tmp"))  # short: Ray's socket paths must fit in 107 bytes
    cluster = RayCluster(root, free_port(HEAD_IP))
    try:
        cluster.start_head(cpus_per_node)
        for _ in range(n_nodes - 1):
            cluster.add_node(cpus_per_node)
        cluster.wait_nodes(n_nodes)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def server_args(cluster: RayCluster, *extra: str) -> list[str]:
    """``backend.serve`` flags for a server driving ``cluster`` from its head node (run it with ``RAY_ENV``)."""
    return ["--executor", "ray", "--ray-address", cluster.address, "--ray-progress-host", HEAD_IP, *extra]
