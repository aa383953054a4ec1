# Two entry points do all the set-up on a fresh machine:
#   make demo   the platform on a local AWS emulator (moto)
#   make test   format, lint and every test; what CI runs
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: demo test moto build fmt lint unit clean

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


clean:
	$(CARGO) clean
	rm -rf .venv .moto
