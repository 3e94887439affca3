#!/bin/sh
# Tears down a target start-systemd-target.sh booted: kills every process of its cgroup
# (nspawn, the container's systemd and its services), removes the cgroups and the network
# namespace (which takes the veth pair with it). Safe to run twice.
# Usage: stop-systemd-target.sh NAME
set -u
name=$1
unified=/sys/fs/cgroup/unified/kiln/$name
if [ -d "$unified" ]; then
    echo 1 >"$unified/cgroup.kill" 2>/dev/null
    i=0
    while [ -n "$(find "$unified" -name cgroup.procs -exec cat {} + 2>/dev/null)" ] && [ $i -lt 100 ]; do
        sleep 0.05
        i=$((i + 1))
    done
fi
for hierarchy in unified systemd; do
    cg=/sys/fs/cgroup/$hierarchy/kiln/$name
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
done
ip netns del "$name" 2>/dev/null
exit 0
