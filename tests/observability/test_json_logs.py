"""--log-format=json on the real binary: every line backflow-server writes, from start-up to its
exit, parses as one JSON object with time, level and msg, and a request's line carries its
request id, method, model, peer, code and duration as keys (Note [JSON logs] in
server/log_format.h). The server listens on 127.0.0.1 and is stopped by PID with SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path

SERVER = os.environ["BACKFLOW_SERVER_BINARY"]
CLI = os.environ["BACKFLOW_CLI_BINARY"]
SOURCE = Path(os.environ["BACKFLOW_SOURCE_DIR"])
WAIT_S = 60.0


def test_every_line_is_a_json_object_and_requests_carry_their_fields() -> None:
    with tempfile.TemporaryDirectory(prefix="backflow-json-logs-") as tmp:
        log_path = Path(tmp) / "server.log"
        with open(log_path, "w") as log:
            server = subprocess.Popen(
                [SERVER, "--listen=127.0.0.1:0", f"--data-dir={tmp}/data", "--metrics-listen=",
                 "--log-format=json", "--log-level=debug"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            address = None
            deadline = time.monotonic() + WAIT_S
            while address is None and time.monotonic() < deadline and server.poll() is None:
                if match := re.search(r"listening on (127\.0\.0\.1:\d+)", log_path.read_text()):
                    address = match.group(1)
                time.sleep(0.05)
            assert address, log_path.read_text()
            evaluated = subprocess.run(
                [CLI, "--server", address, "eval", str(SOURCE / "models/seeds/staged.pbtxt"),
                 "--set", "x=3", "--set", "y=-4"], capture_output=True, text=True,
                timeout=WAIT_S)
            assert evaluated.returncode == 0, evaluated.stderr
            missing = subprocess.run([CLI, "--server", address, "models", "show",
                                      "m-000000000000"], capture_output=True, text=True,
                                     timeout=WAIT_S)
            assert missing.returncode != 0
        finally:
            server.send_signal(signal.SIGTERM)
            code = server.wait(timeout=WAIT_S)
        text = log_path.read_text()
        assert code == 0, text

    lines = [json.loads(line) for line in text.splitlines()]  # each line parses alone
    assert len(lines) > 5
    for line in lines:
        assert {"time", "level", "msg"} <= line.keys(), line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"]), line
        assert line["level"] in {"trace", "debug", "info", "warning", "error", "critical"}, line
    assert any(line["msg"].startswith("listening on 127.0.0.1:") for line in lines)
    assert lines[-1]["msg"] == "bye"
    requests = [line for line in lines if "req" in line]
    evaluate = [line for line in requests if line["method"] == "Evaluate"]
    assert len(evaluate) == 1, requests
    assert evaluate[0]["code"] == "OK" and evaluate[0]["level"] == "debug"
    assert "model" not in evaluate[0]
    assert evaluate[0]["peer"].startswith("ipv4:127.0.0.1:"), evaluate[0]
    assert isinstance(evaluate[0]["ms"], float) and evaluate[0]["ms"] > 0
    not_found = [line for line in requests if line["code"] == "NOT_FOUND"]
    assert len(not_found) == 1, requests
    assert not_found[0]["model"] == "m-000000000000"
    assert not_found[0]["method"] == "GetModel"
    assert not_found[0]["level"] == "warning"
    assert not_found[0]["msg"].startswith(f"req {not_found[0]['req']} GetModel model=m-000000000000")
