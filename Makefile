# Entry points. Every target installs what it needs itself (Node 24, npm ci, Debian packages).
SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE_BIN := $(CURDIR)/.tools/node/bin
export PATH := $(NODE_BIN):$(CURDIR)/node_modules/.bin:$(PATH)

TEST_FILES := 'workload/test/**/*.test.ts' 'operator/test/**/*.test.ts' 'test/**/*.test.ts'
NODE_TEST := node --import tsx --test --test-concurrency=3 --test-timeout=180000

.PHONY: help demo test test-unit bench lint format build clean node deps browser

help:
	@echo "make demo    simulator + workload on PGlite, scripted conversation, transcript"
	@echo "make test    lint, types and the whole suite (starts a private PostgreSQL server)"
	@echo "make bench   latency / throughput / memory benchmarks (results in bench/)"
	@echo "make lint    biome + TypeScript type check"
	@echo "make build   compile every workspace to dist/"
	@echo "make clean   remove build output, tools and caches inside the clone"

node:
	@scripts/ensure-node.sh

node_modules/.install-stamp: package-lock.json | node
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

deps: node node_modules/.install-stamp

build: deps
	tsc -b workload operator

lint: deps
	biome check .
	tsc -p tsconfig.json

format: deps
	biome check --write .

# Debian's Chromium (with CJK fonts) for the browser path: installed once, used by the tests.
browser:
	@scripts/ensure-apt.sh /usr/bin/chromium chromium fonts-noto-cjk

# The whole suite: lint and types first (fast), then every test on a private PostgreSQL server.
test: build lint browser
	scripts/with-postgres.sh $(NODE_TEST) $(TEST_FILES)

demo: build cluster-bins
	node --import tsx test/demo/run.ts
	node --import tsx test/demo/cluster.ts

bench: build cluster-bins
	scripts/with-postgres.sh node --import tsx bench/run.ts
	node --import tsx bench/operator.ts
	scripts/with-postgres.sh node --import tsx bench/delivery.ts

clean:
	rm -rf workload/dist operator/dist .tools node_modules .demo .pgtest

# --- local control plane (test/cluster) ---
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok, helm and
# kubeconform built from Go modules (test/cluster/build.sh) and cached outside the clone in
# $${XDG_CACHE_HOME:-~/.cache}/xianyu/k8s/<versions key>/, so `make clean` never touches them.
.PHONY: cluster-bins cluster-up cluster-down

cluster-bins:
	@test/cluster/build.sh >/dev/null

cluster-up: deps cluster-bins
	@node --import tsx test/cluster/cli.ts up

cluster-down: deps
	@node --import tsx test/cluster/cli.ts down

test: cluster-bins
# --- end of local control plane ---

# --- images and chart ---
# charts/xianyu-operator: the chart; charts/sync.ts copies the generated CRD, the operator's RBAC
# rules and the Grafana dashboard into it (test/chart fails when they drift: run `make chart-sync`);
# charts/gen-k8s-schemas.ts wrote the kubeconform schemas in charts/schemas (offline validation).
# Images: scripts/images.sh assembles a local Debian bookworm + Node 24 base (no registry here) and
# builds Dockerfile.workload and Dockerfile.operator with podman, tagged by a hash of their inputs,
# so an unchanged tree builds nothing. test/images/*.test.ts run the built images.
.PHONY: chart-sync chart-lint images test-images

chart-sync: deps
	node --import tsx charts/sync.ts

chart-lint: deps cluster-bins
	$(NODE_TEST) test/chart/chart.test.ts

images: deps
	@scripts/images.sh

test-images: deps cluster-bins images
	$(NODE_TEST) 'test/images/*.test.ts'

# `make test` builds the images first (podman, runc and debootstrap are installed on first use):
# cold about 4 min on 2 cores, about 0.5 s when nothing changed, 5 to 30 s after a source change
# (cached layers: only the TypeScript build reruns). XIANYU_SKIP_IMAGES=1 skips building, and
# test/images then skips itself unless the images for the current sources already exist.
ifneq ($(XIANYU_SKIP_IMAGES),1)
test: images
endif
# --- end of images and chart ---
