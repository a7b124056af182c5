# Thin wrapper over CMake presets. Every target installs what is missing first, so each one works
# on a fresh Debian 12 machine.
PRESET ?= release
JOBS ?= $(shell nproc)

.PHONY: deps configure build test run bench clean asan tsan fuzz install python-wheel

deps:
	@scripts/install-deps.sh

# `make configure` always re-runs CMake; the other targets configure only a new build directory
# (after that, Ninja re-runs CMake by itself whenever a CMakeLists.txt changes).
configure: deps
	cmake --preset $(PRESET)

build/%/build.ninja: | deps
	cmake --preset $*

build: deps build/$(PRESET)/build.ninja
	cmake --build --preset $(PRESET) -j $(JOBS)

test: build
	ctest --preset $(PRESET) -j $(JOBS)

# Builds what the README's quick start uses (the server, the backflow CLI, backflow-load and the
# Python package in build/release/python), then serves on 127.0.0.1:50051 with ./backflow-data
# until Ctrl-C. Extra flags: make run ARGS="--log-level=debug".
run: deps build/release/build.ninja
	cmake --build --preset release -j $(JOBS) --target backflow-server backflow backflow-load backflow_python
	exec build/bin/backflow-server $(ARGS)

# Installs the binaries, the protos, the example graphs and the Python package under PREFIX
# (default /usr/local; DESTDIR stages it elsewhere, as for a package): docs/install.md.
PREFIX ?= /usr/local
INSTALL_TARGETS = backflow-server backflow backflow-load backflow_python

install: deps build/$(PRESET)/build.ninja
	cmake --build --preset $(PRESET) -j $(JOBS) --target $(INSTALL_TARGETS)
	DESTDIR="$(DESTDIR)" cmake --install build/$(PRESET) --prefix "$(PREFIX)"

# A wheel of the Python client with its generated stubs, for pip install elsewhere (any Python
# 3.9+ with grpcio, protobuf and NumPy): build/python-wheel/backflow-VERSION-py3-none-any.whl.
python-wheel: deps
	rm -rf build/python-wheel-src && mkdir -p build/python-wheel-src
	cp -r clients/python/pyproject.toml clients/python/setup.py clients/python/README.md \
	  clients/python/backflow build/python-wheel-src/
	BACKFLOW_PROTO_DIR="$(CURDIR)/proto" /usr/bin/python3 -m pip wheel --no-deps \
	  --no-build-isolation --disable-pip-version-check -w build/python-wheel build/python-wheel-src

# The performance table (bench/run, docs/PERFORMANCE.md): every workload in process, over gRPC
# and in PyTorch (Debian's python3-torch, installed on first use), side by side in one run.
bench: deps
	bench/run

# Sanitizer builds of the same suite: make asan, make tsan.
asan:
	$(MAKE) test PRESET=asan

tsan:
	$(MAKE) test PRESET=tsan

# libFuzzer on the fuzz targets of fuzz/ (docs/fuzzing.md): graph import, tensor decoding, the
# data directory's records, every RPC's request handling and the ONNX importer. Installs clang-14
# and libFuzzer (the `fuzz` group of scripts/install-deps.sh; `make test` needs neither), builds
# the fuzz preset (clang-14, ASan + UBSan) and runs each target for FUZZ_SECONDS on its seeds in
# fuzz/corpus/TARGET. A crash, sanitizer report, leak or hang is saved to fuzz/regressions/TARGET/,
# and `make test` replays every seed and regression through each target (ctest fuzz_replay_*).
# One target, briefly: make fuzz FUZZ_TARGETS=rpc FUZZ_SECONDS=60.
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?= graph_import tensor_decode records rpc onnx_import

fuzz:
	@scripts/install-deps.sh fuzz
	@test -f build/fuzz/build.ninja || cmake --preset fuzz
	cmake --build --preset fuzz -j $(JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS))
	scripts/run-fuzzers.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

clean:
	rm -rf build
