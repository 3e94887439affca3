#!/bin/sh
# Builds (once) the root filesystem systemd test targets boot from, and the local apt
# repository they install packages from (the containers have no route to a mirror).
#   rootfs: the plain test rootfs plus systemd, dbus and cron, services allowed to start
#           (each container has its own network namespace), sshd reading /etc/kiln keys.
#   repo:   real Debian packages (nginx and small tools, with what they depend on) plus two
#           versions of a tiny package `kiln-demo` for state=latest, as flat repositories
#           `main/` (kiln-demo 1.0) and `updates/` (kiln-demo 2.0).
# Usage: build-systemd-rootfs.sh [DEST [REPO [EXTRA_PACKAGES]]]
#   (defaults: /var/cache/kiln-test/bookworm-systemd, /var/cache/kiln-test/apt-repo; the
#   compatibility suite builds a variant with python3, which ansible-core needs on targets)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:-/var/cache/kiln-test/bookworm-systemd}
repo=${2:-/var/cache/kiln-test/apt-repo}
extra=${3:-}
[ -f "$dest/.kiln-systemd-ready" ] && [ -f "$repo/.kiln-ready" ] && exit 0
mkdir -p "$(dirname "$dest")"
exec 8>"$dest.systemd.lock"
flock 8
[ -f "$dest/.kiln-systemd-ready" ] && [ -f "$repo/.kiln-ready" ] && exit 0

"$here/build-rootfs.sh" "$dest" systemd,systemd-sysv,dbus,cron,procps,iproute2${extra:+,$extra}

# Packages the tests install, downloaded with their dependencies as the fresh rootfs needs them.
repo_packages="nginx hello tree"
rm -rf "$repo.tmp"
mkdir -p "$repo.tmp/main" "$repo.tmp/updates"
rm -f "$dest"/var/cache/apt/archives/*.deb
chroot "$dest" apt-get update -qq >/dev/null
chroot "$dest" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --download-only \
    --no-install-recommends $repo_packages >/dev/null
mv "$dest"/var/cache/apt/archives/*.deb "$repo.tmp/main/"
rm -rf "$dest"/var/lib/apt/lists/*
touch -d @0 "$dest/var/lib/apt/lists"

# kiln-demo: a package that only installs a file naming its version.
for version in 1.0 2.0; do
    pkg="$repo.tmp/build-$version"
    mkdir -p "$pkg/DEBIAN" "$pkg/usr/share/kiln-demo"
    echo "$version" >"$pkg/usr/share/kiln-demo/version"
    cat >"$pkg/DEBIAN/control" <<CONTROL
Package: kiln-demo
Version: $version
Architecture: all
Maintainer: kiln tests <tests@kiln.invalid>
Description: kiln test package, version $version
CONTROL
    [ "$version" = 1.0 ] && out=main || out=updates
    dpkg-deb --root-owner-group -b "$pkg" "$repo.tmp/$out/kiln-demo_${version}_all.deb" >/dev/null
    rm -rf "$pkg"
done
for dir in main updates; do
    (cd "$repo.tmp/$dir" && dpkg-scanpackages --multiversion . /dev/null 2>/dev/null >Packages)
done
touch "$repo.tmp/.kiln-ready"
rm -rf "$repo"
mv "$repo.tmp" "$repo"

# Services start as on a real host: the container has its own network namespace.
rm -f "$dest/usr/sbin/policy-rc.d"
mkdir -p "$dest/etc/ssh/sshd_config.d"
cat >"$dest/etc/ssh/sshd_config.d/kiln.conf" <<CONF
AuthorizedKeysFile /etc/kiln/authorized_keys
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
MaxSessions 64
CONF
# The mirror is unreachable from inside; each container gets its own sources list.
rm -f "$dest/etc/apt/sources.list" "$dest"/etc/apt/sources.list.d/*
# Units that only slow a container's boot down.
for unit in systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer \
    e2scrub_all.timer fstrim.timer man-db.timer; do
    ln -sf /dev/null "$dest/etc/systemd/system/$unit"
done
touch "$dest/.kiln-systemd-ready"
echo "systemd test rootfs ready: $dest (apt repository: $repo)" >&2
