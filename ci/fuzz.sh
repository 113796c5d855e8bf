#!/usr/bin/env bash
# Coverage-guided fuzzing in CI: every cargo-fuzz target of fuzz/ (libFuzzer, nightly) runs for
# FUZZ_SECONDS (default 30) on a copy of its committed corpus, so the corpus in git never grows
# by itself. A crash, an abort, a leak of memory past 2 GiB or an input taking over 10 s fails
# the run; libFuzzer saves the input under target/fuzz-artifacts/TARGET/ and prints how to
# replay it (docs/fuzzing.md). Called by ci/test.sh after cargo test.
#
# Needs the nightly toolchain (rustup) and cargo-fuzz, which is installed from crates.io into
# target/fuzz-tools the first time. Without nightly the run is skipped with a message, except
# under CI=true, where it fails.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${FUZZ_SECONDS:-30}"
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  if [ "${CI:-}" = true ]; then
    echo "ci/fuzz.sh: the nightly toolchain is missing (rustup toolchain install nightly)" >&2
    exit 1
  fi
  echo "== fuzzing skipped: no nightly toolchain (rustup toolchain install nightly)"
  exit 0
fi

root="$PWD/target"
tools="$root/fuzz-tools"
if [ ! -x "$tools/bin/cargo-fuzz" ]; then
  echo "== installing cargo-fuzz into target/fuzz-tools"
  cargo install --quiet --locked cargo-fuzz --version 0.13.2 --root "$tools"
fi
export PATH="$tools/bin:$PATH"
# The fuzz crate's own build directory, kept under target/ between runs.
export CARGO_TARGET_DIR="$root/fuzz-build"

cd fuzz
# No sanitizer: the code is safe Rust, and what the targets look for (panics, aborts, hangs,
# unbounded memory) libFuzzer catches without one. Optimised at level 1 with debug assertions
# (so arithmetic overflow panics, as in the tests). cargo-fuzz compiles with one codegen unit
# by default, which leaves one of two cores idle while the piimage crate builds (3.7 min of
# the 8 measured); 16 units build it in parallel, for somewhat slower runs. Level 3 takes far
# longer; a dev build runs the ext4 target 30 times slower.
export CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_DEBUG=false
flags=(--sanitizer none -O -a --codegen-units 16)
echo "== cargo fuzz build"
cargo +nightly fuzz build "${flags[@]}"

failed=()
for target in $(cargo +nightly fuzz list); do
  work="$root/fuzz-corpus/$target"
  artifacts="$root/fuzz-artifacts/$target"
  rm -rf "$work"
  mkdir -p "$work" "$artifacts"
  cp -r "corpus/$target/." "$work/"
  echo "== fuzzing $target for ${secs}s ($(find "$work" -type f | wc -l) seeds)"
  if ! cargo +nightly fuzz run "${flags[@]}" "$target" "$work" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" 2>"$root/fuzz-$target.log"; then
    tail -n 40 "$root/fuzz-$target.log" >&2
    failed+=("$target")
  else
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done)' \
      "$root/fuzz-$target.log" || true
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "ci/fuzz.sh: crashes in ${failed[*]}; inputs under target/fuzz-artifacts/" >&2
  exit 1
fi
echo "== fuzzing: no crash in ${secs}s per target"
