"""A real Prometheus (Debian's `prometheus` package) scrapes a live backflow-server.

The server and Prometheus listen on 127.0.0.1 only; the test drives the server with the
`backflow` CLI (one Train stream, several Evaluate calls), then asks Prometheus' HTTP API for the
counters (they must equal what the test sent) and for histogram_quantile over
backflow_request_duration_seconds_bucket (it must equal the quantile computed from the server's
own exposition, the same interpolation over the same buckets). `promtool check metrics` must pass
on the exposition. Both processes are stopped by PID with SIGTERM and must exit cleanly.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

SERVER = os.environ["BACKFLOW_SERVER_BINARY"]
CLI = os.environ["BACKFLOW_CLI_BINARY"]
SOURCE = Path(os.environ["BACKFLOW_SOURCE_DIR"])
WAIT_S = 60.0
EVALUATIONS = 5
STEPS = 10
BATCH = 64


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


class Process:
    """A child whose stderr and stdout are collected by a thread (no pipe fills up)."""

    def __init__(self, argv: list[str], **kwargs) -> None:
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, **kwargs)
        self.log: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.log.append(line)

    def wait_for(self, pattern: str) -> re.Match:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            for line in list(self.log):
                if match := re.search(pattern, line):
                    return match
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r}:\n{''.join(self.log)}")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=WAIT_S)
            raise


def samples(text: str, name: str, **labels: str) -> dict[str, float]:
    """The samples of `name` whose labels include `labels`, keyed by their label text."""
    found = {}
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        series, value = line.rsplit(" ", 1)
        if all(f'{key}="{want}"' in series for key, want in labels.items()):
            found[series[len(name):]] = float(value)
    return found


def quantile_from_buckets(q: float, buckets: dict[str, float]) -> float:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket holding rank q."""
    bounds = sorted((float("inf") if le == "+Inf" else float(le), count)
                    for le, count in ((re.search(r'le="([^"]+)"', key).group(1), value)
                                      for key, value in buckets.items()))
    rank = q * bounds[-1][1]
    previous_bound, previous_count = 0.0, 0.0
    for bound, count in bounds:
        if count >= rank:
            if bound == float("inf"):
                return previous_bound
            return previous_bound + (bound - previous_bound) * (rank - previous_count) / (
                count - previous_count)
        previous_bound, previous_count = bound, count
    raise AssertionError("no bucket")


class Prometheus:
    def __init__(self, workdir: Path, target: str) -> None:
        config = workdir / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                          "scrape_configs:\n  - job_name: backflow\n    static_configs:\n"
                          f"      - targets: ['{target}']\n")
        self.port = free_port()
        self.process = Process(["prometheus", f"--config.file={config}",
                                f"--storage.tsdb.path={workdir / 'tsdb'}",
                                f"--web.listen-address=127.0.0.1:{self.port}"])

    def query(self, expression: str) -> list:
        url = (f"http://127.0.0.1:{self.port}/api/v1/query?"
               + urllib.parse.urlencode({"query": expression}))
        answer = json.loads(get(url))
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def wait_for_value(self, expression: str, want: float) -> float:
        """Polls until the query answers `want` (the scrapes after the requests have landed)."""
        deadline = time.monotonic() + WAIT_S
        last = None
        while time.monotonic() < deadline:
            try:
                result = self.query(expression)
                if result:
                    last = float(result[0]["value"][1])
                    if last == want:
                        return last
            except OSError:
                pass  # not listening yet
            time.sleep(0.5)
        raise AssertionError(f"{expression} = {last}, want {want}:\n{''.join(self.process.log)}")


@pytest.fixture()
def workdir():
    with tempfile.TemporaryDirectory(prefix="backflow-prometheus-") as path:
        yield Path(path)


def test_prometheus_scrapes_counters_and_histograms(workdir: Path) -> None:
    server = Process([SERVER, "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0",
                      f"--data-dir={workdir / 'data'}"])
    prometheus = None
    try:
        address = server.wait_for(r"listening on (127\.0\.0\.1:\d+)").group(1)
        metrics = server.wait_for(r"metrics on http://(127\.0\.0\.1:\d+)/metrics").group(1)
        prometheus = Prometheus(workdir, metrics)

        trained = subprocess.run(
            [CLI, "--server", address, "train", "--model", str(SOURCE / "models/mlp_tanh.pbtxt"),
             "--data", "fashion-mnist", "--limit", str(STEPS * BATCH), "--batch", str(BATCH),
             "--test-limit", "0", "--keep", "--json"],
            capture_output=True, text=True, timeout=WAIT_S, check=True)
        model = json.loads(trained.stdout.strip().splitlines()[-1])["model_id"]
        for _ in range(EVALUATIONS):
            subprocess.run([CLI, "--server", address, "eval",
                            str(SOURCE / "models/seeds/staged.pbtxt"), "--set", "x=3", "--set",
                            "y=-4"], capture_output=True, timeout=WAIT_S, check=True)

        text = get(f"http://{metrics}/metrics")
        checked = subprocess.run(["promtool", "check", "metrics"], input=text,
                                 capture_output=True, text=True, timeout=WAIT_S)
        assert checked.returncode == 0, checked.stdout + checked.stderr

        evaluate = '{method="Evaluate",code="OK"}'
        prometheus.wait_for_value(f"backflow_requests_total{evaluate}", EVALUATIONS)
        prometheus.wait_for_value(f'backflow_train_steps_total{{model="{model}"}}', STEPS)
        prometheus.wait_for_value(f'backflow_trained_samples_total{{model="{model}"}}',
                                  STEPS * BATCH)
        prometheus.wait_for_value(f'backflow_requests_total{{method="Train",code="OK"}}', 1)

        buckets = samples(text, "backflow_request_duration_seconds_bucket", method="Evaluate",
                          code="OK")
        want = quantile_from_buckets(0.9, buckets)
        got = prometheus.query('histogram_quantile(0.9, sum by (le) '
                               '(backflow_request_duration_seconds_bucket{method="Evaluate"}))')
        assert got, "histogram_quantile answered no series"
        assert float(got[0]["value"][1]) == pytest.approx(want, rel=1e-9)
        assert 0 < want < 10
    finally:
        if prometheus is not None:
            assert prometheus.process.stop() == 0, "".join(prometheus.process.log)
        code = server.stop()
        assert code == 0, "".join(server.log)
