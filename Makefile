# ssgd: the two commands of the README, and their parts.
#   make demo  — install what is missing, build (release), train the quickstart with 2 local workers
#   make test  — install what is missing, build, run the whole test suite

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PACKAGES := libopenblas-dev liblapacke-dev libzmq3-dev zlib1g-dev libssl-dev pkg-config dataset-fashion-mnist
# Only the tests need these: iproute2 (ip, tc: the multi-host and scaling tests in network namespaces), shellcheck (deploy scripts),
# prometheus (promtool checks the /metrics exposition; a Prometheus server scrapes a real run);
# librsvg2-bin (rsvg-convert renders a report figure to PNG for a look at its pixels).
# systemd (systemd-analyze verifies the deploy units).
# slurm-wlm (slurmctld, slurmd, sbatch …) and munge: a one-node Slurm cluster, started by the test,
# runs deploy/slurm/ssgd.sbatch for real.
# kubernetes-client (kubectl kustomize renders deploy/kubernetes); PACKAGE:COMMAND means an
# existing COMMAND (e.g. another kubectl package) will do.
TEST_PACKAGES := iproute2 shellcheck prometheus librsvg2-bin systemd slurm-wlm munge kubernetes-client:kubectl
WORKERS ?= 2

.PHONY: demo test deps test-deps install build release smoke clean

deps:
	@$(MAKE) --no-print-directory install LIST="$(PACKAGES)"

test-deps:
	@$(MAKE) --no-print-directory install LIST="$(PACKAGES) $(TEST_PACKAGES)"

install:
	@missing=""; for p in $(LIST); do pkg=$${p%%:*}; cmd=$${p#*:}; \
	  if [ "$$cmd" != "$$p" ] && command -v "$$cmd" >/dev/null 2>&1; then continue; fi; \
	  dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

release: deps
	swift build -c release --product ssgd

build: test-deps
	swift build --build-tests

demo: release
	.build/release/ssgd launch --config configs/quickstart.yaml --workers $(WORKERS)

smoke: release
	.build/release/ssgd launch --config configs/smoke.yaml --workers $(WORKERS)

test: build
	swift test --skip-build

clean:
	rm -rf .build runs
