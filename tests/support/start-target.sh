#!/bin/sh
# Starts one throwaway target: an overlay over the cached rootfs, in private mount, PID and
# UTS namespaces, with a real sshd chrooted as PID 1 listening on ADDR:22.
# Usage: start-target.sh DIR ADDR AUTHORIZED_KEYS_FILE [HOST_KEY]
# KILN_TEST_SSHD_LOG_LEVEL sets sshd's LogLevel (DEBUG1 logs the negotiated algorithms);
# KILN_TEST_SSHD_PASSWORD_AUTH=yes lets users log in with a password.
# Runs in the foreground; SIGKILL it (or its process group) to tear everything down.
set -eu
dir=$1 addr=$2 keys=$3 hostkey=${4:-}
rootfs=${KILN_TEST_ROOTFS:-/var/cache/kiln-test/bookworm}
mkdir -p "$dir/upper/etc/kiln" "$dir/work" "$dir/merged"
cp "$keys" "$dir/upper/etc/kiln/authorized_keys"
keyline="HostKey /etc/ssh/ssh_host_ed25519_key"
if [ -n "$hostkey" ]; then
    cp "$hostkey" "$dir/upper/etc/kiln/host_key"
    chmod 600 "$dir/upper/etc/kiln/host_key"
    keyline="HostKey /etc/kiln/host_key"
fi
cat >"$dir/upper/etc/kiln/sshd_config" <<CONF
ListenAddress $addr:22
$keyline
PidFile /run/sshd.pid
AuthorizedKeysFile /etc/kiln/authorized_keys
StrictModes no
PasswordAuthentication ${KILN_TEST_SSHD_PASSWORD_AUTH:-no}
KbdInteractiveAuthentication no
UsePAM no
Subsystem sftp /usr/lib/openssh/sftp-server
MaxSessions 64
MaxStartups 100:30:200
LogLevel ${KILN_TEST_SSHD_LOG_LEVEL:-INFO}
CONF
exec unshare --mount --pid --uts --fork --kill-child --propagation private /bin/sh -c '
    set -e
    m="$1/merged"
    mount -t overlay overlay -o "lowerdir=$2,upperdir=$1/upper,workdir=$1/work" "$m"
    mount -t proc proc "$m/proc"
    mount --rbind /dev "$m/dev"
    mount -t tmpfs tmpfs "$m/run"
    mount -t tmpfs tmpfs "$m/tmp"
    mkdir -p "$m/run/sshd"
    hostname target
    exec chroot "$m" /usr/sbin/sshd -D -e -f /etc/kiln/sshd_config
' start-target "$dir" "$rootfs"
