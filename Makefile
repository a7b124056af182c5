# Thin wrapper over CMake presets. Every target installs what is missing first, so each one works
# on a fresh Debian 12 machine.
PRESET ?= release
JOBS ?= $(shell nproc)

.PHONY: deps configure build test run bench clean asan tsan

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

# The performance table (bench/run, docs/PERFORMANCE.md): every workload in process, over gRPC
# and in PyTorch (Debian's python3-torch, installed on first use), side by side in one run.
bench: deps
	bench/run

# Sanitizer builds of the same suite: make asan, make tsan.
asan:
	$(MAKE) test PRESET=asan

tsan:
	$(MAKE) test PRESET=tsan

clean:
	rm -rf build
