# warren: thin wrapper around CMake. `sudo make demo` and `sudo make test` are the two
# commands of the README; both install what is missing first (tools/setup.sh).
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all setup configure build test test-unit test-root demo bench format tidy clean

all: build

setup:
	@bash tools/setup.sh

configure: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# Everything: unit tests, then the namespace tests (those skip with a reason without root).
test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE root
	@cd $(BUILD) && ctest --output-on-failure -L root

test-unit: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE root

test-root: build
	@cd $(BUILD) && ctest --output-on-failure -L root

demo: build
	@bash tools/demo.sh $(BUILD)/bin

bench: build
	@bash tools/bench.sh $(BUILD)/bin

format:
	@git ls-files '*.h' '*.cc' | xargs clang-format -i

tidy: configure
	@git ls-files 'src/*.cc' | xargs clang-tidy -p $(BUILD) --quiet

clean:
	@rm -rf $(BUILD)
