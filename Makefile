# todo-host: the two commands first.
#   make run    everything up on this machine (PostgreSQL under .data/, all bundles on :8080)
#   make test   C tests, Lua specs against a real PostgreSQL, then the same under ASan+UBSan
.PHONY: up-dapr chaos
.PHONY: soak
.PHONY: run test build build-asan test-fast test-asan test-frontend bench bench-ws bench-slow lint format clean bootstrap check-deploy eval-chat fuzz

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

# The web front end alone: tsc, eslint, Vitest, next build, the browser tests.
test-frontend: bootstrap build
	@TODO_HOST=$(CURDIR)/$(BUILD)/todo-host scripts/test-frontend

# libFuzzer targets (clang, ASan+UBSan) in build-fuzz/, FUZZ_SECONDS (60) each.
fuzz: bootstrap
	@scripts/fuzz

bench: bootstrap build
	@scripts/bench $(BUILD)

# WebSocket: memory per connection, fan-out and broadcast latency (docs/benchmarks.md).
bench-ws: bootstrap build
	@scripts/bench-ws $(BUILD)

# Normal clients' p50/p99 (paced, open loop) with and without 500 slow clients, alternating
# runs (docs/reliability.md). BENCH_SLOW_ARGS="--runs 5 --seconds 30" for more.
bench-slow: bootstrap build
	@scripts/slow-clients $(BUILD) $(BENCH_SLOW_ARGS)

# Faults under load: SIGKILLs, a PostgreSQL crash-restart, WebSocket cuts; then the checks
# (docs/reliability.md). CHAOS_ARGS="--seconds 600 --seed 7" for a longer or repeated run.
chaos: bootstrap build
	@scripts/chaos $(BUILD) $(if $(DAPR),--dapr) $(CHAOS_ARGS)

# SOAK_MINUTES (30) at half the measured maximum write rate, WebSocket clients connected:
# RSS and p99 per minute, then the rules and the chaos checks (docs/reliability.md).
soak: bootstrap build
	@SOAK_MINUTES=$(or $(SOAK_MINUTES),30) scripts/soak $(BUILD) $(SOAK_ARGS)

# The chat assistant's evaluation set: accuracy per intent and every failure.
eval-chat: build
	@$(BUILD)/todo-host script spec/chat/eval_report.lua

# Every C file of core/ (every folder of core/src, however deep).
C_FILES = $(shell find core/src core/tests -name '*.[ch]' | sort)

lint:
	luacheck -q core/lua lua services spec bench core/tests/fuzz/lua
	clang-format --dry-run --Werror $(C_FILES)
	scripts/check-layers build
	@if [ -d frontend/node_modules ]; then cd frontend && npx tsc --noEmit && npx eslint --max-warnings=0 .; fi

format:
	clang-format -i $(C_FILES)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) build-fuzz

# The image, the Helm chart and the workflows only (also part of make test).
check-deploy: bootstrap build
	@scripts/check-image $(BUILD)/todo-host && scripts/check-deploy

# Every service as its own todo-host beside its own daprd, over Redis (dapr/README.md).
up-dapr: bootstrap build
	@scripts/up-dapr
