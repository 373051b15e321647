#!/usr/bin/env bash
# bench.sh: what does a request cost on our FUSE binding, next to fuse-native
# and to a kernel filesystem?
#
# Mounts, one after the other, memfs-lowlevel.js (native/, libfuse 3
# lowlevel), memfs-fuse-native.js (fuse-native 2.2.6, libfuse 2, with and
# without big writes) and tmpfs, and on each runs:
#   - reqloop stat:   N stat() calls on distinct missing names (one lookup each)
#   - reqloop create: N creates + closes (lookup, create, flush, release)
#   - reqloop unlink: N unlinks
#   - dd: 1 GiB written with bs=1M conv=fsync
# ROUNDS times, printing every round and then the median per filesystem.
#
# Run as root from anywhere, after npm install:
#   scripts/ref/bench.sh [N=20000] [ROUNDS=3] [GIB=1]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
N=${1:-20000}
ROUNDS=${2:-3}
GIB=${3:-1}
WORK=$(mktemp -d /tmp/cudele-bench-XXXXXX)
MNT=$WORK/mnt
mkdir -p "$MNT"
gcc -O2 -o "$WORK/reqloop" "$ROOT/scripts/ref/reqloop.c"
SERVER=
RESULTS=$WORK/results

cleanup () {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; fi
  sleep 0.3
  if mountpoint -q "$MNT"; then umount -l "$MNT" || true; fi
  if [ -n "$SERVER" ]; then kill -9 "$SERVER" 2>/dev/null || true; fi
  SERVER=
}
trap 'cleanup; rm -rf "$WORK"' EXIT

start () {
  local log=$WORK/server.log
  : > "$log"
  "$@" > "$log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do
    if grep -q '^ready' "$log"; then return 0; fi
    sleep 0.1
  done
  echo "server did not get ready: $(cat "$log")" >&2
  exit 1
}

suite () {
  local label=$1
  for r in $(seq 1 "$ROUNDS"); do
    local stat create unlink dd
    stat=$("$WORK/reqloop" stat "$MNT" "$N" | awk '{print $5}')
    mkdir "$MNT/c$r"
    create=$("$WORK/reqloop" create "$MNT/c$r" "$N" | awk '{print $5}')
    unlink=$("$WORK/reqloop" unlink "$MNT/c$r" "$N" | awk '{print $5}')
    rmdir "$MNT/c$r"
    dd=$(dd if=/dev/zero of="$MNT/big" bs=1M count=$((GIB * 1024)) conv=fsync 2>&1 | tail -1 |
         awk '{ for (i = 1; i <= NF; i++) if ($i == "s,") { print $(i - 1) } }')
    rm "$MNT/big"
    local mbs
    mbs=$(awk -v s="$dd" -v g="$GIB" 'BEGIN { printf "%.0f", g * 1073.741824 / s }')
    printf '%-22s round %d: stat %7s us  create %7s us  unlink %7s us  dd %6s MB/s\n' "$label" "$r" "$stat" "$create" "$unlink" "$mbs"
    echo "$label $stat $create $unlink $mbs" >> "$RESULTS"
  done
}

: > "$RESULTS"
echo "N=$N calls per loop, dd of $GIB GiB, $ROUNDS rounds; kernel $(uname -r)"

start node "$ROOT/scripts/ref/memfs-lowlevel.js" "$MNT"
suite "lowlevel"
cleanup

start node "$ROOT/scripts/ref/memfs-lowlevel.js" "$MNT" --max-write=131072
suite "lowlevel-128k"
cleanup

start node "$ROOT/scripts/ref/memfs-fuse-native.js" "$MNT" --big-writes
suite "fuse-native-big"
cleanup

start node "$ROOT/scripts/ref/memfs-fuse-native.js" "$MNT"
suite "fuse-native-4k"
cleanup

mount -t tmpfs -o size=$((GIB + 1))g tmpfs "$MNT"
suite "tmpfs"
umount "$MNT"

echo
echo "median per filesystem (microseconds per call; MB/s):"
printf '%-22s %10s %10s %10s %10s\n' fs stat create unlink dd
for fs in lowlevel lowlevel-128k fuse-native-big fuse-native-4k tmpfs; do
  med () { grep "^$fs " "$RESULTS" | awk -v c="$1" '{print $c}' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
  printf '%-22s %10s %10s %10s %10s\n' "$fs" "$(med 2)" "$(med 3)" "$(med 4)" "$(med 5)"
done
