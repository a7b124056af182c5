"""The package as users get it: importable on Python 3.9+, with its stubs and its metadata."""

from __future__ import annotations

import ast
import importlib.metadata
import re
from pathlib import Path

import backflow

_SOURCES = sorted((Path(__file__).resolve().parents[1] / "backflow").glob("*.py"))


def test_the_sources_parse_as_python_3_9():
    assert len(_SOURCES) >= 8
    for source in _SOURCES:
        ast.parse(source.read_text(), str(source), feature_version=(3, 9))


_TYPE_NODES = (ast.Name, ast.Subscript, ast.Attribute, ast.Constant)


def _runtime_unions(tree: ast.Module) -> list[int]:
    """Lines where `X | Y` of types is evaluated at import time (a TypeError before 3.10)."""
    lines = []
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            for inner in ast.walk(node.value):
                if (isinstance(inner, ast.BinOp) and isinstance(inner.op, ast.BitOr)
                        and isinstance(inner.left, _TYPE_NODES)
                        and isinstance(inner.right, _TYPE_NODES)):
                    lines.append(inner.lineno)
    return lines


def test_no_type_union_is_evaluated_at_import():
    for source in _SOURCES:
        assert _runtime_unions(ast.parse(source.read_text())) == [], source
    assert _runtime_unions(ast.parse("Arrays = dict[str, int] | None\n")) == [1]


def test_the_installed_package_carries_its_stubs_and_metadata():
    package = Path(backflow.__file__).parent
    for stub in ("v1/service_pb2.py", "v1/service_pb2_grpc.py", "v1/tensor_pb2.pyi",
                 "_health/health_pb2_grpc.py"):
        assert (package / stub).is_file(), stub
    from backflow.v1 import service_pb2_grpc
    assert service_pb2_grpc.BackflowStub.__name__ == "BackflowStub"
    metadata = importlib.metadata.metadata("backflow")
    assert metadata["Requires-Python"] == ">=3.9"
    requires = importlib.metadata.requires("backflow")
    names = {re.match(r"[A-Za-z0-9_.-]+", r).group(0) for r in requires if "extra" not in r}
    assert names == {"grpcio", "protobuf", "numpy"}
