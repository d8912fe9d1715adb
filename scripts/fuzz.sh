#!/usr/bin/env bash
# Builds the libFuzzer targets (Fuzz/, declared in Package.swift when FNHOST_FUZZ=1) with
# `--sanitize fuzzer` in their own build directory, then runs each for FUZZ_SECONDS, starting
# from its seeds (Fuzz/Seeds/<Target>). Exits non-zero on the first crash, leak of the time
# budget or trap; the input that did it is in .build/fuzz/crashes/. See Fuzz/README.md.
#
#   scripts/fuzz.sh                      every target, FUZZ_SECONDS (default 20) each
#   scripts/fuzz.sh FuzzFrame            one target
#   scripts/fuzz.sh FuzzFrame crash-...  replay an input (a crash, or a unit test's bytes)
set -euo pipefail
cd "$(dirname "$0")/.."

SWIFT=${SWIFT:-swift}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
SCRATCH=.build/fuzz
TARGETS=(FuzzTaskMessage FuzzRedisEnvelope FuzzCanvasSignature FuzzPluginManifest FuzzFrame FuzzSecurePayload)
if [ $# -ge 1 ]; then TARGETS=("$1"); shift; fi

export FNHOST_FUZZ=1 SWIFT_BACKTRACE=enable=no
for target in "${TARGETS[@]}"; do
  echo "== build $target"
  $SWIFT build --scratch-path "$SCRATCH" --sanitize fuzzer --product "$target" 2>&1 | grep -v "^\[\|warning: Cannot export" || true
  [ -x "$SCRATCH/debug/$target" ] || { echo "fuzz: $target did not build" >&2; exit 1; }
done

if [ $# -ge 1 ]; then exec "$SCRATCH/debug/${TARGETS[0]}" "$@"; fi

mkdir -p "$SCRATCH/crashes"
for target in "${TARGETS[@]}"; do
  corpus="$SCRATCH/corpus/$target"   # what this run finds; the committed seeds stay as they are
  mkdir -p "$corpus"
  echo "== fuzz $target for ${FUZZ_SECONDS}s"
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb: a decoder must not balloon.
  if ! "$SCRATCH/debug/$target" "$corpus" "Fuzz/Seeds/$target" \
      -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -artifact_prefix="$SCRATCH/crashes/$target-" -print_final_stats=1 >"$SCRATCH/$target.log" 2>&1; then
    tail -n 40 "$SCRATCH/$target.log" >&2
    echo "fuzz: $target failed; the input is in $SCRATCH/crashes/ (replay: scripts/fuzz.sh $target FILE)" >&2
    exit 1
  fi
  grep -E "^stat::number_of_executed_units|^Done" "$SCRATCH/$target.log" | tr '\n' ' '; echo
done
