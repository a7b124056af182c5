"""The status page (GET / on --metrics-listen) in headless Chromium (Debian's `chromium`).

A live backflow-server on 127.0.0.1 trains a model through the `backflow` CLI; Chromium, driven
over the DevTools protocol (python3-websocket), opens the page, and the test reads what the page
drew: the models' table must show the step, samples and last loss GetModel reports, the loss
curve's SVG must carry every point of the model's history (the same steps and losses, bit for
bit), a hostile model name must appear as text and never as markup, and the request table must
list the calls made. Then the model trains on while the page stays open: the page must redraw
itself with the new step and the longer curve without being reloaded. A screenshot goes to
$BACKFLOW_ARTIFACTS/status_page.png (under the build directory). Every process is stopped by PID.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import websocket

from test_prometheus import Process

SERVER = os.environ["BACKFLOW_SERVER_BINARY"]
CLI = os.environ["BACKFLOW_CLI_BINARY"]
SOURCE = Path(os.environ["BACKFLOW_SOURCE_DIR"])
ARTIFACTS = Path(os.environ.get("BACKFLOW_ARTIFACTS", tempfile.gettempdir()))
WAIT_S = 60.0
BATCH = 32
HOSTILE_NAME = "</script><b>bold</b>"

# What the page shows, read in the page: the model rows' cells, each curve's data attributes and
# polyline, the request rows, and a marker that only survives if the page is never reloaded.
READ_PAGE = """(() => {
  const rows = {};
  for (const tr of document.querySelectorAll('#models tbody tr')) {
    const cells = {};
    for (const td of tr.querySelectorAll('td')) cells[td.dataset.field] = td.textContent;
    rows[tr.dataset.model] = cells;
  }
  const curves = {};
  for (const svg of document.querySelectorAll('#curves svg')) {
    const line = svg.querySelector('polyline');
    curves[svg.dataset.model] = {steps: svg.dataset.steps, losses: svg.dataset.losses,
                                 drawn: line ? line.getAttribute('points').split(' ').length : 0};
  }
  const methods = {};
  for (const tr of document.querySelectorAll('#methods tbody tr')) {
    methods[tr.dataset.method] = tr.querySelector('[data-field=requests]').textContent;
  }
  return JSON.stringify({rows, curves, methods, marker: window.testMarker || null,
                         bold: document.querySelectorAll('b').length});
})()"""


def cli(address: str, *args: str) -> str:
    done = subprocess.run([CLI, "--server", address, *args], capture_output=True, text=True,
                          timeout=WAIT_S)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def train(address: str, steps: int, *model: str) -> str:
    """Trains `steps` batches of mlp_tanh (a new model, or --model-id ID); returns the id."""
    source = model or ("--model", str(SOURCE / "models/mlp_tanh.pbtxt"))
    out = cli(address, "train", *source, "--data", "fashion-mnist", "--limit",
              str(steps * BATCH), "--batch", str(BATCH), "--test-limit", "0", "--keep", "--json")
    return json.loads(out.strip().splitlines()[-1])["model_id"]


class Browser:
    """Headless Chromium with one page, spoken to over the DevTools protocol."""

    def __init__(self, workdir: Path) -> None:
        profile = workdir / "chromium"
        self.process = Process([
            shutil.which("chromium") or "chromium", "--headless", "--no-sandbox",
            "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--hide-scrollbars", "--window-size=1280,900", "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            # Tests talk to 127.0.0.1 only: no name resolves to anything else, and none of the
            # browser's own services (updates, sync, safe browsing, crash reports) starts.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-default-apps", "--disable-breakpad", "--disable-domain-reliability",
            "--disable-client-side-phishing-detection", "--no-default-browser-check",
            "--no-proxy-server", "about:blank"])
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + WAIT_S
        while not port_file.exists() or not port_file.read_text().strip():
            assert self.process.process.poll() is None, "".join(self.process.log)
            assert time.monotonic() < deadline, "Chromium never opened its DevTools port"
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            pages = [t for t in json.load(answer) if t["type"] == "page"]
        self.socket = websocket.create_connection(pages[0]["webSocketDebuggerUrl"],
                                                  timeout=WAIT_S, suppress_origin=True)
        self.next_id = 0

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                assert "error" not in message, message
                return message["result"]

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def wait_for(self, expression: str, describe: str):
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"the page never showed {describe}")

    def close(self) -> None:
        try:
            self.socket.close()
        finally:
            self.process.process.send_signal(signal.SIGTERM)
            try:
                self.process.process.wait(timeout=WAIT_S)
            except subprocess.TimeoutExpired:
                self.process.process.kill()
                self.process.process.wait(timeout=WAIT_S)


def read(browser: Browser) -> dict:
    return json.loads(browser.evaluate(READ_PAGE))


def expect_model(page: dict, address: str, model: str) -> dict:
    """The model's row and curve equal what GetModel (models show --json --history) says."""
    info = json.loads(cli(address, "models", "show", model, "--json", "--history"))
    statistics = info["statistics"]
    row = page["rows"][model]
    assert row["step"] == str(info["step"])
    assert row["samples"] == f"{statistics['samples']:,}"
    assert float(row["last_loss"]) == pytest.approx(statistics["last_loss"], rel=1e-5)
    assert row["state"] == "training"
    points = statistics["history"]["points"]
    curve = page["curves"][model]
    assert [int(s) for s in curve["steps"].split(",")] == [p["step"] for p in points]
    assert [float(v) for v in curve["losses"].split(",")] == [p["loss"] for p in points]
    assert curve["drawn"] == len(points)
    return info


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_status_page_draws_the_models_and_their_curves_live() -> None:
    with tempfile.TemporaryDirectory(prefix="backflow-status-page-") as path:
        workdir = Path(path)
        server = Process([SERVER, "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0",
                          f"--data-dir={workdir / 'data'}"])
        browser = None
        try:
            address = server.wait_for(r"listening on (127\.0\.0\.1:\d+)").group(1)
            http = server.wait_for(r"status page on (http://127\.0\.0\.1:\d+)/").group(1)
            model = train(address, 20)
            hostile = cli(address, "models", "create", str(SOURCE / "models/lenet5.pbtxt"),
                          "--name", HOSTILE_NAME).strip()

            browser = Browser(workdir)
            browser.call("Emulation.setDeviceMetricsOverride", width=1280, height=900,
                         deviceScaleFactor=1, mobile=False)
            browser.call("Page.navigate", url=http + "/")
            browser.wait_for("document.body && document.body.dataset.drawn", "its first draw")
            page = read(browser)
            expect_model(page, address, model)
            assert page["rows"][hostile]["name"] == HOSTILE_NAME
            assert page["rows"][hostile]["state"] == "ready"
            assert hostile not in page["curves"], "an untrained model has no curve"
            assert page["bold"] == 0, "a model name became markup"
            assert page["methods"]["Train"] == "1"
            assert page["methods"]["CreateModel"] == "2"

            # The page stays open while the model trains on: it must redraw by itself.
            browser.evaluate("window.testMarker = 'not reloaded'")
            train(address, 10, "--model-id", model)
            browser.wait_for(
                f"document.querySelector('tr[data-model=\"{model}\"] [data-field=step]')"
                ".textContent === '30'", "step 30")
            page = read(browser)
            assert page["marker"] == "not reloaded"
            info = expect_model(page, address, model)
            assert len(info["statistics"]["history"]["points"]) == 30

            shot = base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"])
            assert png_size(shot) == (1280, 900)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            (ARTIFACTS / "status_page.png").write_bytes(shot)
        finally:
            if browser is not None:
                browser.close()
            code = server.stop()
            assert code == 0, "".join(server.log)
