#!/usr/bin/env bash
# The whole test suite, as README's second command: `bash ci/test.sh`.
# Installs the tools the tests use as oracles when they are missing (ci/install-test-tools.sh:
# apt-get and pip, needs root or sudo), builds the bootable test images (cached in
# target/bootable), then runs
# `cargo test --workspace --locked`, then the coverage-guided fuzzing (ci/fuzz.sh, 30 s per
# target; PIIMAGE_FUZZ=0 skips it). Extra arguments go to cargo test (e.g. a test name), and
# then the fuzzing is skipped.
# .ci/run (CI) calls this script after cargo fmt and clippy.
set -euo pipefail
cd "$(dirname "$0")/.."

bash ci/install-test-tools.sh --if-missing
export PATH="$PATH:/usr/sbin:/sbin"

# The bootable test images (a few minutes each, cached in target/bootable): built here, before
# the tests, so their build shows in the log on its own and the boot tests only boot. They need
# root; without it the boot tests say so and pass (except under CI=true, where they fail).
if [ "$(id -u)" -eq 0 ]; then
  echo "== bootable test images (cargo xtask bootable)"
  cargo run -q --locked -p xtask -- bootable
fi

echo "== cargo test --workspace --locked"
cargo test --workspace --locked "$@"

if [ "${PIIMAGE_FUZZ:-1}" != 0 ] && [ "$#" -eq 0 ]; then
  bash ci/fuzz.sh
fi
