# Two entry points do all the set-up on a fresh machine:
#   make demo   the platform on a local AWS emulator (moto)
#   make test   format, lint and every test; what CI runs
# and two that ship it:
#   make image    the container images (docker, podman or buildah)
#   make package  the Debian package (PROFILE=debug packages the debug build)
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: demo test moto build cli-assets fmt deny advisories lint unit chaos image package clean

moto:
	@scripts/setup-moto.sh
	@scripts/setup-schemathesis.sh

build:
	$(CARGO) build --workspace --bins

# Shell completions and manual pages of both binaries under target/cli-assets/usr/share/, where a
# package installs them (scripts/cli-assets.sh; BALLAST_BIN_DIR=target/release for a release).
cli-assets: build
	@scripts/cli-assets.sh

demo: moto build
	@scripts/demo.sh

fmt:
	$(CARGO) fmt --all -- --check

# cargo-deny against deny.toml (licenses, banned and duplicate crates, sources), offline; installs
# the pinned cargo-deny into .tools/ when missing (scripts/cargo-deny.sh).
deny:
	@scripts/cargo-deny.sh

# RustSec advisories: fetches the advisory database, so it needs the network (not in `make test`).
advisories:
	@scripts/cargo-deny.sh advisories

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit: moto
	$(CARGO) test --workspace --no-fail-fast

# fmt, lint, unit and deny in one pass that compiles the dependency tree once and overlaps the
# emulator and cargo-deny set-up with the build (scripts/test.sh).
test:
	@scripts/test.sh

# The long chaos run (tests/tests/e2e/chaos.rs): thousands of messages, workers SIGKILLed under
# injected AWS faults; bounded by BALLAST_CHAOS_DEADLINE_SECS.
chaos: moto
	$(CARGO) build -p ballast-worker --bin ballast-worker
	BALLAST_CHAOS_MESSAGES=$${BALLAST_CHAOS_MESSAGES:-3000} \
	BALLAST_CHAOS_WORKERS=$${BALLAST_CHAOS_WORKERS:-3} \
	BALLAST_CHAOS_DEADLINE_SECS=$${BALLAST_CHAOS_DEADLINE_SECS:-900} \
	$(CARGO) test -p ballast-e2e --test e2e -- --nocapture chaos::chaos_money

# The container images of both binaries (Dockerfile targets `ballast`, `ballast-worker`); needs
# docker, podman or buildah and the base images' registries (scripts/build-image.sh).
image:
	@scripts/build-image.sh

# The Debian package of both binaries and the worker's systemd unit (scripts/package-deb.sh,
# dpkg-deb only, offline): release binaries by default, PROFILE=debug packages `make build`'s.
PROFILE ?= release
package:
	$(CARGO) build --workspace --bins $(if $(filter release,$(PROFILE)),--release --locked,)
	@PROFILE=$(PROFILE) scripts/package-deb.sh

clean:
	$(CARGO) clean
	rm -rf .venv .moto
