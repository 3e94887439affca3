#!/bin/sh
# Boots one throwaway systemd target: an overlay over the systemd rootfs, booted by
# systemd-nspawn in its own network namespace NAME (a veth pair, HOST_ADDR on the host's
# side and ADDR inside, a /30) and its own cgroup `kiln/NAME`, with sshd on ADDR:22 and apt
# pointed at REPO_URL (the local repository, served on HOST_ADDR by the test).
# Usage: start-systemd-target.sh DIR NAME HOST_ADDR ADDR AUTHORIZED_KEYS_FILE REPO_URL
# Runs in the foreground. Tear down with stop-systemd-target.sh NAME.
set -eu
dir=$1 name=$2 host_addr=$3 addr=$4 keys=$5 repo_url=$6
rootfs=${KILN_TEST_SYSTEMD_ROOTFS:-/var/cache/kiln-test/bookworm-systemd}
mkdir -p "$dir/upper/etc/kiln" "$dir/upper/etc/apt" "$dir/work" "$dir/merged"
cp "$keys" "$dir/upper/etc/kiln/authorized_keys"
printf 'deb [trusted=yes] %s/main ./\n' "$repo_url" >"$dir/upper/etc/apt/sources.list"

ip netns add "$name"
ip link add "$name-h" type veth peer name "$name-c"
ip link set "$name-c" netns "$name"
ip addr add "$host_addr/30" dev "$name-h"
ip link set "$name-h" up
ip -n "$name" link set lo up
ip -n "$name" addr add "$addr/30" dev "$name-c"
ip -n "$name" link set "$name-c" up
ip -n "$name" route add default via "$host_addr"

# Each container in its own cgroup (else they share nspawn's `/payload`); the stop script
# kills the whole cgroup at once.
for hierarchy in systemd unified; do
    mkdir -p "/sys/fs/cgroup/$hierarchy/kiln/$name"
    echo $$ >"/sys/fs/cgroup/$hierarchy/kiln/$name/cgroup.procs"
done
exec unshare --mount --propagation private /bin/sh -c '
    set -e
    mount -t overlay overlay -o "lowerdir=$2,upperdir=$1/upper,workdir=$1/work" "$1/merged"
    # The network namespace belongs to the container alone: /proc/sys/net writable and
    # CAP_NET_ADMIN kept, so sysctl tests can set network keys as on a real host.
    SYSTEMD_NSPAWN_API_VFS_WRITABLE=network exec systemd-nspawn --quiet --boot --directory="$1/merged" --register=no --keep-unit \
        --capability=CAP_NET_ADMIN \
        --network-namespace-path="/run/netns/$3" --console=passive
' start-systemd-target "$dir" "$rootfs" "$name"
