#!/usr/bin/env bash
# A cluster of hosts on one machine, for trying hpo across a real network by
# hand: the same layout as the test bed the cluster tests build
# (tests/cluster/bed.h). Needs root, iproute2 and util-linux.
#
#   testbed.sh up N              a switch and N+1 hosts: "s" (the scheduler's,
#                                198.18.0.1) and "a1".."aN" (198.18.0.11, .12, ...)
#   testbed.sh run HOST CMD...   runs CMD on HOST (its network, its own hostname)
#   testbed.sh link HOST up|down plugs or pulls HOST's cable
#   testbed.sh down              kills what runs on the hosts and removes them
#
# Each host is a network namespace "$HPO_BED-<host>" (HPO_BED defaults to "hpo")
# with one veth cable to a bridge in the namespace "$HPO_BED-sw". 198.18.0.0/15 is
# reserved for network benchmarks; no host has a default route or any other
# link, so nothing the hosts send leaves the bed.
set -euo pipefail

bed=${HPO_BED:-hpo}
sw="$bed-sw"

die() { echo "testbed.sh: $*" >&2; exit 2; }
exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }

address() {  # host name -> its address
  case $1 in
    s) echo 198.18.0.1 ;;
    a[1-9] | a[1-9][0-9]) echo "198.18.0.$((10 + ${1#a}))" ;;
    *) die "no host '$1': hosts are s, a1, a2, ..." ;;
  esac
}

add_host() {
  local host=$1 ns="$bed-$1"
  ip netns add "$ns"
  ip -n "$sw" link add "p-$host" type veth peer name eth0 netns "$ns"
  ip -n "$sw" link set "p-$host" master br0 up
  ip -n "$ns" addr add "$(address "$host")/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
}

down() {
  local ns pid
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^$bed-(s|sw|a[0-9]+)$" || true); do
    for pid in $(ip netns pids "$ns"); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns"
  done
}

[[ $(id -u) == 0 ]] || die "needs root (network namespaces and veth pairs)"
case ${1:-} in
  up)
    n=${2:?usage: testbed.sh up N}
    [[ $n =~ ^[1-9][0-9]?$ ]] || die "N must be 1..99, not '$n'"
    exists "$sw" && die "a bed named '$bed' is up already: testbed.sh down first"
    trap 'down' ERR
    ip netns add "$sw"
    ip -n "$sw" link add br0 type bridge
    ip -n "$sw" link set br0 up
    add_host s
    for ((i = 1; i <= n; ++i)); do add_host "a$i"; done
    trap - ERR
    echo "hosts: s=198.18.0.1$(for ((i = 1; i <= n; ++i)); do printf ' a%d=%s' "$i" "$(address "a$i")"; done)"
    ;;
  run)
    host=${2:?usage: testbed.sh run HOST CMD...}
    shift 2
    (($#)) || die "usage: testbed.sh run HOST CMD..."
    address "$host" >/dev/null
    exists "$bed-$host" || die "host '$host' is not up (testbed.sh up N)"
    # sh's $0 is the hostname; "$@" the command.
    exec ip netns exec "$bed-$host" unshare --uts sh -c 'hostname "$0" && exec "$@"' \
      "$bed-$host" "$@"
    ;;
  link)
    host=${2:?usage: testbed.sh link HOST up|down}
    state=${3:?usage: testbed.sh link HOST up|down}
    [[ $state == up || $state == down ]] || die "link state is up or down, not '$state'"
    address "$host" >/dev/null
    ip -n "$sw" link set "p-$host" "$state"
    ;;
  down) down ;;
  *) die "usage: testbed.sh up N | run HOST CMD... | link HOST up|down | down" ;;
esac
