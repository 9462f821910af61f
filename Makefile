# Palaver: the commands a developer and CI need. `make help` lists them.

CARGO ?= cargo
# nextest runs each test in its own process (faster on 2 cores, clearer
# output); plain `cargo test` is the fallback when it is not installed.
NEXTEST := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo yes)

.PHONY: help build run test lint fmt bench clean validate-deploy

help:
	@echo "make run    - run Palaver on the embedded store in ./palaver-data"
	@echo "make test   - run every test"
	@echo "make lint   - rustfmt check + clippy with warnings as errors"
	@echo "make bench  - run the benchmarks and rewrite docs/benchmarks.md"
	@echo "make build  - build everything (release)"

build:
	$(CARGO) build --workspace --release

run:
	$(CARGO) run --release -p palaver -- serve

test:
	@if [ -z "$$PALAVER_TEST_KURRENTDB_URL" ]; then echo "KurrentDB tests skipped: PALAVER_TEST_KURRENTDB_URL is not set (no KurrentDB server on this machine); they pass without checking anything"; fi
ifeq ($(NEXTEST),yes)
	$(CARGO) test --workspace --doc
	$(CARGO) nextest run --workspace --no-fail-fast
else
	$(CARGO) test --workspace --no-fail-fast
endif

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

bench:
	$(CARGO) build --release -p palaver
	$(CARGO) run --release -p palaver-bench -- report --out docs/benchmarks.md

clean:
	$(CARGO) clean

validate-deploy:
	deploy/validate
