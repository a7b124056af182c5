"""models/resnet_fmnist.pbtxt and models/transformer_repeat.pbtxt are what
scripts/generate-models.py writes with the GraphBuilder: regenerating them changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from backflow import load_graph
from backflow.v1 import tensor_pb2

SOURCE_DIR = Path(os.environ.get("BACKFLOW_SOURCE_DIR",
                                 Path(__file__).resolve().parents[3]))
GENERATED = ("resnet_fmnist.pbtxt", "transformer_repeat.pbtxt")


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models")
    subprocess.run([sys.executable, str(SOURCE_DIR / "scripts" / "generate-models.py"),
                    "--out", str(out)], check=True, env=dict(os.environ))
    return out


@pytest.mark.parametrize("name", GENERATED)
def test_committed_model_is_the_generated_one(regenerated: Path, name: str) -> None:
    committed = (SOURCE_DIR / "models" / name).read_text(encoding="utf-8")
    assert (regenerated / name).read_text(encoding="utf-8") == committed, (
        f"models/{name} differs from scripts/generate-models.py's output: regenerate it")


def test_generated_models_declare_int64_placeholders() -> None:
    resnet = load_graph(str(SOURCE_DIR / "models" / "resnet_fmnist.pbtxt"))
    transformer = load_graph(str(SOURCE_DIR / "models" / "transformer_repeat.pbtxt"))
    assert {p.name: p.dtype for p in transformer.placeholders} == {
        "ids": tensor_pb2.INT64, "labels": tensor_pb2.INT64}
    assert {p.name: p.dtype for p in resnet.placeholders} == {
        "images": tensor_pb2.DATA_TYPE_UNSPECIFIED, "labels": tensor_pb2.INT64}
    assert len(resnet.states) == 12  # six batch norms' running mean and variance
