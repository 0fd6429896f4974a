#!/usr/bin/env bash
# Build mkube's images FROM scratch around Debian's static busybox; no base image is pulled.
#
#   images/build.sh [--push REGISTRY] [--force] [--quiet]
#
# --force rebuilds everything without the build cache.
#
# Images and tags:
#   mkube/busybox:latest                                   general purpose (sh, httpd, nc, wget, ...)
#   mkube/hello:latest, mkube/hello:1, localhost:5000/hello:1   web demo (hostname page, /healthz)
#   mkube/pause:latest                                     pod infra container
# --push REGISTRY also tags REGISTRY/hello:1 and REGISTRY/busybox:latest and pushes them
# (e.g. --push localhost:5000 after scripts/registry.sh start).
#
# Idempotent and fast when nothing changed: every image carries the label
# mkube.image.hash (a hash of its build context); an image whose label matches is not
# rebuilt. Build contexts are assembled in temporary directories, never in the repo.
# Concurrent runs on one machine are serialised with flock.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
# shellcheck source=scripts/lib/deps.sh
. "$repo/scripts/lib/deps.sh"
MKUBE_LOG_PREFIX="images/build.sh"

# Bump to force a rebuild everywhere when the build recipe changes outside the contexts.
RECIPE_VERSION=1
HASH_LABEL=mkube.image.hash
IMAGES=(busybox hello pause)

usage() {
    awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "${BASH_SOURCE[0]}"
}

push_registry=""
force=0
quiet=0
while [ $# -gt 0 ]; do
    case "$1" in
        --push)
            [ $# -ge 2 ] || mkube_die "--push needs a REGISTRY (host:port)"
            push_registry="$2"
            shift 2
            ;;
        --push=*) push_registry="${1#--push=}"; shift ;;
        --force) force=1; shift ;;
        -q|--quiet) quiet=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; mkube_die "unknown argument: $1" ;;
    esac
done

say() {
    [ "$quiet" -eq 1 ] || printf '%s\n' "$*"
}

# tags_of IMAGE: every local tag of IMAGE; the first one is its primary name.
tags_of() {
    case "$1" in
        busybox) echo "mkube/busybox:latest" ;;
        hello) echo "mkube/hello:latest mkube/hello:1 localhost:5000/hello:1" ;;
        pause) echo "mkube/pause:latest" ;;
    esac
}

# pushed_as IMAGE: the REGISTRY-relative name IMAGE is pushed under (empty: not pushed).
pushed_as() {
    case "$1" in
        busybox) echo "busybox:latest" ;;
        hello) echo "hello:1" ;;
        *) echo "" ;;
    esac
}

# The static busybox binary that goes into every image.
busybox_bin="${MKUBE_BUSYBOX:-/bin/busybox}"
is_static() {
    # ldd exits non-zero for a static executable ("not a dynamic executable").
    [ -x "$1" ] && ! ldd "$1" >/dev/null 2>&1
}
if ! is_static "$busybox_bin"; then
    if [ -n "${MKUBE_BUSYBOX:-}" ]; then
        mkube_die "MKUBE_BUSYBOX=$busybox_bin is not a static executable"
    fi
    mkube_ensure_packages busybox-static
    is_static "$busybox_bin" || mkube_die "$busybox_bin is not a static busybox (install busybox-static)"
fi

command -v docker >/dev/null 2>&1 || mkube_die "docker CLI not found"

lock="${TMPDIR:-/tmp}/mkube-images-build.$(id -u).lock"
exec 9>>"$lock"
flock -w 600 9 || mkube_die "could not take $lock within 600 s"

work=$(mktemp -d "${TMPDIR:-/tmp}/mkube-images.XXXXXX")
trap 'rm -rf "$work"' EXIT

# make_context IMAGE DIR: assemble IMAGE's build context in DIR.
make_context() {
    local image=$1 dir=$2
    mkdir -p "$dir"
    cp -R "$here/$image/." "$dir/"
    cp -R "$here/common/rootfs" "$dir/rootfs"
    cp "$busybox_bin" "$dir/busybox"
    # Modes in a checkout depend on the umask; make them (and thus the hash) stable.
    chmod -R u=rwX,go=rX "$dir"
    chmod 755 "$dir/busybox"
}

# context_hash DIR: a hash of the recipe version and every file's path and content.
context_hash() {
    (
        cd "$1"
        echo "recipe $RECIPE_VERSION"
        find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    ) | sha256sum | cut -c1-32
}

# image_label REF: the hash label of local image REF, empty if REF does not exist.
image_label() {
    docker image inspect -f "{{index .Config.Labels \"$HASH_LABEL\"}}" "$1" 2>/dev/null || true
}

image_id() {
    docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true
}

build_one() {
    local image=$1 ctx="$work/$1" tags primary hash old_id new_id tag start log
    read -r -a tags <<<"$(tags_of "$image")"
    primary=${tags[0]}
    make_context "$image" "$ctx"
    hash=$(context_hash "$ctx")
    old_id=$(image_id "$primary")
    if [ "$force" -eq 0 ] && [ -n "$old_id" ] && [ "$(image_label "$primary")" = "$hash" ]; then
        for tag in "${tags[@]:1}"; do
            [ "$(image_id "$tag")" = "$old_id" ] || docker tag "$primary" "$tag"
        done
        say "$primary: up to date"
        return 0
    fi
    start=$SECONDS
    log="$work/$image.build.log"
    local no_cache=()
    [ "$force" -eq 1 ] && no_cache=(--no-cache)
    if ! docker build "${no_cache[@]}" --label "$HASH_LABEL=$hash" -t "$primary" "$ctx" >"$log" 2>&1; then
        cat "$log" >&2
        mkube_die "docker build of $primary failed"
    fi
    for tag in "${tags[@]:1}"; do
        docker tag "$primary" "$tag"
    done
    new_id=$(image_id "$primary")
    # Drop the replaced image if nothing else refers to it (ignore: a container may use it).
    if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
        docker rmi "$old_id" >/dev/null 2>&1 || true
    fi
    say "$primary: built in $((SECONDS - start)) s (${new_id:7:12})"
}

push_one() {
    local image=$1 name ref log tags
    name=$(pushed_as "$image")
    [ -n "$name" ] || return 0
    ref="$push_registry/$name"
    read -r -a tags <<<"$(tags_of "$image")"
    docker tag "${tags[0]}" "$ref"
    log="$work/$image.push.log"
    if ! docker push "$ref" >"$log" 2>&1; then
        cat "$log" >&2
        mkube_die "docker push $ref failed (is the registry running? scripts/registry.sh status)"
    fi
    say "$ref: pushed"
}

for image in "${IMAGES[@]}"; do
    build_one "$image"
done
if [ -n "$push_registry" ]; then
    for image in "${IMAGES[@]}"; do
        push_one "$image"
    done
fi
