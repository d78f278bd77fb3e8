"""Real multi-process Redis topologies on loopback: a 6-node Redis Cluster and a Sentinel group.

Used by the test suite (cluster and failover tests) and by `gmsd bench --cluster`.

Every process listens on a free loopback port, keeps nothing on disk that outlives its tmp
directory (no RDB, no AOF) and is stopped by `stop()`, which the fixtures call even when a test
fails. Nothing here knows about gmsd: these are the engines gmsd must run on unchanged.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import redis
import redis.cluster

START_TIMEOUT = 15.0  # seconds for a process to answer PING, or a cluster to report ok


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback TCP ports that nothing listens on right now.

    Cluster nodes also listen on port + 10000 (the cluster bus), so ports are chosen below
    55535 and both numbers must be free.
    """
    ports: list[int] = []
    sockets: list[socket.socket] = []
    try:
        while len(ports) < count:
            sock = socket.socket()
            sockets.append(sock)
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
            if port < 55535 and port + 10000 not in ports and _port_is_free(port + 10000):
                ports.append(port)
    finally:
        for sock in sockets:
            sock.close()
    return ports


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class MissingRedisBinaries(RuntimeError):
    """`redis-server` or `redis-cli` is not on PATH."""


def require_redis_binaries() -> None:
    """Raise MissingRedisBinaries when `redis-server` / `redis-cli` are missing."""
    missing = [name for name in ("redis-server", "redis-cli") if shutil.which(name) is None]
    if missing:
        raise MissingRedisBinaries(f"{', '.join(missing)} not on PATH (apt-get install -y redis-server redis-tools)")


def wait_until(condition: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> None:
    """Poll `condition` every 50 ms; raise naming `what` if it is still false after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError, OSError):
            if condition():
                return
        time.sleep(0.05)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class RedisProcess:
    """One `redis-server` (data node or sentinel) started from a config file in `directory`."""

    port: int
    directory: Path
    config: list[str]
    sentinel: bool = False
    password: str | None = None  # what `client()` authenticates with
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Write the config file, start the process and wait until it answers PING."""
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / ("sentinel.conf" if self.sentinel else "redis.conf")
        lines = [f"port {self.port}", "bind 127.0.0.1", f"dir {self.directory}", *self.config]
        conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        args = ["redis-server", str(conf)] + (["--sentinel"] if self.sentinel else [])
        log = (self.directory / "log.txt").open("ab")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_until(lambda: bool(self.client().ping()), f"redis-server on port {self.port}")

    def client(self) -> redis.Redis:
        """A fresh sync client for this process (callers close it)."""
        return redis.Redis(port=self.port, password=self.password, socket_timeout=2, socket_connect_timeout=0.5)

    def kill(self) -> None:
        """SIGKILL: a crash, no chance to hand over or flush anything."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
            self.process = None

    def stop(self) -> None:
        """Terminate and reap the process (kill it if it does not exit within 10 s)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None


def _stop_all(processes: Sequence[RedisProcess]) -> None:
    for process in processes:
        process.stop()


# --- Redis Cluster ----------------------------------------------------------------------------

_CLUSTER_NODE_CONFIG = [
    "cluster-enabled yes",
    "cluster-config-file nodes.conf",
    'save ""',
    "appendonly no",
    # A replica may take over even if it lost contact with its primary a while ago (tests only).
    "cluster-replica-validity-factor 0",
]


@dataclass
class LocalCluster:
    """Six `redis-server` nodes on loopback, joined as 3 primaries with one replica each."""

    directory: Path
    node_timeout_ms: int = 5000
    nodes: list[RedisProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The gmsd URL naming every node as a seed."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    @property
    def startup_nodes(self) -> list[redis.cluster.ClusterNode]:
        return [redis.cluster.ClusterNode("127.0.0.1", node.port) for node in self.nodes]  # type: ignore[no-untyped-call]

    def start(self) -> None:
        """Start the nodes, create the cluster and wait until every node reports `cluster_state:ok`."""
        require_redis_binaries()
        config = [*_CLUSTER_NODE_CONFIG, f"cluster-node-timeout {self.node_timeout_ms}"]
        self.nodes = [
            RedisProcess(port, self.directory / str(port), config) for port in free_ports(6)
        ]
        try:
            for node in self.nodes:
                node.start()
            subprocess.run(
                ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in self.nodes),
                 "--cluster-replicas", "1", "--cluster-yes"],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60,
            )
            self.wait_healthy(self.nodes)
        except BaseException:
            self.stop()
            raise

    def wait_healthy(self, nodes: Sequence[RedisProcess], timeout: float = START_TIMEOUT) -> None:
        """Wait until each of `nodes` says `cluster_state:ok` and sees 3 primaries with a replica each."""

        def healthy() -> bool:
            for node in nodes:
                with node.client() as client:
                    info = client.execute_command("CLUSTER", "INFO")
                    text = info.decode() if isinstance(info, bytes) else str(info)
                    if "cluster_state:ok" not in text:
                        return False
                    if self._roles(client) != {"master": 3, "slave": 3}:
                        return False
            return True

        wait_until(healthy, "cluster_state:ok on every node", timeout)

    @staticmethod
    def _roles(client: redis.Redis) -> dict[str, int]:
        raw = client.execute_command("CLUSTER", "NODES")  # type: ignore[no-untyped-call]
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        counts = {"master": 0, "slave": 0}
        for line in text.splitlines():
            flags = line.split()[2].split(",")
            if "fail" in flags or "fail?" in flags:
                continue
            for role in counts:
                if role in flags:
                    counts[role] += 1
        return counts

    def primaries(self) -> list[RedisProcess]:
        """The running nodes that are primaries right now."""
        found = []
        for node in self.nodes:
            if node.process is None:
                continue
            with node.client() as client:
                if client.info("replication")["role"] == "master":
                    found.append(node)
        return found

    def flush(self) -> None:
        """FLUSHALL on every primary (replicas follow)."""
        for node in self.primaries():
            with node.client() as client:
                client.flushall()

    def wait_replicated(self) -> None:
        """Wait until every replica has acknowledged everything its primary wrote."""

        def caught_up() -> bool:
            for node in self.primaries():
                with node.client() as client:
                    info = client.info("replication")
                    offsets = [info[key]["offset"] for key in info if key.startswith("slave")]
                    if not offsets or min(offsets) < info["master_repl_offset"]:
                        return False
            return True

        wait_until(caught_up, "replicas to catch up with their primaries")

    def stop(self) -> None:
        """Stop every node."""
        _stop_all(self.nodes)


# --- Redis Sentinel ---------------------------------------------------------------------------

@dataclass
class LocalSentinel:
    """One primary, one replica and three sentinels (quorum 2) on loopback.

    With `password`, the data nodes require it; with `sentinel_password`, the sentinels require
    theirs (as operator charts set them up).
    """

    directory: Path
    master_name: str = "mymaster"
    password: str | None = None
    sentinel_password: str | None = None
    data: list[RedisProcess] = field(default_factory=list)
    sentinels: list[RedisProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The gmsd URL naming every sentinel (with the credentials, percent-encoded)."""
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        query = f"?sentinel_password={quote(self.sentinel_password, safe='')}" if self.sentinel_password else ""
        return f"redis+sentinel://{auth}{hosts}/{self.master_name}/0{query}"

    def start(self) -> None:
        """Start primary and replica, then the sentinels; wait until they all see both."""
        require_redis_binaries()
        primary_port, replica_port, *sentinel_ports = free_ports(5)
        plain = ['save ""', "appendonly no"]
        sentinel_conf = [
            f"sentinel monitor {self.master_name} 127.0.0.1 {primary_port} 2",
            f"sentinel down-after-milliseconds {self.master_name} 1000",
            f"sentinel failover-timeout {self.master_name} 5000",
            f"sentinel parallel-syncs {self.master_name} 1",
        ]
        if self.password:
            plain += [f'requirepass "{self.password}"', f'masterauth "{self.password}"']
            sentinel_conf.append(f'sentinel auth-pass {self.master_name} "{self.password}"')
        if self.sentinel_password:
            sentinel_conf.append(f'requirepass "{self.sentinel_password}"')
        self.data = [
            RedisProcess(primary_port, self.directory / "primary", plain, password=self.password),
            RedisProcess(replica_port, self.directory / "replica",
                         [*plain, f"replicaof 127.0.0.1 {primary_port}"], password=self.password),
        ]
        self.sentinels = [
            RedisProcess(port, self.directory / f"sentinel-{port}", sentinel_conf, sentinel=True,
                         password=self.sentinel_password)
            for port in sentinel_ports
        ]
        try:
            for process in [*self.data, *self.sentinels]:
                process.start()
            wait_until(self._settled, "sentinels to see the replica and each other")
        except BaseException:
            self.stop()
            raise

    def _settled(self) -> bool:
        for sentinel in self.sentinels:
            with sentinel.client() as client:
                state = client.sentinel_master(self.master_name)
                if state["num-slaves"] < 1 or state["num-other-sentinels"] < 2:
                    return False
        with self.data[1].client() as replica:
            return bool(replica.info("replication")["master_link_status"] == "up")

    def master_port(self) -> int:
        """The primary's port as the first sentinel reports it."""
        with self.sentinels[0].client() as client:
            _host, port = client.sentinel_get_master_addr_by_name(self.master_name)
        return int(port)

    def stop(self) -> None:
        """Stop sentinels first (so they do not fail over while the data nodes go down)."""
        _stop_all([*self.sentinels, *self.data])
