"""The layer check itself: it passes on this tree and fails on an include that goes up."""
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CHECK = HERE / "check_layers.py"
LAYERS = ["core", "ir", "gates"]


def run(root, layers=LAYERS):
    return subprocess.run([sys.executable, str(CHECK), "--root", str(root), "--layers", *layers],
                          capture_output=True, text=True, timeout=60)


def write(root, path, text):
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


@pytest.fixture
def tree(tmp_path):
    write(tmp_path, "engine/core/status.h", "#pragma once\n")
    write(tmp_path, "engine/ir/graph.h", '#include "engine/core/status.h"\n')
    write(tmp_path, "engine/gates/relu.cc", '#include "engine/ir/graph.h"\n')
    write(tmp_path, "server/main.cc", '#include "engine/core/status.h"\n#include "engine/ir/graph.h"\n')
    return tmp_path


def test_a_tree_that_keeps_the_order_passes(tree):
    result = run(tree)
    assert result.returncode == 0, result.stdout
    assert result.stdout.startswith("0 include(s) against the layers: core -> ir -> gates")


def test_an_upward_include_fails_naming_the_file_and_both_layers(tree):
    write(tree, "engine/ir/graph.cc", '// x\n#include "engine/gates/relu.h"\n')
    result = run(tree)
    assert result.returncode == 1
    assert ("engine/ir/graph.cc:2: layer 'ir' includes engine/gates/relu.h from the layer above "
            "it ('gates')") in result.stdout


def test_outside_code_may_not_reach_engine_internals(tree):
    write(tree, "bench/sgemm.cc", '#include "engine/runtime/dnnl_runtime.h"\n')
    result = run(tree)
    assert result.returncode == 1
    assert ("bench/sgemm.cc:1: bench/ includes engine/runtime/dnnl_runtime.h, which is internal "
            "to the engine") in result.stdout


def test_a_folder_that_is_no_layer_fails(tree):
    write(tree, "engine/extras/x.cc", "\n")
    result = run(tree)
    assert result.returncode == 1
    assert "engine/extras/: a folder that is no layer" in result.stdout
