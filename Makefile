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

# Sanitizer builds of the same suite: make asan, make tsan.
asan:
	$(MAKE) test PRESET=asan

tsan:
	$(MAKE) test PRESET=tsan

clean:
	rm -rf build
