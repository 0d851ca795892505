# vllm-proxy: build, test, lint, bench, demo. `make help` lists the targets.

GO            ?= go
BIN           := bin
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := $(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
GOSEC_VERSION := v2.30.0
GOSEC         := $(BIN)/gosec-$(GOSEC_VERSION)
GOVULNCHECK_VERSION := v1.9.0
GOVULNCHECK   := $(BIN)/govulncheck-$(GOVULNCHECK_VERSION)
# gosec skips scripts/ and bench/internal/: benchmark drivers run by hand on a developer's
# machine (file paths from their own flags, seeded math/rand, best-effort parsing of
# /proc), never built into the vllm-proxy binary or image. Everything else must come out
# clean; each false positive carries a `// #nosec Gxxx -- why` on its line.
GOSEC_FLAGS   := -quiet -exclude-dir=scripts -exclude-dir=bench/internal

.PHONY: all build test vet redis browser lint gosec audit bench demo docker clean help faults fuzz soak bench-overhead bench-routing bench-batch

all: build test

help:
	@echo "make build   build ./bin/vllm-proxy"
	@echo "make test    install redis-server, chromium and npm deps if needed, then go vet and go test -race ./..."
	@echo "             (including the dashboard's browser test)"
	@echo "make lint    golangci-lint $(GOLANGCI_LINT_VERSION) (installed into ./bin on first use)"
	@echo "make gosec   gosec $(GOSEC_VERSION) (installed into ./bin on first use); fails on any finding"
	@echo "make audit   gosec, then govulncheck $(GOVULNCHECK_VERSION) (needs vuln.go.dev, so not in CI)"
	@echo "make bench   go benchmarks of every package; make bench-overhead|bench-routing|bench-batch"
	@echo "             run the load-generator benchmarks of docs/BENCHMARKS.md"
	@echo "make faults  long fault-injection suite (VLLM_PXY_FAULTS=long go test ./faults/); figures in docs/RELIABILITY.md"
	@echo "make fuzz    every native fuzz target for 60s (FUZZTIME=...): scripts/fuzz.sh"
	@echo "make soak    SOAK_MINUTES (default 10) of mixed load; asserts goroutines/fds/RSS flat: scripts/soak.sh"
	@echo "make demo    run the demo (go run ./cmd/vllm-proxy demo)"
	@echo "make docker  build the container image vllm-proxy:dev"

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/vllm-proxy ./cmd/vllm-proxy

# Tests start real redis-server processes (state/statetest), so install it when missing.
redis:
	@if ! command -v redis-server >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "redis-server not found: installing it with apt-get"; \
			apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server; \
		else \
			echo "redis-server is required by the tests. Install it, e.g.:"; \
			echo "  sudo apt-get update && sudo apt-get install -y redis-server   (Debian/Ubuntu)"; \
			echo "  brew install redis                                             (macOS)"; \
			exit 1; \
		fi; \
	fi

# The dashboard's browser test (ui/e2e_test.go, build tag e2e) drives Debian's chromium
# with playwright-core from npm. Install both when missing; the test fails (never skips)
# without them.
browser:
	@pkgs=""; \
	[ -x /usr/bin/chromium ] || pkgs="chromium"; \
	command -v npm >/dev/null 2>&1 || pkgs="$$pkgs nodejs npm"; \
	if [ -n "$$pkgs" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then SUDO=; \
		elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; \
		else echo "the browser test needs /usr/bin/chromium and npm: apt-get install -y$$pkgs"; exit 1; fi; \
		echo "installing$$pkgs with apt-get"; \
		$$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$pkgs; \
	fi
	@if [ ! -f ui/e2e/node_modules/playwright-core/package.json ]; then \
		cd ui/e2e && npm ci --no-audit --no-fund; \
	fi

vet:
	$(GO) vet ./...

test: redis browser vet
	$(GO) test -race -tags e2e ./...

$(GOLANGCI_LINT):
	@mkdir -p $(BIN)
	GOBIN=$(CURDIR)/$(BIN) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(BIN)/golangci-lint $(GOLANGCI_LINT)

lint: $(GOLANGCI_LINT)
	$(GOLANGCI_LINT) run ./...

$(GOSEC):
	@mkdir -p $(BIN)
	GOBIN=$(CURDIR)/$(BIN) $(GO) install github.com/securego/gosec/v2/cmd/gosec@$(GOSEC_VERSION)
	mv $(BIN)/gosec $(GOSEC)

# Static security scan; exits non-zero on any finding (CI runs it: .ci/run).
gosec: $(GOSEC)
	$(GOSEC) $(GOSEC_FLAGS) ./...

$(GOVULNCHECK):
	@mkdir -p $(BIN)
	GOBIN=$(CURDIR)/$(BIN) $(GO) install golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION)
	mv $(BIN)/govulncheck $(GOVULNCHECK)

# gosec plus known vulnerabilities in the dependencies and the Go toolchain that the code
# actually reaches. govulncheck downloads its database from vuln.go.dev, so CI (offline
# here) runs only `make gosec`.
audit: gosec $(GOVULNCHECK)
	$(GOVULNCHECK) ./...

# Go micro-benchmarks of every package. The measured claims of docs/BENCHMARKS.md come from
# the load-generator scripts: make bench-overhead, bench-routing, bench-batch, bench-bp.
bench:
	$(GO) test -run='^$$' -bench=. ./...

bench-overhead: redis
	scripts/bench-overhead.sh

bench-routing: redis
	scripts/bench-routing.sh

bench-batch: redis
	scripts/bench-batch.sh

demo:
	$(GO) run ./cmd/vllm-proxy demo

# Long form of the fault-injection suite (faults/): more load, longer outages, 200 MB upload
# limit, idle-timeout check. docs/RELIABILITY.md records the RESULT lines.
faults: redis
	VLLM_PXY_FAULTS=long $(GO) test -race -count=1 -timeout 20m -v -run '^Test' ./faults/

# Every native fuzz target for FUZZTIME each (default 60s).
fuzz: redis
	scripts/fuzz.sh

# Mixed interactive + streaming + batch load for SOAK_MINUTES (default 10) on one serve,
# asserting goroutines, fds and RSS flat after warm-up.
soak: redis
	scripts/soak.sh $(or $(SOAK_MINUTES),10)

docker:
	docker build -t vllm-proxy:dev .

clean:
	rm -rf $(BIN)
