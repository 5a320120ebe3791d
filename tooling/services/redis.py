"""redis-server for tests and benchmarks: a standalone server or a 3-master cluster.

>>> server = start_redis(tmp_path)        # redis://127.0.0.1:PORT/0, no persistence
>>> server.kill(); server.start()          # crash and come back on the same port
>>> cluster = start_redis_cluster(tmp_path)
>>> cluster.url                            # redis+cluster://127.0.0.1:p1,127.0.0.1:p2,...

Servers bind 127.0.0.1 only, keep nothing on disk (``--save ''``, no AOF) and
use ``tmpdir`` as their working directory.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

from . import LOOPBACK, ServiceError, free_port, stop_process, wait_for_port

__all__ = ["RedisCluster", "RedisServer", "start_redis", "start_redis_cluster"]

INSTALL_HINT = (
    "redis-server not found; run `bash tooling/install-services.sh` "
    "(or `apt-get install redis-server` / `brew install redis`)"
)


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ServiceError(
            INSTALL_HINT if name == "redis-server" else f"{name} not found; {INSTALL_HINT}"
        )
    return path


class RedisServer:
    """One redis-server process; ``stop()``/``kill()`` then ``start()`` reuses the port."""

    def __init__(
        self,
        tmpdir: Path,
        *,
        port: int | None = None,
        unixsocket: Path | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.tmpdir = Path(tmpdir)
        self.port = port if port is not None else free_port()
        self.unixsocket = unixsocket
        self.extra_args = extra_args
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    @property
    def unix_url(self) -> str | None:
        return None if self.unixsocket is None else f"unix://{self.unixsocket}?db=0"

    def args(self) -> list[str]:
        args = [
            _binary("redis-server"),
            "--bind", LOOPBACK,
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.tmpdir),
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--loglevel", "warning",
            "--logfile", str(self.tmpdir / f"redis-{self.port}.log"),
        ]  # fmt: skip
        if self.unixsocket is not None:
            args += ["--unixsocket", str(self.unixsocket), "--unixsocketperm", "700"]
        return args + list(self.extra_args)

    def start(self) -> RedisServer:
        """Start (again) on the same port; return self once it accepts connections."""
        if self.running:
            return self
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + 10
        while True:
            proc = subprocess.Popen(self.args(), stdout=subprocess.DEVNULL, cwd=self.tmpdir)
            self._proc = proc
            try:
                wait_for_port(self.port, timeout=max(0.5, deadline - time.monotonic()), proc=proc)
                return self
            except ServiceError as err:
                self.stop()
                # a just-killed server's port can linger for a moment: retry until the deadline
                if time.monotonic() >= deadline:
                    raise ServiceError(
                        f"redis-server on port {self.port}: {err}{self._log_tail()}"
                    ) from None
                time.sleep(0.1)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL if it lingers)."""
        if self._proc is not None:
            self.resume()  # a paused server would not act on SIGTERM
            stop_process(self._proc)

    def kill(self) -> None:
        """Kill the server with SIGKILL, as a crash would."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open but nothing answers."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo :meth:`pause` (SIGCONT)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGCONT)

    def _log_tail(self) -> str:
        log = self.tmpdir / f"redis-{self.port}.log"
        try:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        except OSError:
            return ""
        return "\n" + "\n".join(tail) if tail else ""

    def __repr__(self) -> str:
        return f"RedisServer({self.url!r}, running={self.running})"


def start_redis(tmpdir: Path | str, *, unixsocket: bool = False) -> RedisServer:
    """Start a standalone redis-server on a free loopback port (optionally also a unix socket)."""
    tmp = Path(tmpdir)
    sock = tmp / "redis.sock" if unixsocket else None
    return RedisServer(tmp, unixsocket=sock).start()


class RedisCluster:
    """Three cluster-enabled masters (no replicas) on free loopback ports."""

    def __init__(self, nodes: list[RedisServer]) -> None:
        self.nodes = nodes

    @property
    def ports(self) -> list[int]:
        return [n.port for n in self.nodes]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"{LOOPBACK}:{p}" for p in self.ports)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __repr__(self) -> str:
        return f"RedisCluster({self.url!r})"


def _cluster_port() -> int:
    # redis-server refuses cluster ports above 55535 (its bus port defaults to port + 10000)
    for _ in range(100):
        port = free_port()
        if port <= 55535:
            return port
    raise ServiceError("found no free port <= 55535 for a cluster node")


def start_redis_cluster(
    tmpdir: Path | str, *, masters: int = 3, timeout: float = 30.0
) -> RedisCluster:
    """Start ``masters`` nodes, join them with ``redis-cli --cluster create``, wait for state ok."""
    cli = _binary("redis-cli")
    tmp = Path(tmpdir)
    nodes: list[RedisServer] = []
    try:
        for i in range(masters):
            node_dir = tmp / f"node{i}"
            node_dir.mkdir(parents=True, exist_ok=True)
            server = RedisServer(
                node_dir,
                port=_cluster_port(),
                extra_args=(
                    "--cluster-enabled", "yes",
                    "--cluster-port", str(free_port()),
                    "--cluster-config-file", str(node_dir / "nodes.conf"),
                    "--cluster-node-timeout", "5000",
                ),
            )  # fmt: skip
            nodes.append(server.start())
        create = subprocess.run(
            [cli, "--cluster", "create", *(f"{LOOPBACK}:{n.port}" for n in nodes),
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, timeout=timeout, check=False,
        )  # fmt: skip
        if create.returncode != 0:
            out = (create.stdout + create.stderr).decode(errors="replace").strip()[-800:]
            raise ServiceError(f"redis-cli --cluster create failed: {out}")
        deadline = time.monotonic() + timeout
        for node in nodes:
            while True:
                info = subprocess.run(
                    [cli, "-h", LOOPBACK, "-p", str(node.port), "cluster", "info"],
                    capture_output=True, timeout=5, check=False,
                )  # fmt: skip
                if b"cluster_state:ok" in info.stdout:
                    break
                if time.monotonic() > deadline:
                    raise ServiceError(f"cluster node {node.port} never reached cluster_state:ok")
                time.sleep(0.1)
        return RedisCluster(nodes)
    except BaseException:
        for node in nodes:
            node.stop()
        raise
