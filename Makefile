# kubectl-remocal: build, test and run against the local test cluster. `make help` lists targets.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VERSION ?= v0.0.0-$(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
PKG     := github.com/remocal/kubectl-remocal
LDFLAGS := -s -w -X $(PKG)/pkg/version.version=$(VERSION) -X $(PKG)/pkg/version.commit=$(COMMIT)
SIDECAR_IMAGE ?= ghcr.io/remocal/remocal-sidecar:$(VERSION)
TESTAPP_IMAGE := remocal.local/testapp:e2e
GOARCH_HOST   := $(shell go env GOARCH)

# KUBE_VERSION picks the test cluster's Kubernetes (cluster-up, test, demo, bench); empty is the
# harness's default (test/cluster/kubebuild.DefaultKubernetesVersion).
KUBE_VERSION ?=
export REMOCAL_KUBE_VERSION := $(KUBE_VERSION)

BIN     := $(CURDIR)/bin
CLUSTER := $(BIN)/remocal-cluster

.PHONY: help
help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "} {printf "  %-15s %s\n", $$1, $$2}'

.PHONY: build
build: ## build bin/kubectl-remocal and bin/remocal-sidecar
	go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/kubectl-remocal ./cmd/kubectl-remocal
	CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/remocal-sidecar ./cmd/remocal-sidecar
	install -m 0755 scripts/kubectl_complete-remocal $(BIN)/kubectl_complete-remocal

# Release archives: the plugin for each platform, packed by internal/cmd/mkdist with the krew
# manifest that installs them. The e2e test narrows DIST_PLATFORMS to the host and points
# RELEASE_URL at a local server.
DIST_PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64
DIST           ?= $(BIN)/dist
KREW_MANIFEST  ?= krew/remocal.yaml
RELEASE_URL    ?= https://github.com/remocal/kubectl-remocal/releases/download/$(VERSION)

.PHONY: dist
dist: ## release archives and sha256 sums per platform (bin/dist), and the krew manifest (krew/remocal.yaml)
	@rm -rf $(DIST) && mkdir -p $(DIST)
	@# CGO_ENABLED=0: static binaries that run on any libc, built the same from any host.
	@set -e; bins=; for p in $(DIST_PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; exe=; [ $$os != windows ] || exe=.exe; \
	  out=$(DIST)/build/$$os-$$arch/kubectl-remocal$$exe; \
	  echo "go build $$p -> $$out"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch go build -trimpath -ldflags '$(LDFLAGS)' -o $$out ./cmd/kubectl-remocal; \
	  bins="$$bins -bin $$p=$$out"; \
	done; \
	go run ./internal/cmd/mkdist -version $(VERSION) -out $(DIST) -base-url $(RELEASE_URL) $$bins \
	  $(if $(wildcard LICENSE),-file LICENSE) -unix-file scripts/kubectl_complete-remocal \
	  -mtime $$(git log -1 --format=%ct 2>/dev/null || echo 315532800) \
	  -template krew/remocal.yaml.tmpl -manifest $(KREW_MANIFEST)

.PHONY: test
test: ## everything CI runs: unit tests, vet, then the e2e suite on the local cluster
	$(MAKE) unit
	$(MAKE) e2e-local

.PHONY: unit
unit: lint ## lint, then unit tests with the race detector (no cluster needed)
	go test -race -short -count=1 ./...

# Every Fuzz target of the module, one after the other, for FUZZTIME each (go test runs one
# fuzz target at a time). Corpus entries that crash land in the package's testdata/fuzz.
FUZZTIME ?= 5m
.PHONY: fuzz
fuzz: ## run every go test -fuzz target for FUZZTIME each (default 5m)
	@set -e; for pkg in $$(go list ./...); do \
	  dir=$$(go list -f '{{.Dir}}' $$pkg); \
	  for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | cut -c6-); do \
	    echo "--> $$pkg $$t ($(FUZZTIME))"; \
	    go test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

.PHONY: vet
vet: ## gofmt check and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...

.PHONY: lint
lint: vet ## vet plus staticcheck
	go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

.PHONY: e2e-local
e2e-local: ## bring up the local cluster, run e2e, and bring it down again (also on failure)
	@mkdir -p $(BIN); set -o pipefail; rc=0; \
	  $(MAKE) --no-print-directory cluster-up | tee $(BIN)/.cluster-up.out || rc=$$?; \
	  if [ $$rc -eq 0 ]; then \
	    export $$(tail -n 1 $(BIN)/.cluster-up.out); \
	    $(MAKE) --no-print-directory cluster-load && $(MAKE) --no-print-directory e2e || rc=$$?; \
	  fi; \
	  $(MAKE) --no-print-directory cluster-down || { [ $$rc -ne 0 ] || rc=1; }; \
	  exit $$rc

.PHONY: e2e
e2e: build ## e2e tests against the cluster named by KUBECONFIG (skipped when unset)
	PATH=$(BIN):$$PATH go test -count=1 -timeout 30m -v ./test/e2e/... 2>&1 | grep -E --line-buffered -v '^=== (RUN|PAUSE|CONT)'; exit $${PIPESTATUS[0]}

.PHONY: bench
bench: build ## benchmarks, each figure beside its baseline from the same run (local cluster stays up)
	@mkdir -p $(BIN)
	go test -run '^$$' -bench . -benchtime 3x ./pkg/transport ./layer
	@$(MAKE) --no-print-directory cluster-up | tee $(BIN)/.cluster-up.out
	@$(MAKE) --no-print-directory cluster-load
	@export $$(tail -n 1 $(BIN)/.cluster-up.out); go run ./test/bench -plugin $(BIN)/kubectl-remocal

.PHONY: image
image: ## the sidecar image: multi-arch OCI layout (bin/image/remocal-sidecar) and a host-arch tarball
	@mkdir -p $(BIN)/image/amd64 $(BIN)/image/arm64
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/image/amd64/remocal-sidecar ./cmd/remocal-sidecar
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/image/arm64/remocal-sidecar ./cmd/remocal-sidecar
	go run ./internal/cmd/mkimage -ref $(SIDECAR_IMAGE) -entrypoint /remocal-sidecar \
	  -bin linux/amd64=$(BIN)/image/amd64/remocal-sidecar -bin linux/arm64=$(BIN)/image/arm64/remocal-sidecar \
	  -oci-layout $(BIN)/image/remocal-sidecar -tarball $(BIN)/image/remocal-sidecar.tar

.PHONY: image-push
image-push: image ## push the multi-arch sidecar image as REGISTRY/remocal-sidecar:VERSION (make image-push REGISTRY=ghcr.io/remocal)
	@test -n "$(REGISTRY)" || { echo "make image-push: set REGISTRY, e.g. make image-push REGISTRY=ghcr.io/remocal" >&2; exit 2; }
	go run ./internal/cmd/mkimage -ref $(REGISTRY)/remocal-sidecar:$(VERSION) -entrypoint /remocal-sidecar \
	  -bin linux/amd64=$(BIN)/image/amd64/remocal-sidecar -bin linux/arm64=$(BIN)/image/arm64/remocal-sidecar -push

.PHONY: testapp-image
testapp-image: ## the e2e workload image (HTTP, TCP and UDP echo servers) as a tarball
	@mkdir -p $(BIN)/image/testapp
	CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags '-s -w' -o $(BIN)/image/testapp/testapp ./test/apps/testapp
	go run ./internal/cmd/mkimage -ref $(TESTAPP_IMAGE) -entrypoint /testapp \
	  -bin linux/$(GOARCH_HOST)=$(BIN)/image/testapp/testapp -tarball $(BIN)/image/testapp.tar

$(CLUSTER): FORCE
	@go build -o $@ ./test/cluster

.PHONY: FORCE
FORCE:

.PHONY: cluster-up
cluster-up: $(CLUSTER) ## start the local test cluster (or reuse it); last line: KUBECONFIG=<path>
	@$(CLUSTER) up

.PHONY: cluster-down
cluster-down: $(CLUSTER) ## stop the local test cluster and remove its links and mounts
	@$(CLUSTER) down

.PHONY: cluster-status
cluster-status: $(CLUSTER) ## show the local cluster's components
	@$(CLUSTER) status

.PHONY: cluster-load
cluster-load: $(CLUSTER) ## import the project's images into the local cluster, or TAR=path/to/image.tar
ifdef TAR
	@$(CLUSTER) load $(TAR)
else
	@$(MAKE) --no-print-directory image testapp-image
	@$(CLUSTER) load $(BIN)/image/remocal-sidecar.tar $(BIN)/image/testapp.tar
endif

.PHONY: demo
demo: build ## bring up the local cluster, deploy the echo app and run a local command as if in its pod
	@mkdir -p $(BIN)
	@$(MAKE) --no-print-directory cluster-up | tee $(BIN)/.cluster-up.out
	@$(MAKE) --no-print-directory cluster-load
	@export $$(tail -n 1 $(BIN)/.cluster-up.out); PATH=$(BIN):$$PATH bash test/demo/run.sh

.PHONY: clean
clean: ## remove build outputs (not the cluster: see cluster-down)
	rm -rf $(BIN) dist $(KREW_MANIFEST)
