"""A real, throwaway three-node Redis Cluster for tests: start, SIGKILL a node, restart it.

Each node is a plain ``redis-server`` with ``--cluster-enabled yes`` in a directory of its
own; ``redis-cli --cluster create`` assigns the 16384 slots across the primaries (no
replicas). Each node keeps its ``nodes.conf``, so a node killed and started again on the
same ports rejoins with its identity and its slots (its data is gone: nothing is saved).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from sealgate.bench.processes import free_ports
from sealgate.bench.redis_server import RedisServer, RedisServerMissing

CLUSTER_TIMEOUT = 30.0
# How long the nodes wait before they call a silent peer failed. Redis's default is 15 s;
# tests want an outage (and the cluster's own CLUSTERDOWN) to show within seconds.
NODE_TIMEOUT_MS = 1000


def _command(port: int, *args: str, timeout: float = 0.5) -> bytes | None:
    """One raw RESP command and its reply (one line or one bulk string), so this helper
    does not depend on the client under test; None if the node did not answer."""
    request = f"*{len(args)}\r\n".encode() + b"".join(
        f"${len(arg.encode())}\r\n{arg}\r\n".encode() for arg in args
    )
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
            conn.sendall(request)
            reply = b""
            while True:
                chunk = conn.recv(4096)
                if not chunk:
                    return reply or None
                reply += chunk
                head, separator, body = reply.partition(b"\r\n")
                if not separator:
                    continue
                if not head.startswith(b"$"):
                    return reply  # a simple string, error or integer: one line
                length = int(head[1:])
                if length < 0 or len(body) >= length + 2:
                    return reply  # the whole bulk string (CLUSTER INFO)
    except OSError:
        return None


def _cluster_ok(port: int) -> bool:
    reply = _command(port, "CLUSTER", "INFO")
    return reply is not None and b"cluster_state:ok" in reply


def _node(directory: Path, port: int, bus_port: int) -> RedisServer:
    """One cluster primary: a plain throwaway server with the cluster settings."""
    node = RedisServer(
        directory,
        extra_args=(
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            # The bus port, given explicitly: the default (port + 10000) may be past
            # 65535 or taken, since free ports come from the ephemeral range.
            "--cluster-port", str(bus_port),
            "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
        ),
    )  # fmt: skip
    node.port = port  # known before start: the cluster URL and `create` name it
    return node


class RedisClusterServer:
    """Three throwaway, non-persistent cluster primaries on 127.0.0.1."""

    def __init__(self, directory: Path, nodes: int = 3) -> None:
        self.directory = directory
        ports = free_ports(2 * nodes)  # each node's port and bus port, all distinct
        self._nodes = [
            _node(directory / f"node-{n}", ports[2 * n], ports[2 * n + 1]) for n in range(nodes)
        ]

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self._nodes if node.port is not None]

    @property
    def url(self) -> str:
        """The gateway's cluster URL: every node as a startup node."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def running(self, index: int) -> bool:
        return self._nodes[index].running

    def start(self) -> None:
        binary, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if binary is None or cli is None:
            raise RedisServerMissing(
                "redis-server and redis-cli are not installed (or not on PATH); the "
                "cluster tests need real ones: `make test` installs them"
            )
        try:
            for node in self._nodes:
                node.start()
            created = subprocess.run(
                [
                    cli,
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{port}" for port in self.ports),
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ],
                capture_output=True,
                timeout=CLUSTER_TIMEOUT,
            )
            if created.returncode != 0:
                raise RuntimeError(
                    "redis-cli --cluster create failed: "
                    f"{(created.stdout + created.stderr).decode(errors='replace')[-2000:]}"
                )
            self.wait_ok()
        except BaseException:
            self.stop()
            raise

    def wait_ok(self, timeout: float = CLUSTER_TIMEOUT) -> None:
        """Until every running node reports ``cluster_state:ok``."""
        deadline = time.monotonic() + timeout
        while not all(_cluster_ok(port) for port in self._running_ports()):
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")
            time.sleep(0.05)

    def wait_down(self, timeout: float = CLUSTER_TIMEOUT) -> None:
        """Until no running node reports ``cluster_state:ok`` (a primary is gone)."""
        deadline = time.monotonic() + timeout
        while any(_cluster_ok(port) for port in self._running_ports()):
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster still reports cluster_state:ok")
            time.sleep(0.05)

    def _running_ports(self) -> list[int]:
        return [node.port for node in self._nodes if node.running and node.port is not None]

    def kill(self, index: int) -> None:
        """SIGKILL one node: no shutdown, sockets reset, as in a crash."""
        self._nodes[index].kill()

    def restart(self, index: int) -> None:
        """Start a killed node again on its ports; it rejoins from its nodes.conf."""
        self._nodes[index].restart()

    def stop(self) -> None:
        for node in self._nodes:
            node.stop()
