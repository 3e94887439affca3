#!/bin/sh
# Tears down a target start-systemd-target.sh booted: kills every process of its cgroup
# (nspawn, the container's systemd and its services), removes the cgroups (hybrid or unified
# hierarchy) and the network namespace (which takes the veth pair with it). Safe to run twice.
# Usage: stop-systemd-target.sh NAME
set -u
name=$1
for killable in /sys/fs/cgroup/unified/kiln/$name /sys/fs/cgroup/kiln/$name; do
    [ -d "$killable" ] || continue
    echo 1 >"$killable/cgroup.kill" 2>/dev/null
    i=0
    while [ -n "$(find "$killable" -name cgroup.procs -exec cat {} + 2>/dev/null)" ] && [ $i -lt 100 ]; do
        sleep 0.05
        i=$((i + 1))
    done
done
for cg in /sys/fs/cgroup/unified/kiln/$name /sys/fs/cgroup/systemd/kiln/$name /sys/fs/cgroup/kiln/$name; do
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
done
ip netns del "$name" 2>/dev/null
exit 0
