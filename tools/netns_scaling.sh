#!/usr/bin/env bash
# Measures ssgd's step time over a rate-limited network, beside the cost model's predictions
# (issue 11 item 3, docs/scaling.md "Measured in network namespaces").
#
# Every process — the coordinator, each aggregator, each worker — runs in a network namespace of
# its own, linked by a veth pair to a bridge in a "switch" namespace. Each link is limited in both
# directions by tc tbf (the host's side shapes what it sends, the switch's side what it
# receives), and with --delay-ms by netem as well (half the delay on each side of a link, so
# host to host one way is --delay-ms; needs a kernel with sch_netem). For each worker count W it
# trains the same config twice: the star (W workers on the coordinator) and W workers under
# A = ceil(W / --per-aggregator) aggregators (worker k under aggregator k·A/W, as `ssgd launch
# --aggregators` groups them). Both must end with the parameters_sha256 of `ssgd train`. Then
# `ssgd plan --config … --aggregators A` predicts both, with the images/s of one worker taken
# from the train run (batch / its median compute time per step), and a markdown table goes to
# stdout: median step time, compute and transfer as the coordinator prints them (steps 2 and
# later), and megabytes on the coordinator's sockets per step, measured and predicted.
#
# Bounded: every process runs under `timeout`; a trap stops them and deletes the namespaces on
# any exit. Namespace addresses only (10.214.0.0/16 inside the namespaces); needs root,
# iproute2 (ip, tc) and coreutils (timeout).
#
# Usage: tools/netns_scaling.sh [options]     (from the repository root, as root)
#   --ssgd PATH            the ssgd binary (default .build/release/ssgd)
#   --workers "2 4 8"      worker counts
#   --per-aggregator G     workers per aggregator in the tree design (default 2)
#   --mbit R               each link's rate in Mbit/s, both directions (default 200)
#   --delay-ms D           one-way host-to-host delay through netem (default 0: none)
#   --hidden "1024, 1024"  the MLP's hidden widths
#   --input "1, 32, 32"    synthetic sample shape
#   --batch B --ghost-batch U --steps S   (defaults 64, 8, 8)
#   --timeout SECONDS      bound on each process (default 300)
#   --work-dir DIR         keep configs, logs and run directories there (default: a temporary
#                          folder, removed after a successful run)
set -euo pipefail
PATH=$PATH:/usr/sbin:/sbin
# The namespaces stand for separate machines, but they share this host's /dev/shm: without this
# the workers' frames would go through shared memory and never cross the shaped links.
export SSGD_SHM_DISABLE=1

ssgd=.build/release/ssgd
worker_counts="2 4 8"
per_aggregator=2
mbit=200
delay_ms=0
hidden="1024, 1024"
input="1, 32, 32"
batch=64
ghost=8
steps=8
run_timeout=300
work=""

die() {
    echo "netns_scaling: $*" >&2
    exit 1
}
say() { echo "netns_scaling: $*" >&2; }

while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || die "$1 needs a value"
    case $1 in
    --ssgd) ssgd=$2 ;;
    --workers) worker_counts=$2 ;;
    --per-aggregator) per_aggregator=$2 ;;
    --mbit) mbit=$2 ;;
    --delay-ms) delay_ms=$2 ;;
    --hidden) hidden=$2 ;;
    --input) input=$2 ;;
    --batch) batch=$2 ;;
    --ghost-batch) ghost=$2 ;;
    --steps) steps=$2 ;;
    --timeout) run_timeout=$2 ;;
    --work-dir) work=$2 ;;
    *) die "unknown option $1 (see the comment at the top of $0)" ;;
    esac
    shift 2
done

for number in "$per_aggregator" "$mbit" "$batch" "$ghost" "$steps" "$run_timeout" $worker_counts; do
    [[ $number =~ ^[1-9][0-9]*$ ]] || die "'$number' is not a whole number ≥ 1"
done
[[ $delay_ms =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--delay-ms takes a number of milliseconds, got '$delay_ms'"
[ "$steps" -ge 2 ] || die "--steps must be at least 2 (the first step is not counted)"
for program in ip:iproute2 tc:iproute2 timeout:coreutils; do
    command -v "${program%%:*}" >/dev/null || die "${program%%:*} is not installed (Debian package ${program#*:})"
done
[ "$(id -u)" = 0 ] || die "network namespaces and tc need root"
[ -x "$ssgd" ] || die "no ssgd binary at $ssgd (build it: swift build -c release)"
ssgd=$(cd "$(dirname "$ssgd")" && pwd)/$(basename "$ssgd")

keep_work=1
if [ -z "$work" ]; then
    work=$(mktemp -d "${TMPDIR:-/tmp}/ssgd-netns-scaling.XXXXXX")
    keep_work=0
fi
mkdir -p "$work"
work=$(cd "$work" && pwd)

# Namespaces are named after this script's pid (and deleted by it on exit).
tag="ssgdsc$$"
namespaces=()
pids=()

stop_all() {
    local pid ns deadline
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    deadline=$((SECONDS + 5))
    for pid in "${pids[@]}"; do
        while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    done
    for ns in "${namespaces[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    pids=()
    namespaces=()
}

finish() {
    local status=$?
    trap - EXIT INT TERM HUP
    stop_all
    if [ "$status" -eq 0 ] && [ "$keep_work" -eq 0 ]; then
        rm -rf "$work"
    elif [ "$status" -ne 0 ]; then
        say "failed (status $status); logs in $work"
    fi
    exit "$status"
}
trap finish EXIT
trap 'exit 130' INT TERM HUP

# One link: the switch's port and the host's uplink, each shaped on its way out.
shape() {
    local ns=$1 dev=$2 position=(root)
    if [ "$delay_ms" != 0 ]; then
        local half
        half=$(awk -v d="$delay_ms" 'BEGIN { printf "%g", d / 2 }')
        tc -n "$ns" qdisc add dev "$dev" root handle 1: netem delay "${half}ms" ||
            die "tc netem failed: this kernel may lack sch_netem (CONFIG_NET_SCH_NETEM); run with --delay-ms 0"
        position=(parent 1:)
    fi
    # burst: the bytes of one timer tick at 250 Hz (at least 64 KB, a GSO segment).
    local burst=$((mbit * 1000000 / 8 / 250))
    [ "$burst" -ge 65536 ] || burst=65536
    tc -n "$ns" qdisc add dev "$dev" "${position[@]}" tbf rate "${mbit}mbit" burst "$burst" latency 50ms
}

# host NAME ADDRESS: a namespace NAME on the switch with ADDRESS/16.
host() {
    local ns="$tag-$1" port="p-$1"
    ip netns add "$ns"
    namespaces+=("$ns")
    ip -n "$ns" link set lo up
    ip -n "$tag-sw" link add "$port" type veth peer name uplink netns "$ns"
    ip -n "$tag-sw" link set "$port" master br0 up
    ip -n "$ns" addr add "$2/16" dev uplink
    ip -n "$ns" link set uplink up
    shape "$tag-sw" "$port"
    shape "$ns" uplink
}

switch() {
    ip netns add "$tag-sw"
    namespaces+=("$tag-sw")
    ip -n "$tag-sw" link add br0 type bridge
    ip -n "$tag-sw" link set br0 up
}

# start NAMESPACE LOG ARGUMENTS…: ssgd in the namespace, in the background, under timeout.
started=0
start() {
    local ns="$tag-$1" log=$2
    shift 2
    timeout -k 5 "$run_timeout" ip netns exec "$ns" "$ssgd" "$@" >"$log" 2>&1 &
    started=$!
    pids+=("$started")
}

# finished PID SECONDS: wait for PID at most SECONDS; its exit status in $status (124 if it had
# to be stopped).
status=0
finished() {
    local pid=$1 deadline=$((SECONDS + $2))
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        status=124
        return
    fi
    status=0
    wait "$pid" || status=$?
}

parameters_hash() {
    grep -o '"parameters_sha256" *: *"[0-9a-f]*"' "$1/summary.json" | grep -o '[0-9a-f]\{64\}' || true
}

# Per-step values (steps 2 and later) of a log's step lines: "step compute transfer MB" per line.
step_values() {
    sed -nE 's/^step ([0-9]+)\/[0-9]+ .*\| step ([0-9.]+)s = compute ([0-9.]+)s \+ transfer ([0-9.]+)s \+ reduce\/update [0-9.]+s( \| ([0-9.]+) MB moved per step)?( \|.*)?$/\1 \2 \3 \4 \6/p' "$1" |
        awk '$1 >= 2 { print $2, $3, $4, ($5 == "" ? 0 : $5) }'
}

# median COLUMN < values
median() {
    awk -v c="$1" '{ print $c }' | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) exit 1
        if (NR % 2) printf "%.3f", v[(NR + 1) / 2]; else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

cat >"$work/config.yaml" <<YAML
name: netns-scaling
model: mlp
hidden: [$hidden]
dataset: synthetic
synthetic_shape: [$input]
synthetic_classes: 10
synthetic_train_samples: $((batch * steps))
synthetic_test_samples: 64
method: vanilla
batch_size: $batch
ghost_batch: $ghost
epochs: 1
lr: 0.01
seed: 1
eval_every_epochs: 0
checkpoint_every_steps: 0
progress_seconds: 0.001
YAML

say "work folder $work, namespaces $tag-*"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
say "reference: ssgd train (one process, 1 thread)"
timeout -k 5 "$run_timeout" "$ssgd" train --config "$work/config.yaml" --run-dir "$work/train" --threads 1 >"$work/train.log" 2>&1 ||
    die "ssgd train failed: $(tail -3 "$work/train.log")"
expected=$(parameters_hash "$work/train")
[ -n "$expected" ] || die "no parameters_sha256 in $work/train/summary.json"
train_compute=$(step_values "$work/train.log" | median 2) || die "no step lines in $work/train.log"
images_per_second=$(awk -v b="$batch" -v c="$train_compute" 'BEGIN { printf "%.1f", b / c }')
gbps=$(awk -v m="$mbit" 'BEGIN { printf "%g", m / 1000 }')

rows=()
for w in $worker_counts; do
    a=$(((w + per_aggregator - 1) / per_aggregator))
    for design in star tree; do
        name="w$w-$design"
        say "$name: W = $w$([ "$design" = tree ] && echo ", $a aggregator(s)")"
        switch
        host c 10.214.0.1
        members=$w
        if [ "$design" = tree ]; then
            members=$a
            for i in $(seq 1 "$a"); do host "a$i" "10.214.1.$i"; done
        fi
        for k in $(seq 1 "$w"); do host "w$k" "10.214.2.$k"; done
        start c "$work/$name-coordinator.log" coordinator --config "$work/config.yaml" --run-dir "$work/$name" \
            --bind tcp://10.214.0.1:5555 --workers "$members" --threads 1 --insecure --wait-for-workers 60
        coordinator=$started
        if [ "$design" = tree ]; then
            for i in $(seq 1 "$a"); do
                group=0
                for k in $(seq 0 $((w - 1))); do [ $((k * a / w)) -ne $((i - 1)) ] || group=$((group + 1)); done
                start "a$i" "$work/$name-a$i.log" aggregator --connect tcp://10.214.0.1:5555 --bind "tcp://10.214.1.$i:5555" \
                    --workers "$group" --name "$tag-a$i" --insecure --give-up-after 60 --handshake-timeout 60
            done
        fi
        for k in $(seq 1 "$w"); do
            parent=tcp://10.214.0.1:5555
            [ "$design" = star ] || parent="tcp://10.214.1.$(((k - 1) * a / w + 1)):5555"
            start "w$k" "$work/$name-w$k.log" worker --connect "$parent" --threads 1 --name "$tag-w$k" \
                --give-up-after 60 --handshake-timeout 60
        done
        finished "$coordinator" "$run_timeout"
        [ "$status" -eq 0 ] || die "$name: the coordinator exited with $status: $(tail -3 "$work/$name-coordinator.log")"
        for pid in "${pids[@]}"; do
            [ "$pid" = "$coordinator" ] && continue
            finished "$pid" 30
            [ "$status" -eq 0 ] || die "$name: an aggregator or worker exited with $status (logs $work/$name-*.log)"
        done
        # What the coordinator's switch port (its downlink) sent, shaping included.
        tc -n "$tag-sw" -s qdisc show dev p-c >"$work/$name-tc.txt"
        stop_all
        got=$(parameters_hash "$work/$name")
        [ "$got" = "$expected" ] || die "$name: parameters_sha256 ${got:-missing} differs from train's $expected"
        say "$name: parameters_sha256 matches train"
        values=$(step_values "$work/$name-coordinator.log")
        [ -n "$values" ] || die "$name: no step lines in the coordinator's log"
        measured="$(median 1 <<<"$values") $(median 2 <<<"$values") $(median 3 <<<"$values") $(median 4 <<<"$values")"
        plan_args=(plan --config "$work/config.yaml" --workers "$w" --bandwidth "$gbps" --latency-ms "$delay_ms"
            --images-per-second "$images_per_second" --aggregators "$a")
        "$ssgd" "${plan_args[@]}" >"$work/$name-plan.log" 2>&1 || die "ssgd plan failed: $(tail -3 "$work/$name-plan.log")"
        # | W | Gb/s | star: step | compute | transfer | reduce | MB | tree: step | transfer | MB |
        predicted=$(awk -F'|' -v w="$w" -v d="$design" '$2 ~ "^ " w " " {
            gsub(/ /, ""); if (d == "star") print $4, $6, $8; else print $9, $10, $11 }' "$work/$name-plan.log")
        [ -n "$predicted" ] || die "no row for W = $w in $work/$name-plan.log"
        label=star
        [ "$design" = star ] || label="$a aggregator(s)"
        read -r m_step m_compute m_transfer m_mb <<<"$measured"
        read -r p_step p_transfer p_mb <<<"$predicted"
        rows+=("| $w | $label | $m_step | $p_step | $m_compute | $m_transfer | $p_transfer | $m_mb | $p_mb |")
    done
done

first=$(echo "$worker_counts" | awk '{ print $1 }')
parameters=$(grep -o '[0-9]* parameters' "$work/w$first-star-plan.log" | head -1)
core=$(grep -o 'OpenBLAS [A-Za-z0-9_]*' "$work/w$first-star-coordinator.log" | head -1)
echo "machine: $(nproc) cores, $core (as the workers reported it), load average $load_before at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo "config: mlp hidden [$hidden] on synthetic [$input], $parameters, batch $batch in units of $ghost, $steps steps"
echo "links: tbf ${mbit} Mbit/s each way per host, netem delay ${delay_ms} ms host to host; predicted with ssgd plan --bandwidth $gbps --latency-ms $delay_ms --images-per-second $images_per_second (train: median compute ${train_compute} s for $batch samples)"
echo "every run ended with train's parameters_sha256 $expected"
echo
echo "| W | design | step s | predicted step s | compute s | transfer s | predicted transfer s | coordinator MB/step | predicted MB/step |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
