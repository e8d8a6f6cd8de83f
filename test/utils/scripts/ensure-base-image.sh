#!/usr/bin/env bash
# Creates an offline stand-in for `debian:bookworm-slim` so Dockerfiles that start
# `FROM debian:bookworm-slim` build on a machine that cannot reach Docker Hub.
# The root filesystem comes from debootstrap against the machine's own apt mirror, then
# `docker import` turns it into an image. Reused when the tag already exists.
set -euo pipefail

tag="${MP_TEST_BASE_IMAGE:-debian:bookworm-slim}"
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag: present"
  exit 0
fi

# The mirror apt already uses here (deb822 or one-line sources), else Debian's default.
# Only live lines count: `URIs:` (deb822) and `deb URL` (one-line); comments may name snapshot mirrors.
mirror="$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
  grep -oE 'https?://[^ ]+/debian/?' | grep -v security | head -n1 || true)"
mirror="${MP_TEST_DEBIAN_MIRROR:-${mirror:-http://deb.debian.org/debian}}"

if ! command -v debootstrap >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

root="$(mktemp -d /tmp/mp-base-rootfs.XXXXXX)"
trap 'rm -rf "$root"' EXIT
echo "base image $tag: debootstrap bookworm from $mirror (a few minutes, once per machine)"
debootstrap --variant=minbase bookworm "$root" "$mirror" >/tmp/mp-debootstrap.log 2>&1 || {
  echo "debootstrap failed; see /tmp/mp-debootstrap.log" >&2
  exit 1
}
# Like the official slim image: no apt caches, sources pointing at the same mirror.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
echo "deb $mirror bookworm main" >"$root/etc/apt/sources.list"
tar -C "$root" -c . | docker import --change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' - "$tag" >/dev/null
echo "base image $tag: created"
