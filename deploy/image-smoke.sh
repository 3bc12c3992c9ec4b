#!/usr/bin/env bash
# Build the trustproxy image with podman and smoke-test it the way a platform team runs it.
#
#   deploy/image-smoke.sh            base image (reused) -> build -> smoke test -> clean up
#   deploy/image-smoke.sh build      base image + build only
#   deploy/image-smoke.sh smoke      smoke-test an image already built
#   deploy/image-smoke.sh sidecar    the Kubernetes sidecar manifest under `podman kube play`
#
# Works on a machine without any image registry (like this project's CI machine):
#   * podman's storage and engine configuration live in a work folder ($WORK), so nothing in
#     /etc/containers is changed: overlay storage, cgroupfs, file events logger, runc (crun
#     refuses the hybrid cgroup layout of such machines), and explicit default ulimits (root
#     there may not raise limits above the current ones, and podman's defaults are higher).
#   * the base image is built locally with debootstrap from apt's configured Debian mirror and
#     imported as localhost/debian-python:3.11. It trusts the host's extra CA certificates (the
#     ones update-ca-certificates installed), so pip and apt inside the build trust what the host
#     trusts. THAT BASE IMAGE IS FOR TESTING ON THIS MACHINE ONLY: it carries this host's CAs;
#     never push or publish it. On a normal machine build with the pulled python base instead
#     (docs/deploy.md).
#   * pip inside the build sees the host's pip configuration (indexes, find-links: the CPU
#     torch wheel lies on this disk) through read-only build mounts.
#
# Environment: WORK (default /var/tmp/trustproxy-podman), IMAGE (localhost/trustproxy:ci),
# BASE_IMAGE (localhost/debian-python:3.11), DEBIAN_MIRROR (apt's configured one), PORT (18080).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${WORK:-/var/tmp/trustproxy-podman}"
IMAGE="${IMAGE:-localhost/trustproxy:ci}"
BASE_IMAGE="${BASE_IMAGE:-localhost/debian-python:3.11}"
PORT="${PORT:-18080}"
SUITE="${SUITE:-bookworm}"
CLIENT_KEY="smoke-client-key-$$"
STEP="${1:-all}"

log() { echo "image-smoke: $*" >&2; }
die() { echo "image-smoke: FAIL: $*" >&2; exit 1; }

# ---- podman configuration in a work folder ---------------------------------------------------
setup_podman() {
    command -v podman >/dev/null || die "podman is not installed (apt-get install podman runc conmon netavark containernetworking-plugins fuse-overlayfs slirp4netns uidmap iptables debootstrap)"
    mkdir -p "$WORK/storage" "$WORK/run" "$WORK/tmp"
    cat > "$WORK/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$WORK/storage"
runroot = "$WORK/run"
EOF
    cat > "$WORK/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$WORK/events.log"
runtime = "runc"
EOF
    export CONTAINERS_STORAGE_CONF="$WORK/storage.conf" CONTAINERS_CONF="$WORK/containers.conf"
    export TMPDIR="$WORK/tmp"
}

debian_mirror() {
    if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
    local m
    m="$(grep -hs -E '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list 2>/dev/null \
        | grep -v security | head -1 | sed -E 's/^URIs:[[:space:]]*//; s/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//; s/[[:space:]].*$//')"
    echo "${m:-http://deb.debian.org/debian}"
}

# ---- the base image (testing only; reused when present) --------------------------------------
base_image() {
    if podman image exists "$BASE_IMAGE"; then
        log "base image $BASE_IMAGE present: reused"
        return
    fi
    command -v debootstrap >/dev/null || die "debootstrap is not installed"
    local rootfs="$WORK/rootfs" mirror
    mirror="$(debian_mirror)"
    rm -rf "$rootfs"
    log "debootstrap $SUITE from $mirror (a few minutes)"
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
        "$SUITE" "$rootfs" "$mirror" > "$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
    # the host's extra CAs (what update-ca-certificates installed here), trusted inside
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
        TMPDIR=/tmp chroot "$rootfs" update-ca-certificates >/dev/null
    fi
    printf 'deb %s %s main\ndeb %s %s-updates main\n' "$mirror" "$SUITE" "$mirror" "$SUITE" \
        > "$rootfs/etc/apt/sources.list"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | podman import \
        --change 'CMD ["python3"]' --change 'ENV LANG=C.UTF-8' \
        --message "local test base: Debian $SUITE + python3 + this host's CAs; never publish" \
        - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
    log "base image $BASE_IMAGE imported"
}

# ---- build ------------------------------------------------------------------------------------
BUILD_MOUNTS=()
build_mounts() {
    local pipconf="$WORK/pip.conf"
    # the host's pip configuration, flattened into one file for the build
    {
        echo "[global]"
        # pip uses its own CA bundle unless told: trust the system store (with the host's CAs)
        echo "cert = /etc/ssl/certs/ca-certificates.crt"
        pip3 config list 2>/dev/null | sed -nE "s/^(global|:env:)\.(index-url|extra-index-url|find-links|timeout|default-timeout)='(.*)'$/\2 = \3/p" \
            | sort -u -t= -k1,1
    } > "$pipconf"
    BUILD_MOUNTS=(-v "$pipconf:/etc/pip.conf:ro")
    for d in $(sed -nE 's/^(find-links|extra-index-url|index-url) = //p' "$pipconf" | tr ' ' '\n' | sed -E 's#^file://##' | grep '^/' || true); do
        # a local "simple" index links to files beside it: mount its parent
        case "$d" in */simple|*/simple/) d="$(dirname "$d")" ;; esac
        [ -e "$d" ] && BUILD_MOUNTS+=(-v "$d:$d:ro")
    done
}

build() {
    log "building $IMAGE from deploy/Dockerfile (base $BASE_IMAGE)"
    local t0=$SECONDS
    podman build --pull=never --format docker \
        --build-arg PYTHON_IMAGE="$BASE_IMAGE" --build-arg TORCH_INDEX_URL= \
        "${BUILD_MOUNTS[@]}" -f "$ROOT/deploy/Dockerfile" -t "$IMAGE" "$ROOT" > "$WORK/build.log" 2>&1 \
        || { tail -40 "$WORK/build.log" >&2; die "podman build failed (log: $WORK/build.log)"; }
    log "built in $((SECONDS - t0)) s; size $(podman image inspect "$IMAGE" --format '{{.Size}}' | awk '{printf "%.0f MB", $1/1e6}')"
}

main() {
    setup_podman
    build_mounts
    case "$STEP" in
        build) base_image; build ;;
        smoke) smoke ;;
        sidecar) sidecar ;;
        all) base_image; build; smoke; sidecar ;;
        *) die "unknown step $STEP" ;;
    esac
}

# shellcheck source=deploy/image-smoke-checks.sh
. "$ROOT/deploy/image-smoke-checks.sh"
main
