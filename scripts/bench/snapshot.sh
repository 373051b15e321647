#!/usr/bin/env bash
# snapshot.sh: build a clean copy of one commit to benchmark, so that the
# figures belong to that commit and not to whatever the shared working tree
# (and its dist/, which anyone's `tsc` rewrites) holds while a long run goes on.
#
#   scripts/bench/snapshot.sh [COMMIT=HEAD] [DIR=/var/tmp/cudele-bench/tree-SHORTSHA]
#
# Exports COMMIT with git archive, links the repository's node_modules, copies
# its built native binding (native/build/Release/cudele_fuse.node; rebuild it
# first if native/ changed), compiles, and prints the directory. Then:
#
#   cd DIR && node dist/src/cli/main.js bench metadata --runs 5
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
COMMIT=$(git -C "$ROOT" rev-parse --short "${1:-HEAD}")
DIR=${2:-/var/tmp/cudele-bench/tree-$COMMIT}
rm -rf "$DIR"
mkdir -p "$DIR"
git -C "$ROOT" archive "$COMMIT" | tar -x -C "$DIR"
ln -s "$ROOT/node_modules" "$DIR/node_modules"
mkdir -p "$DIR/native/build/Release"
cp "$ROOT/native/build/Release/cudele_fuse.node" "$DIR/native/build/Release/"
# Not a git checkout: tell the report which commit it is.
echo "$COMMIT" > "$DIR/.bench-commit"
(cd "$DIR" && "$ROOT/node_modules/.bin/tsc" -p tsconfig.json)
echo "$DIR"
