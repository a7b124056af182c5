"""Builds the backflow package with its generated gRPC stubs (metadata: pyproject.toml).

The stubs come from the .proto files of the repository's proto/ directory (or BACKFLOW_PROTO_DIR)
through protoc and grpc_python_plugin (Debian: protobuf-compiler, protobuf-compiler-grpc) or,
where those are missing, grpcio-tools' bundled protoc. They are written into the build tree, as
backflow/v1/*_pb2*.py, backflow/_health/health_pb2*.py (grpc.health.v1 moved out of the
`grpc` package path, where it would shadow grpcio's own; its wire names are unchanged) and
backflow/inference/*_pb2*.py (the Open Inference Protocol, moved under backflow/ the same way),
exactly as clients/python/CMakeLists.txt lays them out for the build tree.
"""

import glob
import os
import shutil
import subprocess
import sys
import tempfile

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


def _proto_root() -> str:
    root = os.environ.get("BACKFLOW_PROTO_DIR") or os.path.join(HERE, "..", "..", "proto")
    if not os.path.isfile(os.path.join(root, "backflow", "v1", "service.proto")):
        sys.exit(f"backflow: no backflow/v1/service.proto under {os.path.abspath(root)}; build "
                 "from the repository's clients/python, or set BACKFLOW_PROTO_DIR to its proto/")
    return os.path.abspath(root)


def _protoc() -> list:
    """The protoc command line that takes --grpc_out, from Debian's tools or grpcio-tools."""
    protoc, plugin = shutil.which("protoc"), shutil.which("grpc_python_plugin")
    if protoc and plugin:
        return [protoc, f"--plugin=protoc-gen-grpc={plugin}"]
    try:
        import grpc_tools  # noqa: F401  (grpcio-tools: protoc and the plugin in one module)
    except ImportError:
        sys.exit("backflow: generating the gRPC stubs needs protoc and grpc_python_plugin "
                 "(Debian: apt-get install protobuf-compiler protobuf-compiler-grpc) or "
                 "grpcio-tools (pip install grpcio-tools)")
    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    return [sys.executable, "-m", "grpc_tools.protoc", f"--proto_path={include}"]


def _generate(protoc: list, proto_path: str, protos: list, out: str) -> None:
    os.makedirs(out, exist_ok=True)
    command = protoc + [f"--proto_path={proto_path}", f"--python_out={out}",
                        f"--pyi_out={out}", f"--grpc_out={out}"] + protos
    subprocess.run(command, check=True)


def generate_stubs(build_lib: str) -> None:
    root, protoc = _proto_root(), _protoc()
    api = sorted(glob.glob(os.path.join(root, "backflow", "v1", "*.proto")))
    _generate(protoc, root, api, build_lib)
    open(os.path.join(build_lib, "backflow", "v1", "__init__.py"), "a").close()
    with tempfile.TemporaryDirectory() as staging:
        health = os.path.join(staging, "backflow", "_health", "health.proto")
        os.makedirs(os.path.dirname(health))
        shutil.copy(os.path.join(root, "grpc", "health", "v1", "health.proto"), health)
        _generate(protoc, staging, [health], build_lib)
    open(os.path.join(build_lib, "backflow", "_health", "__init__.py"), "a").close()
    with tempfile.TemporaryDirectory() as staging:
        staged = []
        for stem in ("grpc_service", "model_config"):
            with open(os.path.join(root, "inference", stem + ".proto")) as f:
                text = f.read().replace('import "inference/', 'import "backflow/inference/')
            staged.append(os.path.join(staging, "backflow", "inference", stem + ".proto"))
            os.makedirs(os.path.dirname(staged[-1]), exist_ok=True)
            with open(staged[-1], "w") as f:
                f.write(text)
        _generate(protoc, staging, staged, build_lib)
    open(os.path.join(build_lib, "backflow", "inference", "__init__.py"), "a").close()


class BuildWithStubs(build_py):
    def run(self) -> None:
        super().run()
        generate_stubs(self.build_lib)


setup(cmdclass={"build_py": BuildWithStubs})
