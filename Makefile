# The two commands of the README: `make demo` and `make test`.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
PREFIX ?= /usr/local

.PHONY: all deps test-deps build demo test test-asan install clean

all: build

deps:
	sh tools/install_deps.sh

test-deps:
	sh tools/install_deps.sh --test

build: deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	sh tools/demo.sh $(BUILD)

test: test-deps build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	$(MAKE) test-asan

# The whole suite again, built with AddressSanitizer + UndefinedBehaviorSanitizer
# (leak checking on, no recovery): any report fails. The PyTorch references
# made by the first run are reused, not generated twice.
test-asan: test-deps
	cmake -S . -B $(BUILD)-asan -DNM_SANITIZE=ON -DNM_NATIVE=ON -DNM_TORCH_REFS=$(CURDIR)/$(BUILD)/torch_refs $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ctest --output-on-failure -j $(JOBS)

# Library, header, CLI, neuromask.pc and the CMake package under PREFIX (docs/install.md).
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(BUILD)-asan
