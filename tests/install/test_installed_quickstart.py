"""The README's "Install" commands, run as written against `make install DESTDIR=...`.

The build tree is installed with `cmake --install` (what `make install` runs after building) into
a staging DESTDIR, and the README block that follows the `<!-- test: installed quick start -->`
marker is run line by line with bash from a new empty folder: PATH has the staged bin/ first and
Debian's own directories after it (not whatever interpreter is first on the caller's PATH), the
staged dist-packages is on PYTHONPATH (Debian's python3 finds /usr/local's by itself), and
/usr/local in the commands names the staging copy. A backflow-server from the staged bin/ serves
on 127.0.0.1 with a free port, given to the commands as BACKFLOW_SERVER.

Environment: BACKFLOW_BUILD_DIR (the build tree), BACKFLOW_SOURCE_DIR (the repository).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

PREFIX = "/usr/local"
MARKER = "<!-- test: installed quick start -->"
SOURCE = Path(os.environ["BACKFLOW_SOURCE_DIR"])
BUILD = Path(os.environ["BACKFLOW_BUILD_DIR"])
PYTHON_VERSION = "%d.%d" % sys.version_info[:2]


def readme_block() -> list[str]:
    """The commands of the first ```sh block after the marker (comments dropped, \\ joined)."""
    text = (SOURCE / "README.md").read_text()
    assert MARKER in text, "README.md lost its installed quick start"
    block = re.search(r"```sh\n(.*?)```", text[text.index(MARKER):], re.S)
    assert block, "no ```sh block after the marker"
    joined = block.group(1).replace("\\\n", " ")
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in joined.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


@pytest.fixture(scope="module")
def staged():
    with tempfile.TemporaryDirectory(prefix="backflow-install-") as tmp:
        root = Path(tmp) / "root"
        subprocess.run(["cmake", "--install", str(BUILD), "--prefix", PREFIX], check=True,
                       env={**os.environ, "DESTDIR": str(root)}, stdout=subprocess.DEVNULL)
        yield Path(tmp), root


def test_make_install_lays_out_binaries_protos_models_and_the_package(staged):
    _, root = staged
    prefix = root / PREFIX.lstrip("/")
    for binary in ("backflow-server", "backflow", "backflow-load"):
        assert os.access(prefix / "bin" / binary, os.X_OK), binary
    share = prefix / "share" / "backflow"
    for path in ("proto/backflow/v1/service.proto", "proto/grpc/health/v1/health.proto",
                 "models/lenet5.pbtxt", "models/seeds/staged.pbtxt", "examples/train_lenet.py"):
        assert (share / path).is_file(), path
    package = prefix / "lib" / f"python{PYTHON_VERSION}" / "dist-packages" / "backflow"
    assert (package / "v1" / "service_pb2_grpc.py").is_file()
    assert (prefix / "share" / "doc" / "backflow" / "README.md").is_file()


def test_the_readme_quick_start_runs_against_the_installed_tree(staged, tmp_path):
    tmp, root = staged
    prefix = root / PREFIX.lstrip("/")
    commands = readme_block()
    assert commands[0].startswith("make install"), commands
    env = {"PATH": f"{prefix}/bin:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "PYTHONPATH": f"{prefix}/lib/python{PYTHON_VERSION}/dist-packages",
           "PYTHONDONTWRITEBYTECODE": "1", "GOMP_SPINCOUNT": "0",
           # the sanitizer presets' settings (suppressions), for sanitized binaries
           **{k: v for k, v in os.environ.items() if k.endswith("SAN_OPTIONS")}}
    server = subprocess.Popen([f"{prefix}/bin/backflow-server", "--listen=127.0.0.1:0",
                               f"--data-dir={tmp}/data", "--metrics-listen=127.0.0.1:0"], env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        address = None
        for line in server.stderr:
            if match := re.search(r"listening on (127\.0\.0\.1:\d+)", line):
                address = match.group(1)
                break
        assert address, "the installed server did not start"
        env["BACKFLOW_SERVER"] = address
        workdir = tmp_path / "fresh"
        workdir.mkdir()
        outputs = []
        for command in commands[1:]:
            staged_command = command.replace(PREFIX + "/", f"{prefix}/")
            run = subprocess.run(["bash", "-c", staged_command], cwd=workdir, env=env,
                                 capture_output=True, text=True, timeout=240)
            assert run.returncode == 0, f"{command}\n{run.stdout}\n{run.stderr}"
            outputs.append(run.stdout)
        text = "\n".join(outputs)
        assert "SERVING" in text
        assert "f = 1.545644884" in text and "df/dx = 2.059569796" in text
        accuracy = re.search(r"epoch 1: \d+ steps, .* test accuracy ([\d.]+)", text)
        # One epoch on 2,000 images: 0.499 measured (chance is 0.1).
        assert accuracy and float(accuracy.group(1)) > 0.3, text
        assert list(workdir.iterdir()) == [], "the commands left files behind"
        with subprocess.Popen([f"{prefix}/bin/backflow", "models", "list"], env=env, stdout=subprocess.PIPE,
                              text=True) as listing:
            assert "lenet5-example" not in listing.communicate(timeout=60)[0]
    finally:
        server.terminate()
        server.wait(timeout=60)
    assert server.returncode == 0
