# Makefile: the two commands a new user runs (make demo, make test), wrapping
# CMake. scripts/deps.sh installs any missing Debian package first, and
# scripts/npm-deps.sh the pinned npm packages of the API tests (tests/api).
BUILD      ?= build
ASAN_BUILD ?= build-asan
BENCH_BUILD ?= build-release
JOBS       ?= $(shell nproc)
CONFIG     ?= configs/demo.yaml
PREFIX     ?= /usr/local

.PHONY: all deps build build-asan test test-normal test-asan demo bench format clean install

all: build

deps:
	@bash scripts/deps.sh
	@bash scripts/npm-deps.sh $(BUILD)

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@umask 022 && cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCR_SANITIZE=ON -DCR_BENCH=OFF >/dev/null
	@umask 022 && cmake --build $(ASAN_BUILD) -j $(JOBS)

test-normal: build
	@echo "== tests: normal build"
	@ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

test-asan: build-asan
	@echo "== tests: AddressSanitizer + UndefinedBehaviorSanitizer build"
	@ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS)

# Every suite runs twice: normal, then ASan+UBSan with leak detection.
test: test-normal test-asan

# connrun, the bundled plugins, the SDK headers + connrun-plugin.pc, the man
# page, an example systemd unit and the default configuration under PREFIX.
install: build
	@cmake --install $(BUILD) --prefix $(PREFIX)

demo: build
	@./scripts/demo.sh $(BUILD) $(CONFIG)

bench: deps
	@cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release -DCR_TESTS=OFF >/dev/null
	@umask 022 && cmake --build $(BENCH_BUILD) -j $(JOBS)
	@./scripts/bench.sh $(BENCH_BUILD)

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(BENCH_BUILD)
