#!/usr/bin/env bash
# Measures how fast a coordinator detects a killed worker and finishes the step without it,
# with the default tunables (heartbeat_interval 1s, worker_timeout 5s) unless overridden.
# It needs the fault-injection build (`swift build -c release --product ssgd-faults`).
# Usage: tools/measure_failover.sh [path/to/ssgd-faults]   (default .build/release/ssgd-faults)
set -euo pipefail
SSGD=${1:-.build/release/ssgd-faults}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cat > "$work/config.yaml" <<YAML
name: failover
model: mlp
hidden: [256, 256]
dataset: synthetic
synthetic_shape: [1, 16, 16]
synthetic_classes: 10
synthetic_train_samples: 4096
synthetic_test_samples: 512
batch_size: 1024
ghost_batch: 128
epochs: 4
eval_every_epochs: 0
progress_seconds: 0.5
YAML
stamp() { while IFS= read -r line; do printf '%s %s\n' "$(date +%s.%N)" "$line"; done; }
endpoint="ipc://$work/c.sock"
"$SSGD" coordinator --config "$work/config.yaml" --run-dir "$work/run" --bind "$endpoint" --workers 2 --threads 1 2>&1 | stamp > "$work/coordinator.log" &
sleep 1
SSGD_TEST_WORKER_STALL_AT_STEP=5 "$SSGD" worker --connect "$endpoint" --name victim --threads 1 > "$work/victim.log" 2>&1 &
victim=$!
SSGD_TEST_WORKER_DELAY_MS=200 "$SSGD" worker --connect "$endpoint" --name survivor --threads 1 > "$work/survivor.log" 2>&1 &
until grep -q "stalling at step 5" "$work/victim.log"; do sleep 0.05; done
killed=$(date +%s.%N)
kill -9 "$victim"
until grep -q "re-issued" "$work/coordinator.log"; do sleep 0.05; done
wait %1 || true
detected=$(grep -m1 "declared dead" "$work/coordinator.log" | cut -d' ' -f1)
reissued=$(grep -m1 "re-issued" "$work/coordinator.log" | cut -d' ' -f1)
next=$(awk -v t="$reissued" '$1 > t && /step [0-9]+\/[0-9]+ epoch/ {print $1; exit}' "$work/coordinator.log")
echo "kill → declared dead: $(echo "$detected - $killed" | bc) s"
echo "kill → shard re-issued: $(echo "$reissued - $killed" | bc) s"
[ -n "$next" ] && echo "kill → next progress line (step done without it): $(echo "$next - $killed" | bc) s"
grep -E "declared dead|re-issued|done:" "$work/coordinator.log" | cut -d' ' -f2-
