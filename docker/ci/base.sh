#!/usr/bin/env bash
# Build the local Debian base image that stands in for registry images here
# (no registry is reachable): debootstrap a minimal bookworm, put the host's
# CA certificates in (this network's TLS goes through a proxy whose CA only
# the host trusts: without it pip and apt-over-https fail inside builds),
# then `podman import` it.
#
# The rootfs tarball is cached outside the repository (CONDUIT_BASE_CACHE),
# keyed on this script's content, so a rerun only re-imports when needed.
set -euo pipefail

IMAGE=${CONDUIT_BASE_IMAGE:-localhost/conduit-base:bookworm}
CACHE=${CONDUIT_BASE_CACHE:-/var/cache/conduit-base}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Python 3.11 (bookworm's) is what the app needs (>= 3.11).
PACKAGES=ca-certificates,python3,python3-venv,python3-pip

key=$(sha256sum "$0" | cut -c1-12)
tarball=$CACHE/bookworm-$key.tar

if podman image exists "$IMAGE" &&
    [ "$(podman image inspect -f '{{index .Labels "conduit.base.key"}}' "$IMAGE")" = "$key" ]; then
    echo "base image $IMAGE is up to date ($key)"
    exit 0
fi

mkdir -p "$CACHE"
if [ ! -s "$tarball" ]; then
    rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    trap 'rm -rf "$rootfs"' EXIT
    echo "debootstrap bookworm into $rootfs (cold cache: a few minutes)"
    debootstrap --variant=minbase --include="$PACKAGES" bookworm "$rootfs" "$MIRROR" \
        > "$CACHE/debootstrap.log" 2>&1 || { tail -20 "$CACHE/debootstrap.log"; exit 1; }
    # Extra CAs go where update-ca-certificates keeps them if a later
    # `apt-get install` regenerates the bundle; the bundle itself as is.
    cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/" 2>/dev/null || true
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    cat > "$rootfs/etc/apt/sources.list" <<SOURCES
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SOURCES
    # Like the official images: no recommends, no docs, small layers.
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
        > "$rootfs/etc/apt/apt.conf.d/90conduit"
    # Packages installed in a build must not try to start their daemon.
    printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"
    chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
    chroot "$rootfs" apt-get clean
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
    tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    # Older tarballs (another key) are stale.
    find "$CACHE" -maxdepth 1 -name 'bookworm-*.tar' ! -name "bookworm-$key.tar" -delete
fi

podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change "LABEL conduit.base.key=$key" \
    --change 'CMD ["/bin/bash"]' \
    "$tarball" "$IMAGE" > /dev/null
echo "imported $IMAGE from $tarball"
