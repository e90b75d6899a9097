#!/usr/bin/env bash
# Instructions per MCP call of two or more revisions, direct and through the gateway, in one run:
# builds each revision's benchmark binary (benches/gateway.rs, release) from a temporary worktree,
# then counts both under callgrind as instruction_ratio.sh does (axum echo, 4 clients, memory
# state, telemetry off), interleaved (A, B, A, B), and prints one row per revision and each
# revision's change against the first.
#
# The worktrees live in target/compare/src-<commit> (removed once built; this checkout's own HEAD,
# with nothing uncommitted, builds in place); all builds share the
# target directory target/compare, so dependencies are compiled once; each binary is kept as
# target/compare/bin/gateway-<commit>, and a revision whose binary is there is not built again.
# Revisions are commits: uncommitted changes are not measured.
#
# Usage: [N1=200] [N2=1200] [JOBS=1] bash examples/gateway/scripts/compare_builds.sh <rev-a> <rev-b> [<rev>...]
# e.g.   bash examples/gateway/scripts/compare_builds.sh b1c9250 HEAD
set -euo pipefail
cd "$(dirname "$0")/../../.."
repo=$(pwd)
[ $# -ge 2 ] || { sed -n 2,14p "$0"; exit 2; }
n1=${N1:-200}
n2=${N2:-1200}
work=$repo/target/compare
mkdir -p "$work/bin"

build() {
    local commit src
    commit=$(git rev-parse --verify "$1^{commit}")
    if [ ! -x "$work/bin/gateway-$commit" ]; then
        # This checkout's own commit, with nothing uncommitted, builds in place.
        src=$repo
        if [ "$commit" != "$(git rev-parse HEAD)" ] || [ -n "$(git status --porcelain --untracked-files=no)" ]; then
            src=$work/src-$commit
            git worktree add --detach --force "$src" "$commit" >/dev/null 2>&1
        fi
        local exe
        exe=$(cd "$src" && CARGO_TARGET_DIR=$work cargo bench -q --locked -p idjag-gateway \
            --features demo --bench gateway --no-run --message-format=json 2>/dev/null \
            | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "gateway" and m.get("executable"):
        print(m["executable"])')
        [ -n "$exe" ] || { echo "no benchmark binary for $1" >&2; exit 1; }
        cp "$exe" "$work/bin/gateway-$commit"
        [ "$src" = "$repo" ] || git worktree remove --force "$src"
    fi
    echo "$work/bin/gateway-$commit"
}

revs=("$@")
bins=()
for rev in "${revs[@]}"; do
    bins+=("$(build "$rev")")
done
echo "axum echo, 4 clients, runs of $n2 minus runs of $n1 calls; instructions per call"
echo
count() { # binary, path, calls
    IDJAG_BENCH_UPSTREAM=axum IDJAG_BENCH_ONLY=$2 IDJAG_BENCH_REQUESTS=$3 IDJAG_BENCH_CONCURRENCY=4 \
        valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" --bench 2>&1 \
        | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
# JOBS counts run at once (each count is one process's own instructions, whatever else runs).
counts=$(mktemp -d)
running=0
for path in direct gateway; do
    for n in "$n1" "$n2"; do
        for i in "${!revs[@]}"; do
            count "${bins[$i]}" "$path" "$n" > "$counts/$i.$path.$n" &
            running=$((running + 1))
            if [ "$running" -ge "${JOBS:-1}" ]; then wait -n; running=$((running - 1)); fi
        done
    done
done
wait
declare -A c
for f in "$counts"/*; do c[$(basename "$f")]=$(cat "$f"); done
rm -r "$counts"
echo "| build | direct | through the gateway | gateway's share | direct / gateway | gateway path vs first | share vs first |"
echo "|---|---|---|---|---|---|---|"
for i in "${!revs[@]}"; do
    awk -v r="${revs[$i]} ($(git rev-parse --short "${revs[$i]}"))" -v n="$((n2 - n1))" \
        -v d1="${c[$i.direct.$n1]}" -v d2="${c[$i.direct.$n2]}" -v g1="${c[$i.gateway.$n1]}" -v g2="${c[$i.gateway.$n2]}" \
        -v fd1="${c[0.direct.$n1]}" -v fd2="${c[0.direct.$n2]}" -v fg1="${c[0.gateway.$n1]}" -v fg2="${c[0.gateway.$n2]}" 'BEGIN {
        d = (d2 - d1) / n; g = (g2 - g1) / n; fd = (fd2 - fd1) / n; fg = (fg2 - fg1) / n
        printf "| %s | %d | %d | %d | %.3f | %+.1f %% | %+.1f %% |\n", r, d, g, g - d, d / g, (g - fg) * 100 / fg, ((g - d) - (fg - fd)) * 100 / (fg - fd)
    }'
done
