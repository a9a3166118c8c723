# The two commands of the README: `make demo` and `make test`.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps test-deps build demo test test-asan clean

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

# The tests of untrusted input (label `asan`) and the ONNX cases again, built
# with AddressSanitizer + UndefinedBehaviorSanitizer: any report fails.
test-asan: test-deps
	cmake -S . -B $(BUILD)-asan -DNM_SANITIZE=ON -DNM_NATIVE=ON -DNM_TORCH_REFS=$(CURDIR)/$(BUILD)/torch_refs $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ctest --output-on-failure -j $(JOBS) -L "asan|onnx"

clean:
	rm -rf $(BUILD) $(BUILD)-asan
