#!/bin/sh
# Builds (once) the rootfs for modules that drive a target's own tools (git, curl, pip, rsync): the
# plain test rootfs plus those packages, installed from the machine's mirror.
# Usage: build-net-rootfs.sh DEST
set -eu
dest=$1
[ -f "$dest/.kiln-net-ready" ] && [ -x "$dest/usr/bin/rsync" ] && exit 0
"$(dirname "$0")/build-rootfs.sh" "$dest" python3
exec 9>"$dest.net.lock"
flock 9
[ -f "$dest/.kiln-net-ready" ] && [ -x "$dest/usr/bin/rsync" ] && exit 0
{
    chroot "$dest" apt-get update -q
    chroot "$dest" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        git curl rsync python3-pip python3-venv python3-wheel
} >"$dest.net.log" 2>&1 || { tail -20 "$dest.net.log" >&2; exit 1; }
rm -f "$dest"/var/cache/apt/archives/*.deb
touch "$dest/.kiln-net-ready"
