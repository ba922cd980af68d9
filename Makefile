# warren: thin wrapper around CMake. `sudo make demo` and `sudo make test` are the two
# commands of the README; both install what is missing first (tools/setup.sh).
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
# `make install`: the prefix is set at configure time (PREFIX=/usr for a system-wide install;
# DESTDIR stages into a directory); the systemd units are written for it when installing.
PREFIX ?= /usr/local

.PHONY: all setup configure build install deb test test-unit test-root test-asan test-tsan demo bench format tidy clean
.PHONY: fuzz-build fuzz fuzz-ci

all: build

setup:
	@bash tools/setup.sh

configure: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# Binaries, systemd units, man pages, bash completions, an example config (dist/CMakeLists.txt).
# Enables nothing and writes nothing to /etc.
install: build
	@DESTDIR="$(DESTDIR)" cmake --install $(BUILD)

# The Debian package, warren_VERSION-1_ARCH.deb in this directory (CPack, dist/debian/package.cmake;
# docs/PACKAGING.md): /usr/sbin whatever PREFIX is. `sudo apt install ./warren_*.deb`.
deb: build
	@rm -f $(BUILD)/package/warren_*.deb
	@cd $(BUILD) && cpack -G DEB -B $(CURDIR)/$(BUILD)/package >/dev/null
	@cp $(BUILD)/package/warren_*.deb .
	@ls warren_*.deb

# Everything: unit tests, then the namespace tests (those skip with a reason without root);
# the data-path suites twice, once with every offload on (the default) and once with
# WARREN_OFFLOADS=off (src/platform/offloads.h), so both data paths stay correct. The second
# pass runs only what moves data through the daemons' TUN/UDP paths: the `apps` unit tests and
# the namespace suites labelled `offloads` (tests/CMakeLists.txt); outages, enrollment, DNS,
# reload and packaging are the same code with either data path.
test: build
	@echo "== make test: offloads on (default)"
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE root
	@cd $(BUILD) && ctest --output-on-failure -L root
	@echo "== make test: WARREN_OFFLOADS=off"
	@cd $(BUILD) && WARREN_OFFLOADS=off ctest --output-on-failure -j $(JOBS) -LE root -R '^apps\.'
	@cd $(BUILD) && WARREN_OFFLOADS=off ctest --output-on-failure -L offloads

test-unit: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE root

test-root: build
	@cd $(BUILD) && ctest --output-on-failure -L root

# Unit and namespace tests under AddressSanitizer + UndefinedBehaviorSanitizer, and under
# ThreadSanitizer, each in its own build tree; any sanitizer report (also from a daemon) fails.
test-asan: setup
	@cmake -S . -B build-asan -DWARREN_SANITIZE=address -DWARREN_BUILD_BENCH=OFF >/dev/null
	@cmake --build build-asan -j $(JOBS)
	@JOBS=$(JOBS) bash tests/tools/sanitizer_run.sh build-asan address

test-tsan: setup
	@cmake -S . -B build-tsan -DWARREN_SANITIZE=thread -DWARREN_BUILD_BENCH=OFF >/dev/null
	@cmake --build build-tsan -j $(JOBS)
	@JOBS=$(JOBS) bash tests/tools/sanitizer_run.sh build-tsan thread

# libFuzzer targets (tests/fuzz) in their own clang tree; `make fuzz FUZZ_SECONDS=N` runs each
# for N s with its seed corpus, `make fuzz-ci` is what CI runs: 20 s each (two at a time, ~2 min),
# cut from 60, 45 and 30 s to keep CI within its budget (docs/reliability.md §7); `make fuzz`
# (60 s) is for a change to a parser.
FUZZ_SECONDS ?= 60
fuzz-build: setup
	@CC=clang CXX=clang++ cmake -S . -B build-fuzz -DWARREN_FUZZ=ON -DWARREN_BUILD_BENCH=OFF >/dev/null
	@cmake --build build-fuzz -j $(JOBS) --target fuzzers

fuzz: fuzz-build
	@bash tests/fuzz/run.sh build-fuzz/bin $(FUZZ_SECONDS)

fuzz-ci:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=20

demo: build
	@bash tools/demo.sh $(BUILD)/bin

bench: build
	@cmake --build $(BUILD) -j $(JOBS) --target benches
	@bash tools/bench.sh $(BUILD)/bin

format:
	@git ls-files '*.h' '*.cc' | xargs clang-format -i

tidy: configure
	@git ls-files 'src/*.cc' | xargs clang-tidy -p $(BUILD) --quiet

clean:
	@rm -rf $(BUILD)
