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

# The gRPC server is the next open issue; until it lands there is nothing to start.
run:
	@echo "make run: backflow-server is not built yet (see README, Status); make test runs the engine's suite" >&2
	@exit 1

# The performance table: backflow's gates and training steps, and the same steps in PyTorch
# (Debian's python3-torch, installed on first use), measured side by side in one run.
bench: deps
	BACKFLOW_BENCH_INSTALL_TORCH=1 bench/run.sh

# Sanitizer builds of the same suite: make asan, make tsan.
asan:
	$(MAKE) test PRESET=asan

tsan:
	$(MAKE) test PRESET=tsan

clean:
	rm -rf build
