#!/bin/sh
# Boots one throwaway systemd target the way kiln boots local instances (src/bake/instance.sh:
# an overlay booted by systemd-nspawn in its own network namespace NAME and cgroup), after
# placing the test's login key and pointing apt at REPO_URL (the local repository the test
# serves on HOST_ADDR). LOWER: the systemd rootfs, or an image's layers over it (colon-separated).
# Usage: start-systemd-target.sh DIR NAME HOST_ADDR ADDR AUTHORIZED_KEYS_FILE REPO_URL
# Runs in the foreground. Tear down with stop-systemd-target.sh NAME.
set -eu
dir=$1 name=$2 host_addr=$3 addr=$4 keys=$5 repo_url=$6
lower=${KILN_TEST_SYSTEMD_ROOTFS:-/var/cache/kiln-test/bookworm-systemd}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir/upper/etc/kiln" "$dir/upper/etc/apt"
cp "$keys" "$dir/upper/etc/kiln/authorized_keys"
printf 'deb [trusted=yes] %s/main ./\n' "$repo_url" >"$dir/upper/etc/apt/sources.list"
exec sh "$here/../../src/bake/instance.sh" "$dir" "$name" "$host_addr" "$addr" "$lower"
