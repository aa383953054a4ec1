#!/usr/bin/env bash
# Build the container images of both binaries (Dockerfile targets `ballast` and `ballast-worker`)
# with whichever of docker, podman or buildah works here, in that order.
#
#   scripts/build-image.sh                      # ghcr.io/ballast-dev/{ballast,ballast-worker}:<version>
#   IMAGE_REPOSITORY=registry.example/team scripts/build-image.sh
#   IMAGE_TOOL=podman scripts/build-image.sh    # use this tool, fail if it does not work
#
# The build pulls its base images (rust, distroless) from their registries: it needs network
# access to them. Exits non-zero, saying why, when no tool can build.
set -euo pipefail

ROOT="$(cd "${BASH_SOURCE[0]%/*}/.." && pwd)"
REPOSITORY="${IMAGE_REPOSITORY:-ghcr.io/ballast-dev}"

die() {
    echo "build-image: error: $*" >&2
    exit 1
}

# docker is only usable with a reachable daemon; podman and buildah need none.
usable() {
    case "$1" in
        docker) command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 ;;
        podman | buildah) command -v "$1" >/dev/null 2>&1 ;;
        *) die "IMAGE_TOOL=$1: use docker, podman or buildah" ;;
    esac
}

tool=""
if [[ -n "${IMAGE_TOOL:-}" ]]; then
    usable "${IMAGE_TOOL}" || die "IMAGE_TOOL=${IMAGE_TOOL} is not installed or (docker) its daemon is not reachable"
    tool="${IMAGE_TOOL}"
else
    for candidate in docker podman buildah; do
        if usable "${candidate}"; then
            tool="${candidate}"
            break
        fi
    done
fi
if [[ -z "${tool}" ]]; then
    hint="install podman or buildah (Debian: apt-get install podman), or start the docker daemon"
    if command -v docker >/dev/null 2>&1; then
        die "no container build tool works here: docker is installed but its daemon is not reachable, and neither podman nor buildah is installed; ${hint}"
    fi
    die "no container build tool works here: none of docker, podman, buildah is installed; ${hint}"
fi

# The image tag is the workspace version, as in manifests/ (the manifests test checks it there).
version="$(sed -n '/^\[workspace.package\]/,/^\[/{s/^version = "\(.*\)"$/\1/p}' "${ROOT}/Cargo.toml")"
[[ -n "${version}" ]] || die "cannot read [workspace.package] version from Cargo.toml"

for target in ballast ballast-worker; do
    image="${REPOSITORY}/${target}:${version}"
    echo "build-image: ${tool}: ${image}" >&2
    case "${tool}" in
        docker | podman) "${tool}" build --target "${target}" --tag "${image}" "${ROOT}" ;;
        buildah) buildah bud --target "${target}" --tag "${image}" "${ROOT}" ;;
    esac
done
