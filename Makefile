# Thin wrapper over CMake presets. Every target installs what is missing first, so each one works
# on a fresh Debian 12 machine.
PRESET ?= release
JOBS ?= $(shell nproc)

.PHONY: deps configure build test run bench clean asan tsan

deps:
	@scripts/install-deps.sh

configure: deps
	cmake --preset $(PRESET)

build: configure
	cmake --build --preset $(PRESET) -j $(JOBS)

test: build
	ctest --preset $(PRESET) -j $(JOBS)

# Builds only the server, then serves on 127.0.0.1:50051 with ./backflow-data until Ctrl-C.
# Extra flags: make run ARGS="--log-level=debug".
run: configure
	cmake --build --preset release --target backflow-server
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
