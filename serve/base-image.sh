#!/usr/bin/env bash
# A Python 3.11 base image made from Debian packages, for machines that reach Debian's mirror but
# not Docker Hub (so `FROM python:3.11-slim-bookworm` cannot be pulled). Needs root, debootstrap
# and podman:
#   apt-get install -y podman debootstrap
#   bash serve/base-image.sh                       # -> localhost/debian-python:3.11-bookworm
#   podman build --format docker --build-arg BASE_IMAGE=localhost/debian-python:3.11-bookworm .
#   FINSLM_BASE_IMAGE=localhost/debian-python:3.11-bookworm pytest -m slow tests/serve -k container
set -euo pipefail
tag="${1:-localhost/debian-python:3.11-bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
rootfs="$(mktemp -d)"
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" "$mirror"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | podman import - "$tag"
echo "built $tag"
