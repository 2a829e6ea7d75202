# tandem's tasks. `make help` lists them; `make test` is what CI runs.

SHELL := /usr/bin/env bash -o pipefail
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X main.version=$(VERSION)
GO ?= go

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} /^[a-zA-Z_-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: demo
demo: ## Start a local control plane with tandem, create examples/, print what the API server stored.
	assets=$$(hack/control-plane.sh) && helm=$$(hack/tools.sh helm) && \
	KUBEBUILDER_ASSETS="$$assets" HELM="$$helm" $(GO) run ./hack/demo

.PHONY: build
build: ## Build bin/tandem.
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/tandem ./cmd/tandem

.PHONY: example
example: ## Print the example database Pod as tandem injects it.
	$(GO) run ./cmd/tandem inject -f examples/db-pod.yaml

.PHONY: fmt
fmt: ## Format the Go code.
	gofmt -w $$(git ls-files '*.go')

.PHONY: docs
docs: ## Regenerate the generated sections of the README and the chart's README.
	$(GO) run ./hack/docgen

.PHONY: update-golden
update-golden: ## Rewrite webhook/testdata/golden/*.golden from the current output; review the diff.
	$(GO) test ./webhook/ -run TestGolden -update

.PHONY: fuzz
fuzz: ## Fuzz the admission handlers and tandem inject for FUZZTIME (default 1m) each.
	$(GO) test ./webhook/server/ -run '^$$' -fuzz FuzzHandlers -fuzztime $${FUZZTIME:-1m}
	$(GO) test ./webhook/offline/ -run '^$$' -fuzz FuzzInject -fuzztime $${FUZZTIME:-1m}

##@ Checks

.PHONY: test
test: lint unit e2e image-check kind-check ## Everything CI runs.

.PHONY: lint
lint: ## gofmt, go vet, go build, pinned versions agree, the Dockerfile copies every package, generated docs are current.
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) build ./...
	hack/verify-pins.sh
	hack/verify-dockerfile.sh
	$(GO) run ./hack/docgen -check

.PHONY: deps
deps: ## Install or build, once, what the unit tests run against (PostgreSQL, MariaDB, versitygw, helm).
	hack/backup-deps.sh >/dev/null
	hack/tools.sh helm >/dev/null

.PHONY: unit
unit: deps ## Unit, golden-file, handler and chart tests, and a short fuzz run.
	helm=$$(hack/tools.sh helm) && HELM="$$helm" $(GO) test $$($(GO) list ./... | grep -v '/e2e$$')
	$(GO) test ./webhook/server/ -run '^$$' -fuzz FuzzHandlers -fuzztime 10s
	$(GO) test ./webhook/offline/ -run '^$$' -fuzz FuzzInject -fuzztime 10s

.PHONY: e2e
e2e: ## The end-to-end suite through a real kube-apiserver (E2E_KUBECONFIG: against that cluster instead).
	@if [ -n "$${E2E_KUBECONFIG:-}" ]; then $(GO) test ./e2e/ -count=1 -v; \
	else assets=$$(hack/control-plane.sh) && helm=$$(hack/tools.sh helm) && crds=$$(hack/tools.sh cert-manager-crds) && \
	KUBEBUILDER_ASSETS="$$assets" HELM="$$helm" CERT_MANAGER_CRDS="$$crds" $(GO) test ./e2e/ -count=1 -v; fi

.PHONY: e2e-kind
e2e-kind: ## The suite on a kind cluster made here with no registry: pods run, a backup lands and restores (KEEP_CLUSTER=1 keeps it).
	hack/e2e-kind.sh

.PHONY: kind-check
kind-check: ## make e2e-kind when a Docker engine answers; otherwise the static checks of its scripts.
	@if docker info >/dev/null 2>&1; then hack/e2e-kind.sh; \
	else echo "kind-check: no Docker engine answers; the kind suite cannot run here, running its static checks"; hack/e2e-kind.sh --static; fi

.PHONY: image-check
image-check: ## Build both images (webhook, backup) from the Dockerfile with locally made bases and check them, when a Docker engine answers.
	@if docker info >/dev/null 2>&1; then hack/image.sh tandem:test && hack/image.sh --backup tandem-backup:test; \
	else echo "image-check: no Docker engine answers; the images are not built"; fi

.PHONY: image
image: ## Build tandem:dev and tandem-backup:dev with docker build and the Dockerfile's public base images.
	docker build --build-arg VERSION=$(VERSION) -t tandem:dev .
	docker build --build-arg VERSION=$(VERSION) --target backup -t tandem-backup:dev .

.PHONY: bench-backup
bench-backup: deps ## The sidecar against its floor: backup and restore vs the database's own client (TANDEM_BENCH_SIZES, MiB), verify vs restore, its footprint.
	$(GO) test ./backup/codec/ -run '^$$' -bench Compress -benchmem
	$(GO) test ./backup/ -run '^$$' -bench 'BackupAtScale|VerifyCost|Footprint' -benchtime 1x -timeout 0 -v

.PHONY: bench
bench: ## Load-test tandem against a floor and a no-op controller-runtime server (table, bin/bench/*.json, latency PNG).
	$(GO) run ./hack/bench -out bin/bench/bench-results.json
	$(GO) test ./webhook/podinject/ ./webhook/server/ ./webhook/jobdefaults/ -run '^$$' -bench . -benchmem

##@ Local control plane

.PHONY: control-plane
control-plane: ## Build, or find in the cache, etcd, kube-apiserver, kube-controller-manager and kubectl.
	hack/control-plane.sh
