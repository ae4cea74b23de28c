#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz / libFuzzer) of the parsers that read untrusted input:
#   xmpp_stream  the XMPP stream reader and stanza parser (both framings, any chunking, render/reparse)
#   rack_params  the Rack query-string / form parser and the lenient parameter accessors
#   json_params  JSON bodies as a parameter tree and the same accessors
#   filters      the chat API's filter parser and `/{id1},{id2}` path segments
#
#   scripts/fuzz.sh [seconds-per-target] [target...]     (default 600 s, every target)
#
# Stable toolchain only: cargo-fuzz passes nightly-only flags (-Z..., -Cpasses=sancov-module), which
# RUSTC_BOOTSTRAP=1 lets a stable rustc accept. `--sanitizer none`: the crates forbid unsafe code, so
# AddressSanitizer would find little and halve the speed; libFuzzer still catches panics, overflows
# (debug assertions on), timeouts and memory blow-ups.
#
# Seeds (committed): fuzz/corpus/<target>/, written by fuzz/seeds/make_corpus.py from the SDK's traffic.
# What libFuzzer adds goes to fuzz/generated/<target>/ and crashes to fuzz/artifacts/<target>/ (both
# ignored by git); a crash makes this script fail, and becomes a unit test in the crate it belongs to.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(xmpp_stream rack_params json_params filters)

export RUSTC_BOOTSTRAP=1
# Own target folder: the sanitizer-coverage flags rebuild every dependency anyway.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/confab-target}/fuzz"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

flags=(--sanitizer none --release --debug-assertions)
cargo fuzz build "${flags[@]}"
for t in "${targets[@]}"; do
  mkdir -p "generated/$t" "artifacts/$t"
  echo "== fuzz $t for ${secs}s =="
  # Seeds are read from corpus/ but new inputs are written to generated/ only (the first folder).
  cargo fuzz run "${flags[@]}" "$t" "generated/$t" "corpus/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 2>&1 |
    grep -E '^(#[0-9]+\s+DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|==[0-9]+==|SUMMARY|thread .* panicked|Test unit written|INFO: seed corpus|Done [0-9]+ runs)' || true
  # grep hides libFuzzer's progress lines; the exit status is libFuzzer's.
  if [ "${PIPESTATUS[0]}" -ne 0 ]; then
    echo "fuzz $t: crash, see fuzz/artifacts/$t/" >&2
    exit 1
  fi
done
