# Two entry points do all the set-up on a fresh machine:
#   make demo   the platform on a local AWS emulator (moto)
#   make test   format, lint and every test; what CI runs
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: demo test moto build fmt lint unit chaos clean

moto:
	@scripts/setup-moto.sh
	@scripts/setup-schemathesis.sh

build:
	$(CARGO) build --workspace --bins

demo: moto build
	@scripts/demo.sh

fmt:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit: moto
	$(CARGO) test --workspace --no-fail-fast

test: moto fmt lint unit

# The long chaos run (tests/tests/chaos.rs): thousands of messages, workers SIGKILLed under
# injected AWS faults; bounded by BALLAST_CHAOS_DEADLINE_SECS.
chaos: moto
	$(CARGO) build -p ballast-worker --bin ballast-worker
	BALLAST_CHAOS_MESSAGES=$${BALLAST_CHAOS_MESSAGES:-3000} \
	BALLAST_CHAOS_WORKERS=$${BALLAST_CHAOS_WORKERS:-3} \
	BALLAST_CHAOS_DEADLINE_SECS=$${BALLAST_CHAOS_DEADLINE_SECS:-900} \
	$(CARGO) test -p ballast-e2e --test chaos -- --nocapture chaos_money


clean:
	$(CARGO) clean
	rm -rf .venv .moto
