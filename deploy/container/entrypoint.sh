#!/bin/bash
# Entrypoint of the ssgd image (and of the systemd units): starts a coordinator or a worker from
# environment variables, so one image serves both roles.
#
#   entrypoint.sh coordinator [EXTRA SSGD FLAGS…]   (or SSGD_ROLE=coordinator)
#   entrypoint.sh worker [EXTRA SSGD FLAGS…]        (or SSGD_ROLE=worker)
#   entrypoint.sh keygen|status|help|… [ARGS…]      any other ssgd command, run as given
#
# Coordinator:
#   SSGD_RUN_DIR        run directory (required). If it holds a checkpoint, the run is resumed
#                       (--resume); otherwise a new run starts there from SSGD_CONFIG.
#   SSGD_CONFIG         config of a new run (default /usr/share/ssgd/configs/quickstart.yaml)
#   SSGD_BIND           endpoint to bind (default tcp://0.0.0.0:5555)
#   SSGD_WORKERS        workers to wait for before step 0 (default 1)
#   SSGD_THREADS        lanes (default 1)
#   SSGD_SECRET_KEY     coordinator secret key file (from ssgd keygen)   } CURVE, or
#   SSGD_ALLOW          worker public keys: a .pub file, a key list or a folder }
#   SSGD_INSECURE=1     plaintext off loopback (trusted networks only)
#   SSGD_METRICS_LISTEN serve Prometheus metrics at ADDRESS:PORT (GET /metrics; off when unset)
#   SSGD_METRICS_INSECURE=1  allow SSGD_METRICS_LISTEN off loopback (e.g. 0.0.0.0:9464 in a pod)
#   SSGD_AFTER_FINISH   what to do when the run already finished (summary.json present):
#                       "exit" (default) or "sleep" (keep the container up to copy results)
# Worker:
#   SSGD_CONNECT        coordinator endpoint, e.g. tcp://ssgd-coordinator:5555 (required)
#   SSGD_DATA           data folder on this node (default: the config's data_path)
#   SSGD_THREADS        lanes (default 1; give the worker as many CPUs)
#   SSGD_NAME           worker name (default: the host name)
#   SSGD_SECRET_KEY     worker secret key file                     } CURVE
#   SSGD_SERVER_KEY     the coordinator's public key file (.pub)   }
# Both:
#   SSGD_BIN            the ssgd binary (default: ssgd on PATH)
#
# Secret keys must be mode 0600 and owned by the user reading them; mounted secrets (Kubernetes)
# often are not, so the entrypoint copies each secret key (and its .pub) into a private
# temporary folder first.
set -euo pipefail

SSGD_BIN="${SSGD_BIN:-ssgd}"
role="${SSGD_ROLE:-}"
if [ $# -gt 0 ] && [ -z "$role" ]; then
    role="$1"
    shift
elif [ $# -gt 0 ] && [ "$1" = "$role" ]; then
    shift
fi

die() {
    echo "entrypoint: $*" >&2
    exit 2
}

# private_key FILE: prints the path of a copy of FILE that only this user can read.
private_key() {
    local source="$1" folder base
    [ -r "$source" ] || die "cannot read secret key $source"
    folder="$(umask 077 && mktemp -d "${TMPDIR:-/tmp}/ssgd-keys.XXXXXX")"
    base="$(basename "$source" .key)"
    (umask 077 && cat "$source" > "$folder/$base.key")
    if [ -r "$(dirname "$source")/$base.pub" ]; then
        cat "$(dirname "$source")/$base.pub" > "$folder/$base.pub"
    fi
    echo "$folder/$base.key"
}

case "$role" in
coordinator)
    run_dir="${SSGD_RUN_DIR:?set SSGD_RUN_DIR to the run directory}"
    coordinator_args=()
    if compgen -G "$run_dir/checkpoints/step-*.ckpt" > /dev/null; then
        if [ -f "$run_dir/summary.json" ]; then
            echo "entrypoint: $run_dir has finished (summary.json)"
            if [ "${SSGD_AFTER_FINISH:-exit}" = "sleep" ]; then exec sleep infinity; fi
            exit 0
        fi
        coordinator_args+=(--resume "$run_dir")
    elif [ -f "$run_dir/config.yaml" ]; then
        # A run that stopped before its first checkpoint: nothing to resume. Keep it aside and
        # start again from its resolved config.
        aside="$run_dir.no-checkpoint.$(date +%Y%m%d-%H%M%S)"
        mv "$run_dir" "$aside"
        echo "entrypoint: $run_dir had no checkpoint; moved to $aside, starting again" >&2
        coordinator_args+=(--config "$aside/config.yaml" --run-dir "$run_dir")
    else
        coordinator_args+=(--config "${SSGD_CONFIG:-/usr/share/ssgd/configs/quickstart.yaml}" --run-dir "$run_dir")
    fi
    if [ -n "${SSGD_SECRET_KEY:-}" ]; then
        coordinator_args+=(--curve-secret-key "$(private_key "$SSGD_SECRET_KEY")")
        coordinator_args+=(--curve-allow "${SSGD_ALLOW:?set SSGD_ALLOW to the public keys of the workers}")
    elif [ "${SSGD_INSECURE:-0}" = 1 ]; then
        coordinator_args+=(--insecure)
    fi
    if [ -n "${SSGD_METRICS_LISTEN:-}" ]; then
        coordinator_args+=(--metrics-listen "$SSGD_METRICS_LISTEN")
        if [ "${SSGD_METRICS_INSECURE:-0}" = 1 ]; then coordinator_args+=(--metrics-insecure); fi
    fi
    exec "$SSGD_BIN" coordinator "${coordinator_args[@]}" \
        --bind "${SSGD_BIND:-tcp://0.0.0.0:5555}" \
        --workers "${SSGD_WORKERS:-1}" \
        --threads "${SSGD_THREADS:-1}" \
        "$@"
    ;;
worker)
    worker_args=(--connect "${SSGD_CONNECT:?set SSGD_CONNECT to the coordinator endpoint, e.g. tcp://HOST:5555}")
    if [ -n "${SSGD_DATA:-}" ]; then worker_args+=(--data "$SSGD_DATA"); fi
    if [ -n "${SSGD_SECRET_KEY:-}" ]; then
        worker_args+=(--curve-secret-key "$(private_key "$SSGD_SECRET_KEY")")
        worker_args+=(--curve-server-key "${SSGD_SERVER_KEY:?set SSGD_SERVER_KEY to the .pub file of the coordinator}")
    fi
    exec "$SSGD_BIN" worker "${worker_args[@]}" \
        --threads "${SSGD_THREADS:-1}" \
        --name "${SSGD_NAME:-$(hostname)}" \
        "$@"
    ;;
"")
    exec "$SSGD_BIN" help
    ;;
*)
    exec "$SSGD_BIN" "$role" "$@"
    ;;
esac
