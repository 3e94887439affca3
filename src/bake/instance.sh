#!/bin/sh
# Boots one local instance: an overlay (LOWER, a colon-separated list, under DIR/upper) booted
# by systemd-nspawn in its own network namespace NAME (veth pair: HOST_ADDR on the host's end,
# ADDR inside, a /30) and its own cgroup `kiln/NAME`. Runs in the foreground; kiln tears it
# down (SIGTERM for a clean shutdown, then the cgroup is killed, the namespace deleted).
# Usage: instance.sh DIR NAME HOST_ADDR ADDR LOWER
set -eu
dir=$1 name=$2 host_addr=$3 addr=$4 lower=$5
mkdir -p "$dir/upper" "$dir/work" "$dir/merged"

ip netns add "$name"
ip link add "$name-h" type veth peer name "$name-c"
ip link set "$name-c" netns "$name"
ip addr add "$host_addr/30" dev "$name-h"
ip link set "$name-h" up
ip -n "$name" link set lo up
ip -n "$name" addr add "$addr/30" dev "$name-c"
ip -n "$name" link set "$name-c" up
ip -n "$name" route add default via "$host_addr"

if [ -d /sys/fs/cgroup/unified ]; then
    cgroups="/sys/fs/cgroup/systemd/kiln/$name /sys/fs/cgroup/unified/kiln/$name"
else
    cgroups="/sys/fs/cgroup/kiln/$name"
fi
for cg in $cgroups; do
    mkdir -p "$cg"
    echo $$ >"$cg/cgroup.procs"
done
# nspawn exits with 133 when the container reboots (`reboot` in a playbook): it is booted
# again over the same overlay. SIGTERM is passed on to nspawn (a clean poweroff) and ends
# the loop.
exec unshare --mount --propagation private /bin/sh -c '
    set -e
    mount -t overlay overlay -o "lowerdir=$2,upperdir=$1/upper,workdir=$1/work" "$1/merged"
    stopping=
    rc=133
    while [ "$rc" = 133 ] && [ -z "$stopping" ]; do
        SYSTEMD_NSPAWN_API_VFS_WRITABLE=network systemd-nspawn --quiet --boot \
            --directory="$1/merged" --register=no --keep-unit --capability=CAP_NET_ADMIN \
            --network-namespace-path="/run/netns/$3" --console=passive &
        child=$!
        trap "stopping=1; kill -TERM $child 2>/dev/null || true" TERM INT
        # A trapped signal ends `wait` early: wait again while nspawn still runs.
        while :; do
            wait "$child" && rc=0 || rc=$?
            kill -0 "$child" 2>/dev/null || break
        done
    done
    exit "$rc"
' instance "$dir" "$lower" "$name"
