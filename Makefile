# todo-host: the two commands first.
#   make run    everything up on this machine (PostgreSQL under .data/, all bundles on :8080)
#   make test   C tests, Lua specs against a real PostgreSQL, then the same under ASan+UBSan
.PHONY: run test build build-asan test-fast test-asan bench lint format clean bootstrap fuzz

BUILD ?= build
BUILD_ASAN ?= build-asan
GENERATOR := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")
JOBS ?= 2

bootstrap:
	@scripts/bootstrap

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || { rm -rf $(BUILD); exit 1; }

$(BUILD_ASAN)/CMakeCache.txt:
	cmake -S . -B $(BUILD_ASAN) $(GENERATOR) -DCMAKE_BUILD_TYPE=Debug -DTH_SANITIZE=ON >/dev/null || { rm -rf $(BUILD_ASAN); exit 1; }

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

build-asan: $(BUILD_ASAN)/CMakeCache.txt
	cmake --build $(BUILD_ASAN) -j $(JOBS)

run: bootstrap build
	@scripts/run

test: bootstrap build build-asan
	@scripts/test $(BUILD) $(BUILD_ASAN)

# Only the regular build's suites (quicker while developing).
test-fast: bootstrap build
	@scripts/test $(BUILD)

test-asan: bootstrap build-asan
	@scripts/test $(BUILD_ASAN)

# libFuzzer targets (clang, ASan+UBSan) in build-fuzz/, FUZZ_SECONDS (60) each.
fuzz: bootstrap
	@scripts/fuzz

bench: bootstrap build
	@scripts/bench $(BUILD)

# Every C file of core/ (every folder of core/src, however deep).
C_FILES = $(shell find core/src core/tests -name '*.[ch]' | sort)

lint:
	luacheck -q core/lua lua services spec bench
	clang-format --dry-run --Werror $(C_FILES)
	scripts/check-layers build

format:
	clang-format -i $(C_FILES)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) build-fuzz
