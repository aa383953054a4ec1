#!/usr/bin/env bash
# Build the Debian package `ballast` from binaries that are already built, offline, with
# dpkg-deb alone (no cargo-deb, no debhelper):
#
#   /usr/bin/ballast, /usr/bin/ballast-worker            0755
#   /lib/systemd/system/ballast-worker.service          0644  packaging/ballast-worker.service
#   /etc/default/ballast-worker                         0644  packaging/ballast-worker.env (conffile)
#   /usr/share/doc/ballast/copyright                    0644
#
#   PROFILE=release (default) | debug   which target/<profile>/ binaries to package
#   DEB_OUT_DIR=DIR                     where the .deb goes (default target/debian)
#   DEB_COMPRESSION=xz (default) | gzip | zstd | none
#
# `make package` builds the release binaries first. Prints the path of the package on stdout.
# The service is installed but neither enabled nor started: the blueprint and the settings must
# be in place first (banking.yaml's user data does both, then `systemctl enable --now`).
set -euo pipefail

ROOT="$(cd "${BASH_SOURCE[0]%/*}/.." && pwd)"
PROFILE="${PROFILE:-release}"
TARGET_DIR="${CARGO_TARGET_DIR:-${ROOT}/target}"
OUT_DIR="${DEB_OUT_DIR:-${TARGET_DIR}/debian}"
COMPRESSION="${DEB_COMPRESSION:-xz}"

die() {
    echo "package-deb: error: $*" >&2
    exit 1
}

case "${PROFILE}" in
    release | debug) ;;
    *) die "PROFILE=${PROFILE}: use release or debug" ;;
esac
case "${COMPRESSION}" in
    xz | gzip | zstd | none) ;;
    *) die "DEB_COMPRESSION=${COMPRESSION}: use xz, gzip, zstd or none" ;;
esac
command -v dpkg-deb >/dev/null || die "dpkg-deb not found; install it (Debian: apt-get install dpkg)"

BIN_DIR="${TARGET_DIR}/${PROFILE}"
for bin in ballast ballast-worker; do
    [[ -x "${BIN_DIR}/${bin}" ]] ||
        die "${BIN_DIR}/${bin} not found; build it first: cargo build $([[ ${PROFILE} == release ]] && echo '--release --locked ')--bin ${bin} (or make package)"
done

version="$(sed -n '/^\[workspace.package\]/,/^\[/{s/^version = "\(.*\)"$/\1/p}' "${ROOT}/Cargo.toml")"
[[ -n "${version}" ]] || die "cannot read [workspace.package] version from Cargo.toml"
arch="$(dpkg --print-architecture)"

# The newest glibc symbol version either binary needs: the package refuses to install on an
# older system instead of failing at start-up.
glibc="$(objdump -T "${BIN_DIR}/ballast" "${BIN_DIR}/ballast-worker" |
    sed -n 's/.*GLIBC_\([0-9][0-9.]*\).*/\1/p' | sort -uV | tail -n 1)"
[[ -n "${glibc}" ]] || die "cannot read the glibc version the binaries need (objdump -T)"

stage="$(mktemp -d)"
trap 'rm -rf "${stage}"' EXIT
root="${stage}/root"
install -d -m 0755 "${root}/DEBIAN" "${root}/usr/bin" "${root}/lib/systemd/system" \
    "${root}/etc/default" "${root}/usr/share/doc/ballast"
install -m 0755 "${BIN_DIR}/ballast" "${BIN_DIR}/ballast-worker" "${root}/usr/bin/"
install -m 0644 "${ROOT}/packaging/ballast-worker.service" "${root}/lib/systemd/system/ballast-worker.service"
install -m 0644 "${ROOT}/packaging/ballast-worker.env" "${root}/etc/default/ballast-worker"
cat > "${root}/usr/share/doc/ballast/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: ballast

Files: *
License: Apache-2.0
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
COPYRIGHT
chmod 0644 "${root}/usr/share/doc/ballast/copyright"

installed_size="$(du -sk --exclude=DEBIAN "${root}" | cut -f1)"
cat > "${root}/DEBIAN/control" <<CONTROL
Package: ballast
Version: ${version}
Architecture: ${arch}
Maintainer: Ballast developers <maintainers@ballast.dev>
Installed-Size: ${installed_size}
Depends: libc6 (>= ${glibc}), libgcc-s1
Section: admin
Priority: optional
Homepage: https://ballast.dev
Description: provisions and autoscales a queue-driven transaction platform on AWS
 ballast keeps AWS (SQS, DynamoDB, EC2 Auto Scaling, CloudWatch) converged to a declarative
 blueprint and scales the worker fleet on the queue's backlog; ballast-worker consumes the
 transaction queue into a double-entry DynamoDB ledger. The ballast-worker systemd service is
 installed but not enabled: put the blueprint in place and set /etc/default/ballast-worker,
 then run systemctl enable --now ballast-worker.
CONTROL
echo "/etc/default/ballast-worker" > "${root}/DEBIAN/conffiles"

# Maintainer scripts: systemd learns about the unit on install and forgets it on removal; a
# removal stops the worker first (SIGTERM: it drains its messages in flight).
cat > "${root}/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
fi
POSTINST
cat > "${root}/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
    systemctl disable --now ballast-worker.service || true
fi
PRERM
cat > "${root}/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi
POSTRM
chmod 0755 "${root}/DEBIAN/postinst" "${root}/DEBIAN/prerm" "${root}/DEBIAN/postrm"
chmod 0644 "${root}/DEBIAN/control" "${root}/DEBIAN/conffiles"

mkdir -p "${OUT_DIR}"
deb="${OUT_DIR}/ballast_${version}_${arch}.deb"
# Reproducible: owned by root whatever user builds it, files dated by the last commit.
if [[ -z "${SOURCE_DATE_EPOCH:-}" ]]; then
    SOURCE_DATE_EPOCH="$(git -C "${ROOT}" log -1 --format=%ct 2>/dev/null || echo 0)"
fi
export SOURCE_DATE_EPOCH
dpkg-deb --root-owner-group -Z"${COMPRESSION}" --build "${root}" "${deb}" >&2
echo "${deb}"
