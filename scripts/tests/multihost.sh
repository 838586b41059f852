#!/bin/sh
# Emulated hosts on one machine, for scripts/tests/check_multihost.py and
# scripts/bench/allreduce-across-hosts (needs root or CAP_NET_ADMIN).
#
#   multihost.sh up N          N (2-8) network namespaces dpth-h1..dpth-hN joined by the bridge
#                              dpth-br through veth pairs; host i is 10.231.0.(10+i)/24
#   multihost.sh rate RATE     tbf limit on every veth, both directions (e.g. 1gbit, 10gbit);
#                              "none" removes it
#   multihost.sh down          remove every dpth-* namespace and link (also leftovers of a crash)
#   multihost.sh exec HOST CMD...  run CMD in host HOST (dpth-hI) with its own hostname
#   multihost.sh ip I          the address of host I
#   multihost.sh rsh ADDR CMD...   Open MPI's plm_rsh_agent: like `ssh ADDR CMD`, the words of CMD
#                              joined are a shell command, run in the host that owns ADDR
#
# Everything is named dpth-* and addressed in 10.231.0.0/24 so that teardown can never touch
# anything else on the machine and no traffic can leave the emulated hosts.
set -eu

PREFIX=dpth
SUBNET=10.231.0
BRIDGE=$PREFIX-br

die() { echo "multihost.sh: $*" >&2; exit 1; }

address() { echo "$SUBNET.$((10 + $1))"; }

hosts() { ip netns list | awk '{print $1}' | grep "^$PREFIX-h[0-9]*$" || true; }

# A fresh UTS namespace per command, because a persistent one would need a bind-mounted
# namespace file per host that teardown must also track; the hostname is all MPI looks at.
in_host() {
    host=$1; shift
    exec ip netns exec "$host" unshare --uts sh -c 'hostname "$0" && exec "$@"' "$host" "$@"
}

down() {
    # A namespace outlives its name while a process is in it; only our own runs are in these.
    for host in $(hosts); do
        for pid in $(ip netns pids "$host"); do kill -KILL "$pid" 2>/dev/null || true; done
        ip netns delete "$host"
    done
    for link in $(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep "^$PREFIX-" || true); do
        ip link delete "$link" 2>/dev/null || true
    done
}

up() {
    count=$1
    case $count in [2-8]) ;; *) die "up: host count must be 2 to 8, got '$count'" ;; esac
    down
    ip link add "$BRIDGE" type bridge
    ip link set "$BRIDGE" up
    i=1
    while [ "$i" -le "$count" ]; do
        host=$PREFIX-h$i
        ip netns add "$host"
        ip -n "$host" link set lo up
        ip link add "$PREFIX-v$i" type veth peer name eth0 netns "$host"
        ip link set "$PREFIX-v$i" master "$BRIDGE" up
        ip -n "$host" addr add "$(address "$i")/24" dev eth0
        ip -n "$host" link set eth0 up
        i=$((i + 1))
    done
}

# tbf on the host side shapes what a host sends and on the bridge side what it receives, as a
# full-duplex NIC of that speed would. The burst is 1 ms at the rate and at least 256 KiB: below
# a few 64 KiB GSO super-packets tbf splits them and falls well short of the rate. The queue is
# 2 ms deep, like a NIC's: a deep one (tbf's usual 50-100 ms) holds each host's ACKs behind its
# own allreduce traffic and halves the throughput of the two-way exchange (measured at 1 Gbit/s).
rate() {
    limit=$1
    if [ "$limit" != none ]; then
        bits=$(echo "$limit" | awk '{ v = $0 + 0; u = tolower($0); sub(/^[0-9.]+/, "", u);
            m = u == "gbit" ? 1e9 : u == "mbit" ? 1e6 : u == "kbit" ? 1e3 : -1;
            if (m < 0 || v <= 0) exit 1; printf "%d", v * m }') \
            || die "rate: '$limit' is not a rate like 1gbit, 500mbit or none"
        burst=$((bits / 8 / 1000)); [ "$burst" -lt 262144 ] && burst=262144
    fi
    for host in $(hosts); do
        for side in "ip netns exec $host tc qdisc @ dev eth0" "tc qdisc @ dev $PREFIX-v${host#"$PREFIX-h"}"; do
            # shellcheck disable=SC2086
            $(echo "$side" | sed 's/@/del/') root 2>/dev/null || true
            [ "$limit" = none ] && continue
            # shellcheck disable=SC2086
            $(echo "$side" | sed 's/@/add/') root tbf rate "$limit" burst "$burst" latency 2ms
        done
    done
}

# ssh semantics: the remaining words form one shell command line for the remote side.
rsh() {
    addr=$1; shift
    i=$(( ${addr##*.} - 10 ))
    case $addr in "$SUBNET".*) ;; *) die "rsh: $addr is not an emulated host address" ;; esac
    ip netns list | grep -q "^$PREFIX-h$i\b" || die "rsh: no emulated host owns $addr"
    in_host "$PREFIX-h$i" sh -c "$*"
}

[ $# -ge 1 ] || die "usage: multihost.sh up N | rate RATE | down | exec HOST CMD... | ip I | rsh ADDR CMD..."
command=$1; shift
case $command in
    up) [ $# -eq 1 ] || die "usage: multihost.sh up N"; up "$1" ;;
    down) down ;;
    rate) [ $# -eq 1 ] || die "usage: multihost.sh rate RATE|none"; rate "$1" ;;
    exec) [ $# -ge 2 ] || die "usage: multihost.sh exec HOST CMD..."; host=$1; shift; in_host "$host" "$@" ;;
    ip) [ $# -eq 1 ] || die "usage: multihost.sh ip I"; address "$1" ;;
    rsh)
        # Open MPI passes ssh-style options before the host when told to; none are needed here.
        while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do shift; done
        [ $# -ge 2 ] || die "usage: multihost.sh rsh ADDR CMD..."; rsh "$@" ;;
    *) die "unknown command '$command'" ;;
esac
