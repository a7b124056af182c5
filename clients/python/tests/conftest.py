"""Fixtures: one real backflow-server process for the session, and clients connected to it.

The server binary comes from BACKFLOW_SERVER_BINARY (ctest sets it and runs these tests with the
package pip-installed into a virtual environment: tests/run_in_venv.sh). It listens on 127.0.0.1 with a free port,
which it reports on stderr, and keeps its data in a temporary directory. At the end of the
session it is stopped with SIGTERM and must exit with status 0.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator, Sequence

import pytest

from backflow import Client

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
RPC_TIMEOUT_S = 30.0
_LISTENING = re.compile(r"listening on (127\.0\.0\.1:\d+)")


class ServerProcess:
    """A backflow-server child process whose stderr is collected by a reader thread (so the
    server never blocks on a full pipe)."""

    def __init__(self, binary: str, data_dir: Path, extra_flags: Sequence[str] = ()) -> None:
        self.process = subprocess.Popen(
            [binary, "--listen=127.0.0.1:0", f"--data-dir={data_dir}", "--log-level=info",
             "--metrics-listen=",
             *extra_flags],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        self.log: list[str] = []
        self._lines: "queue.Queue[str | None]" = queue.Queue()
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        self.address = self._wait_for_address()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _wait_for_address(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                self.process.wait(timeout=STOP_TIMEOUT_S)
                raise RuntimeError(f"backflow-server exited with {self.process.returncode} "
                                   f"before listening:\n{''.join(self.log)}")
            if match := _LISTENING.search(line):
                return match.group(1)
        self.process.kill()
        self.process.wait(timeout=STOP_TIMEOUT_S)
        raise RuntimeError(f"backflow-server did not report its port within {START_TIMEOUT_S} s:"
                           f"\n{''.join(self.log)}")

    def stop(self) -> int:
        """SIGTERM, then a bounded wait; SIGKILL if the server does not exit in time."""
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT_S)
            raise RuntimeError(f"backflow-server ignored SIGTERM for {STOP_TIMEOUT_S} s")
        self._reader.join(timeout=STOP_TIMEOUT_S)
        return code


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    binary = os.environ.get("BACKFLOW_SERVER_BINARY")
    if not binary:
        pytest.fail("BACKFLOW_SERVER_BINARY is not set (run through ctest, or export the path "
                    "of backflow-server)")
    process = ServerProcess(binary, tmp_path_factory.mktemp("backflow-data"))
    try:
        yield process
    finally:
        code = process.stop()
        assert code == 0, f"backflow-server exited with {code}:\n{''.join(process.log)}"


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    with Client(server.address, timeout=RPC_TIMEOUT_S) as c:
        yield c


@pytest.fixture(scope="session")
def source_dir() -> Path:
    """The repository root (BACKFLOW_SOURCE_DIR, else found from this file)."""
    return Path(os.environ.get("BACKFLOW_SOURCE_DIR", Path(__file__).resolve().parents[3]))
