#!/usr/bin/env bash
# Measures how fast connected workers rejoin a coordinator restarted with --resume after a
# SIGKILL (default tunables). Its workers are slowed by a fault hook, so it needs the
# fault-injection build (`swift build -c release --product ssgd-faults`).
# Usage: tools/measure_coordinator_restart.sh [path/to/ssgd-faults]
set -euo pipefail
SSGD=${1:-.build/release/ssgd-faults}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cat > "$work/config.yaml" <<YAML
name: restart
model: mlp
hidden: [64, 64]
dataset: synthetic
synthetic_shape: [1, 8, 8]
synthetic_classes: 4
synthetic_train_samples: 2048
synthetic_test_samples: 256
batch_size: 256
ghost_batch: 32
epochs: 10
eval_every_epochs: 0
checkpoint_every_steps: 10
progress_seconds: 0.5
YAML
stamp() { while IFS= read -r line; do printf '%s %s\n' "$(date +%s.%N)" "$line"; done; }
endpoint="ipc://$work/c.sock"
"$SSGD" coordinator --config "$work/config.yaml" --run-dir "$work/run" --bind "$endpoint" --workers 2 --threads 1 > "$work/first.log" 2>&1 &
first=$!
for k in 1 2; do SSGD_TEST_WORKER_DELAY_MS=100 "$SSGD" worker --connect "$endpoint" --name "w$k" --threads 1 > "$work/w$k.log" 2>&1 & done
until ls "$work/run/checkpoints/"step-000000020.ckpt >/dev/null 2>&1; do sleep 0.05; done
kill -9 "$first"
sleep 1
restarted=$(date +%s.%N)
"$SSGD" coordinator --resume "$work/run" --bind "$endpoint" --workers 2 --threads 1 2>&1 | stamp > "$work/second.log"
joined=$(grep "joined (2 live)" "$work/second.log" | head -1 | cut -d' ' -f1)
echo "restart → both workers rejoined: $(echo "$joined - $restarted" | bc) s"
grep -E "resumed from|joined|done:" "$work/second.log" | cut -d' ' -f2-
