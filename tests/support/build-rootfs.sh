#!/bin/sh
# Builds (once) the Debian bookworm root filesystem that test targets boot from: minbase plus
# openssh-server and sudo, a login user `kiln` whose shell is /bin/sh, passwordless sudo.
# Usage: build-rootfs.sh [DEST [EXTRA_PACKAGES]]
#   (default DEST: $KILN_TEST_ROOTFS or /var/cache/kiln-test/bookworm; the benchmark builds a
#   variant with python3 because ansible-core needs it on targets; kiln never does)
set -eu
dest=${1:-${KILN_TEST_ROOTFS:-/var/cache/kiln-test/bookworm}}
extra=${2:-}
[ -f "$dest/.kiln-ready" ] && exit 0
mkdir -p "$(dirname "$dest")"
exec 9>"$dest.lock"
flock 9
[ -f "$dest/.kiln-ready" ] && exit 0

# The mirror the machine's own apt sources name (no other network is assumed).
mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 ~ /bookworm$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian

tmp="$dest.tmp"
rm -rf "$tmp"
echo "building the test rootfs in $dest from $mirror (about a minute, once)" >&2
debootstrap --variant=minbase --include=openssh-server,sudo,ca-certificates${extra:+,$extra} \
    bookworm "$tmp" "$mirror" >"$dest.log" 2>&1 || { tail -20 "$dest.log" >&2; exit 1; }
# Daemons installed into a target must never start on the host's network.
printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
chmod 755 "$tmp/usr/sbin/policy-rc.d"
chroot "$tmp" useradd --create-home --shell /bin/sh kiln
chroot "$tmp" usermod -p '*' kiln
echo 'kiln ALL=(ALL) NOPASSWD:ALL' >"$tmp/etc/sudoers.d/kiln"
chmod 440 "$tmp/etc/sudoers.d/kiln"
printf '127.0.0.1 localhost target\n::1 localhost\n' >"$tmp/etc/hosts"
echo target >"$tmp/etc/hostname"
rm -f "$tmp"/var/cache/apt/archives/*.deb
touch "$tmp/.kiln-ready"
rm -rf "$dest"
mv "$tmp" "$dest"
echo "test rootfs ready: $dest" >&2
