#!/bin/sh
# Builds the Debian 12 base root filesystem local images start from: minbase plus systemd,
# dbus, OpenSSH, sudo and cron. Host keys are generated on each instance's first boot, not
# baked in. Usage: base-rootfs.sh DEST [MIRROR]
set -eu
dest=$1
mirror=${2:-}
if [ -z "$mirror" ]; then
    mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
    [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 ~ /bookworm$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
    [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
fi
mkdir -p "$(dirname "$dest")"
exec 9>"$dest.lock"
flock 9
[ -f "$dest/.kiln-base-ready" ] && exit 0
command -v debootstrap >/dev/null || { echo "debootstrap is needed to build the base image (apt-get install debootstrap)" >&2; exit 2; }
tmp="$dest.tmp"
rm -rf "$tmp"
mkdir -p "$(dirname "$dest")"
debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,openssh-server,sudo,ca-certificates,cron,procps,iproute2 \
    bookworm "$tmp" "$mirror" >"$dest.log" 2>&1 || { tail -20 "$dest.log" >&2; exit 1; }
rm -f "$tmp"/etc/ssh/ssh_host_*
cat >"$tmp/etc/systemd/system/kiln-ssh-host-keys.service" <<UNIT
[Unit]
Description=Generate this instance's SSH host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/kiln-ssh-host-keys.service "$tmp/etc/systemd/system/multi-user.target.wants/kiln-ssh-host-keys.service"
for unit in systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
    ln -sf /dev/null "$tmp/etc/systemd/system/$unit"
done
echo debian >"$tmp/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 debian\n::1 localhost\n' >"$tmp/etc/hosts"
rm -f "$tmp"/var/cache/apt/archives/*.deb
touch "$tmp/.kiln-base-ready"
rm -rf "$dest"
mv "$tmp" "$dest"
