#!/usr/bin/python3
"""Checks that #include lines respect the engine's layers (docs/architecture.md).

  - A file in engine/LAYER/ may include engine headers of LAYER and of the layers below it.
  - server/, clients/ and bench/ may include only the engine's public headers: the core, data
    and api layers, and the few headers of other layers that state a public contract
    (PUBLIC_HEADERS below). Runtime, gate implementations and executor internals stay inside.

The layer order comes from the command line (engine/CMakeLists.txt passes the order it builds the
libraries in), so the build and this check cannot disagree. Prints one line per violation,
"path:line: reason", and exits 1 if there is any.
"""
import argparse
import pathlib
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"engine/([a-z_]+)/([^"]+)"')

# Outside engine/: whole layers, and single headers of the layers in between.
PUBLIC_LAYERS = {"core", "data", "api", "onnx"}
PUBLIC_HEADERS = {
    "ir/graph.h", "ir/attributes.h", "ir/import.h", "ir/tensor_proto.h", "ir/cost.h",
    "autodiff/autodiff.h", "exec/program.h", "optim/optimizer.h", "optim/initializers.h",
}
OUTSIDE = ("server", "clients", "bench")


def sources(root, folder):
    for path in sorted((root / folder).rglob("*")):
        if path.suffix in (".h", ".cc") and path.is_file():
            yield path


def includes(path):
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        match = INCLUDE.match(line)
        if match:
            yield number, match.group(1), match.group(2)


def check(root, layers):
    rank = {name: i for i, name in enumerate(layers)}
    problems = [f"engine/{d.name}/: a folder that is no layer (add it to engine/CMakeLists.txt)"
                for d in sorted((root / "engine").iterdir())
                if d.is_dir() and d.name not in rank]
    for layer in layers:
        for path in sources(root, pathlib.Path("engine") / layer):
            for number, target, header in includes(path):
                where = f"{path.relative_to(root)}:{number}"
                if target not in rank:
                    problems.append(f"{where}: engine/{target}/ is not a layer")
                elif rank[target] > rank[layer]:
                    problems.append(f"{where}: layer '{layer}' includes engine/{target}/{header}"
                                    f" from the layer above it ('{target}')")
    for folder in OUTSIDE:
        for path in sources(root, pathlib.Path(folder)):
            for number, target, header in includes(path):
                name = f"{target}/{header}"
                if target not in PUBLIC_LAYERS and name not in PUBLIC_HEADERS:
                    problems.append(f"{path.relative_to(root)}:{number}: {folder}/ includes "
                                    f"engine/{name}, which is internal to the engine")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=pathlib.Path, required=True, help="the source tree")
    parser.add_argument("--layers", nargs="+", required=True, help="engine layers, bottom first")
    args = parser.parse_args()
    missing = [l for l in args.layers if not (args.root / "engine" / l).is_dir()]
    if missing:
        print(f"no folder engine/{missing[0]}/ for layer '{missing[0]}'")
        return 1
    problems = check(args.root, args.layers)
    for line in problems:
        print(line)
    print(f"{len(problems)} include(s) against the layers: " + " -> ".join(args.layers))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
