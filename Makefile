# Slipway developer entry points. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Every module of go.work, in dependency order.
MODULES := proto pkg services/clusters services/registry services/catalog services/releases gateway tools
SERVICES := gateway clusters registry catalog releases

# Pinned generators, installed once per version into a cache shared by every
# checkout (override SLIPWAY_CACHE to move it).
SLIPWAY_CACHE ?= $(HOME)/.cache/slipway
TOOLS := $(SLIPWAY_CACHE)/tools
BUF_VERSION := v1.61.0
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GRPC_GATEWAY_VERSION := v2.32.0
HELM_VERSION := v3.22.0
BUF := $(TOOLS)/buf@$(BUF_VERSION)/buf
HELM := $(TOOLS)/helm@$(HELM_VERSION)/helm
GEN_PLUGINS := $(TOOLS)/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)/protoc-gen-go \
	$(TOOLS)/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)/protoc-gen-go-grpc \
	$(TOOLS)/protoc-gen-grpc-gateway@$(GRPC_GATEWAY_VERSION)/protoc-gen-grpc-gateway \
	$(TOOLS)/protoc-gen-openapiv2@$(GRPC_GATEWAY_VERSION)/protoc-gen-openapiv2
GEN_PATH := $(subst $(eval) ,:,$(dir $(GEN_PLUGINS))):$(PATH)

# Local state of `make run` (SQLite files, keys, logs).
STATE ?= $(CURDIR)/.state
# Integration tests start real clusters and servers; cold component builds
# happen in `devstack build` (run by .ci/run) or, failing that, in the tests.
GO_TEST_FLAGS ?= -timeout 30m

.PHONY: help
help: ## list targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: run
run: ## run all five Slipway processes locally on embedded defaults (Ctrl-C stops them)
	@mkdir -p $(STATE)/bin && go build -o $(STATE)/bin/devstack ./tools/devstack
	$(STATE)/bin/devstack run --state $(STATE)

.PHONY: devstack-up devstack-down devstack-status
devstack-up: ## start the real environment in the background (Kubernetes, Vault, PostgreSQL, OCI registry, chart repo)
	go run ./tools/devstack up --detach --state $(STATE)/devstack $(DEVSTACK_FLAGS)
devstack-down: ## stop what devstack-up started
	go run ./tools/devstack down --state $(STATE)/devstack
devstack-status: ## list the devstack's processes
	go run ./tools/devstack status --state $(STATE)/devstack

.PHONY: test
test: ## run the tests of every module (real PostgreSQL included)
	@for m in $(MODULES); do echo "==> go test $$m"; (cd $$m && go test -count=1 $(GO_TEST_FLAGS) ./...) || exit 1; done

.PHONY: e2e
e2e: ## run only the end-to-end tests (tools/e2e: the seed tour of docs/tour.md and every flow through REST and the CLI)
	cd tools/e2e && go test -count=1 $(GO_TEST_FLAGS) .

.PHONY: e2e-load
e2e-load: ## 200 concurrent clients of a mixed load for 5 minutes through the gateway, then on two replicas of every service on PostgreSQL, one of each killed (SLIPWAY_LOAD_DURATION=30s shortens both)
	cd tools/bench && go test -run '^$$' -bench 'BenchmarkMixedLoad$$|BenchmarkReplicasUnderLoad$$' -benchtime 1x -count=1 -timeout 60m .

.PHONY: bench
bench: ## run every benchmark
	@for m in $(MODULES); do (cd $$m && go test -run '^$$' -bench . -benchmem ./...) || exit 1; done

.PHONY: build
build: ## build the five binaries into bin/
	@mkdir -p bin
	@for s in $(SERVICES); do \
	  if [ $$s = gateway ]; then d=gateway; else d=services/$$s; fi; \
	  (cd $$d && go build -trimpath -o $(CURDIR)/bin/ ./cmd/slipway-$$s); done

CLI_VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
.PHONY: cli
cli: ## build the slipway command-line client into bin/slipway (docs/cli.md)
	@mkdir -p bin
	cd tools && go build -trimpath -ldflags "-X main.version=$(CLI_VERSION)" -o $(CURDIR)/bin/slipway ./cmd/slipway

# Images: deploy/docker/<svc>.Dockerfile, tagged $(IMAGE_REPO)/slipway-<svc>:$(IMAGE_TAG).
# CONTAINER_ENGINE is docker, else podman; BuildKit is needed for the cache
# mounts (Docker's default builder; Podman's buildah supports them).
IMAGE_REPO ?= ghcr.io/slipwayhq
IMAGE_TAG ?= dev
CONTAINER_ENGINE ?= $(shell command -v docker 2>/dev/null || command -v podman 2>/dev/null)
.PHONY: images
images: ## build the five service images; fails, saying why, without a container engine whose daemon answers
	@engine="$(CONTAINER_ENGINE)"; \
	if [ -z "$$engine" ]; then echo "make images: no container engine (docker or podman) on PATH; install one, or set CONTAINER_ENGINE. Nothing was built." >&2; exit 2; fi; \
	if ! "$$engine" info >/dev/null 2>&1; then echo "make images: '$$engine info' fails: its daemon is not running or not reachable (start it, or check DOCKER_HOST). Nothing was built." >&2; exit 2; fi; \
	for s in $(SERVICES); do echo "==> $(IMAGE_REPO)/slipway-$$s:$(IMAGE_TAG)"; \
	  DOCKER_BUILDKIT=1 "$$engine" build -f deploy/docker/$$s.Dockerfile --build-arg VERSION=$(IMAGE_TAG) -t $(IMAGE_REPO)/slipway-$$s:$(IMAGE_TAG) . || exit 1; done

.PHONY: tools
tools: $(BUF) $(GEN_PLUGINS) $(HELM) ## install the pinned generators and helm

$(TOOLS)/%/helm $(TOOLS)/%/buf $(TOOLS)/%/protoc-gen-go $(TOOLS)/%/protoc-gen-go-grpc $(TOOLS)/%/protoc-gen-grpc-gateway $(TOOLS)/%/protoc-gen-openapiv2:
	@echo "==> installing $*"
	@case "$*" in \
	  buf@*) pkg=github.com/bufbuild/buf/cmd/buf ;; \
	  helm@*) pkg=helm.sh/helm/v3/cmd/helm ;; \
	  protoc-gen-go@*) pkg=google.golang.org/protobuf/cmd/protoc-gen-go ;; \
	  protoc-gen-go-grpc@*) pkg=google.golang.org/grpc/cmd/protoc-gen-go-grpc ;; \
	  protoc-gen-grpc-gateway@*) pkg=github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway ;; \
	  protoc-gen-openapiv2@*) pkg=github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2 ;; \
	esac; GOWORK=off GOBIN=$(TOOLS)/$* go install $$pkg@$(lastword $(subst @, ,$*))

.PHONY: generate
generate: tools ## regenerate Go, grpc-gateway and OpenAPI code from the protos
	cd proto && PATH=$(GEN_PATH) $(BUF) generate --path slipway

.PHONY: lint
lint: tools ## buf lint, gofmt, go vet, import boundaries, and generated code up to date
	cd proto && $(BUF) lint
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@for m in $(MODULES); do echo "==> go vet $$m"; (cd $$m && go vet ./...) || exit 1; done
	go run ./tools/cmd/importcheck $(MODULES)
	@$(MAKE) --no-print-directory check-generated
	@$(MAKE) --no-print-directory lint-charts

CHARTS := gateway clusters registry catalog releases
.PHONY: lint-charts
lint-charts: $(HELM) ## helm lint every chart and check the umbrella renders to valid YAML
	@for c in $(CHARTS) slipway; do $(HELM) dependency build charts/$$c >/dev/null; done
	$(HELM) lint --strict charts/common
	@for c in $(CHARTS); do $(HELM) lint --strict --quiet charts/$$c --set identity.existingSecret=lint-identity; done
	$(HELM) lint --strict --quiet --with-subcharts charts/slipway
	$(HELM) template slipway charts/slipway --namespace slipway > /dev/null
	@echo "charts lint and render"

.PHONY: charts
charts: $(HELM) ## regenerate each chart's README.md from its values.yaml and Chart.lock from its Chart.yaml; package the charts into bin/charts
	cd tools && go test ./charts -run '^TestReadmes$$' -count=1 -update
	@for c in $(CHARTS) slipway; do $(HELM) dependency update charts/$$c >/dev/null; done
	@mkdir -p bin/charts && for c in common $(CHARTS) slipway; do $(HELM) package charts/$$c -d bin/charts >/dev/null; done
	@echo "charts: READMEs and locks regenerated, packages in bin/charts"

.PHONY: check-generated
check-generated: tools ## fail if regenerating the protos would change committed code
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	cp -r proto $$tmp/proto; \
	(cd $$tmp/proto && find . \( -name '*.pb.go' -o -name '*.pb.gw.go' -o -name '*.swagger.json' \) -delete && PATH=$(GEN_PATH) $(BUF) generate --path slipway); \
	if ! diff -r -q proto $$tmp/proto; then echo "generated code is stale: run 'make generate' and commit"; exit 1; fi
	@echo "generated code is up to date"

.PHONY: clean
clean: ## remove build output and local state
	rm -rf bin $(STATE)
