#!/usr/bin/env bash
# Fuzzes tollgate for a bounded time per target.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Default: 600 s for each of extract, jws, jwks, config, paths and dpop, one after
# another. FUZZ_PROFILE=dev builds unoptimised (half the build time, a
# fraction of the executions: for CI's smoke run, not for finding bugs). Works on the stable toolchain: cargo-fuzz passes `-Z` flags
# (AddressSanitizer, coverage), which stable rustc accepts under
# RUSTC_BOOTSTRAP=1. Installs cargo-fuzz (pinned) if it is missing.
#
# New inputs a run finds go to fuzz/work/corpus/<target>/ (not in git); the
# committed seeds (fuzz/corpus/<target>/) and crash regressions
# (fuzz/regressions/<target>/) are read only. A crash stops the target, and
# the script exits non-zero naming the reproducer under fuzz/artifacts/.
# To keep one: fix it, copy it to fuzz/regressions/<target>/, and
# `cargo test --test fuzz_corpus` replays it from then on. libFuzzer first
# runs every input of fuzz/work/corpus/<target>/ once, outside the time
# limit, so a short run after long ones takes longer. Two runs of one
# target at once share its log, fuzz/work/<target>.log: don't.
set -euo pipefail
cd "$(dirname "$0")"

CARGO_FUZZ_VERSION=0.13.1
ALL_TARGETS=(extract jws jwks config paths dpop)

seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")
if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
    echo "usage: fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 64
fi

# Longest input per target: a token up to server.max_token_bytes (16 KiB),
# request lines, JWKS and config documents a little over the seeds' size.
max_len() {
    case $1 in
        extract) echo 4096 ;;
        jws) echo 16384 ;;
        jwks) echo 16384 ;;
        config) echo 32768 ;;
        paths) echo 1024 ;;
        dpop) echo 8192 ;;
        *) echo "unknown target $1 (targets: ${ALL_TARGETS[*]})" >&2; exit 64 ;;
    esac
}
for target in "${targets[@]}"; do max_len "$target" >/dev/null; done

case ${FUZZ_PROFILE:-release} in
    release) profile=(--release --debug-assertions) ;;
    dev) profile=(--dev) ;;
    *) echo "FUZZ_PROFILE is release or dev" >&2; exit 64 ;;
esac

export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never

if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
    echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

echo "== build (AddressSanitizer, ${FUZZ_PROFILE:-release} with debug assertions)"
start=$(date +%s)
cargo fuzz build "${profile[@]}"
echo "built in $(( $(date +%s) - start )) s"

status=0
summary=()
for target in "${targets[@]}"; do
    work=work/corpus/$target
    log=work/$target.log
    mkdir -p "$work" "artifacts/$target"
    corpora=("$work" "corpus/$target")
    [ -d "regressions/$target" ] && corpora+=("regressions/$target")
    options=(
        -max_total_time="$seconds"
        -max_len="$(max_len "$target")"
        -rss_limit_mb=2048
        -timeout=10
        -print_final_stats=1
    )
    [ -f "dict/$target.dict" ] && options+=(-dict="dict/$target.dict")
    echo "== $target: ${seconds} s"
    start=$(date +%s)
    if cargo fuzz run "${profile[@]}" "$target" "${corpora[@]}" -- "${options[@]}" >"$log" 2>&1; then
        result=ok
    else
        result=CRASH
        status=1
    fi
    elapsed=$(( $(date +%s) - start ))
    runs=$(LC_ALL=C sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(LC_ALL=C sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    coverage=$(grep -a -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -n 1)
    corpus=$(find "$work" -type f | wc -l)
    line="$target: $result, ${elapsed} s, ${runs:-?} runs (${rate:-?}/s), ${coverage:-no coverage line}, $corpus inputs in $work"
    if [ $result = CRASH ]; then
        reproducer=$(LC_ALL=C sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        line="$line; reproducer: ${reproducer:-fuzz/artifacts/$target/ (see fuzz/$log)}"
        grep -a -m 5 -E 'panicked at|ERROR: AddressSanitizer|ERROR: libFuzzer' "$log" || true
    fi
    echo "$line"
    summary+=("$line")
done

echo "== summary"
printf '%s\n' "${summary[@]}"
exit $status
