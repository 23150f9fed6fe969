# hashstack: every target calls a script in ci/ (the GitHub workflow calls the same scripts).
SHELL := /bin/bash
.DEFAULT_GOAL := help

REGISTRY ?= localhost:5000
RELEASE ?= hashstack
NAMESPACE ?= hashstack

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

.PHONY: install
install: ## install Debian packages, the Python venv, helm and kubectl
	ci/install-deps.sh
	ci/install-tools.sh

.PHONY: up
up: ## run etcd and the three services locally (Ctrl-C stops everything); MONITORING=1 adds Prometheus
	ci/install-deps.sh --only etcd-server
	MONITORING=$(MONITORING) ci/up.sh $(UP_ARGS)

.PHONY: test
test: ## install everything and run every test rung that can run here
	ci/test.sh

# The fast lane: no podman, no cluster, no fault injection and nothing marked slow.
FAST_MARKERS := not podman and not cluster and not faults and not slow

.PHONY: test-fast
test-fast: ## the quick lane: no podman, no cluster, no fault injection (about a minute)
	ci/test.sh -m "$(FAST_MARKERS)" tests

.PHONY: lint
lint: install ## ruff, mypy, shellcheck, hadolint, yamllint, helm lint, checkov on the rendered chart
	ci/lint.sh

.PHONY: images
images: ## build the hello, persistence and hash images, tagged with the git revision
	ci/images.sh build

.PHONY: push
push: ## push the images to $(REGISTRY)
	ci/images.sh push $(REGISTRY)

.PHONY: bundle
bundle: ## one file for an offline cluster: all six images (`make images` + the chart's third-party ones), charts, install.sh (docs/install.md)
	ci/bundle.sh $(BUNDLE)

.PHONY: deploy
deploy: ## skaffold run (or helm upgrade --install with `make images` when skaffold is absent)
	ci/deploy.sh

.PHONY: dev
dev: ## skaffold dev: rebuild and redeploy on every change
	ci/dev.sh

.PHONY: e2e
e2e: ## ct and the cluster suite on kind, or E2E_CLUSTER=current (docs/cluster.md)
	ci/e2e.sh

.PHONY: bench
bench: ## benchmarks: ratios against hello measured in one run, into benchmarks/results/
	ci/bench.sh

.PHONY: bench-devloop
bench-devloop: ## the inner loop without a cluster: synced edit -> new answer, rebuild -> new container
	ci/bench.sh --devloop

.PHONY: bench-update
bench-update: ## a full benchmark run that also updates the committed benchmarks/latest.*
	ci/bench.sh --update

.PHONY: bench-footprint
bench-footprint: ## CPU and memory of each pod idle, lightly used and saturated (docs/scaling.md)
	ci/bench.sh --footprint

.PHONY: test-faults
test-faults: ## the long fault-injection suite
	FAULTS_LONG=1 PYTEST_WORKERS=0 ci/test.sh tests/faults

.PHONY: docs
docs: ## render docs/diagrams/*.dot (Graphviz) to SVGs and docs/images/dashboard.png (real Prometheus)
	ci/docs.sh

.PHONY: test-etcd-long
test-etcd-long: ## every etcd size and scaling change, under load, with upstream etcd 3.5
	ETCD_LONG=1 PYTEST_WORKERS=0 ci/test.sh tests/chart/test_etcd_membership.py tests/chart/test_etcd_gitops.py tests/chart/test_etcd_backup.py -s

.PHONY: etcd-restore
etcd-restore: ## after a total loss of etcd: the counter back from the snapshots (docs/etcd.md)
	ci/etcd-restore.sh -n $(NAMESPACE) $(RESTORE_ARGS) $(RELEASE)

.PHONY: clean
clean: ## remove the venv, caches and local data
	rm -rf .venv .cache
