# Sparkgate: top-level entry points. `make` builds, `make run` starts a local Prosody with demo
# users plus the gateway, `make test` runs every test (unit, sanitizers, integration).
SHELL := /bin/bash
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
CLANG_BUILD ?= build-clang

# Debian packages needed to build, test and run (also installed by .ci/run).
DEB_PACKAGES := build-essential clang cmake pkg-config git ca-certificates openssl curl procps \
	prosody libuv1-dev libwebsockets-dev libwebsockets-evlib-uv libssl-dev libexpat1-dev \
	libgsasl-dev libc-ares-dev libjansson-dev libsqlite3-dev libcmocka-dev libinih-dev \
	liboath-dev libqrencode-dev libfido2-dev libcbor-dev libcurl4-openssl-dev clang-format chromium \
	prosody-modules

.PHONY: all build deps run test unit asan clang integration browser check-secrets bench fuzz format format-check clean

all: build

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# Installs whatever Debian package is missing (needs root or sudo) and the npm packages (again
# whenever package-lock.json is newer than the installed tree).
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi
	@command -v node >/dev/null || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); $$SUDO apt-get install -y nodejs npm; }
	@[ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund

# Local Prosody (demo users alice, bob, carol with passwords alice-pass, ...) + the gateway.
run: deps build
	@bash scripts/run-local.sh

unit: build
	ctest --test-dir $(BUILD) --output-on-failure

asan:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSG_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure

clang:
	CC=clang cmake -S . -B $(CLANG_BUILD) -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build $(CLANG_BUILD) -j $(JOBS)

# Integration tests drive the ASan+UBSan gateway against a real Prosody. Every gateway log and
# every secret the tests used are collected in SECRETS_DIR for check-secrets.
SECRETS_DIR ?= $(CURDIR)/$(ASAN_BUILD)/secrets
integration: asan
	rm -rf $(SECRETS_DIR) && mkdir -p $(SECRETS_DIR)
	SG_SECRETS_DIR=$(SECRETS_DIR) SPARKGATE_BIN=$(CURDIR)/$(ASAN_BUILD)/sparkgate \
	  node --test --test-concurrency=1 tests/integration/

# Browser tests: the demo page in headless Chromium (Debian's), driven by playwright-core.
browser: asan
	mkdir -p $(SECRETS_DIR)
	SG_SECRETS_DIR=$(SECRETS_DIR) SPARKGATE_BIN=$(CURDIR)/$(ASAN_BUILD)/sparkgate \
	  node --test --test-concurrency=1 tests/browser/

# No password, token or TOTP secret used by the suite appears in any gateway log.
check-secrets:
	node tests/check-secrets.mjs $(SECRETS_DIR)

test: deps unit clang integration browser check-secrets
	@echo "make test: unit (gcc), clang build, ASan+UBSan unit, integration and browser tests passed; no secret in the logs"

bench: deps build
	ulimit -n $$(ulimit -Hn); node bench/smoke.mjs

fuzz:
	CC=clang cmake -S . -B build-fuzz -DSG_FUZZ=ON -DSG_TESTS=OFF >/dev/null
	cmake --build build-fuzz -j $(JOBS)

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c')

format-check:
	clang-format --dry-run --Werror $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(CLANG_BUILD) build-fuzz
