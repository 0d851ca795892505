# vllm-proxy: build, test, lint, bench, demo. `make help` lists the targets.

GO            ?= go
BIN           := bin
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := $(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)

.PHONY: all build test vet redis lint bench demo docker clean help

all: build test

help:
	@echo "make build   build ./bin/vllm-proxy"
	@echo "make test    install redis-server if needed, then go vet and go test -race ./..."
	@echo "make lint    golangci-lint $(GOLANGCI_LINT_VERSION) (installed into ./bin on first use)"
	@echo "make bench   go benchmarks of every package"
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

vet:
	$(GO) vet ./...

test: redis vet
	$(GO) test -race ./...

$(GOLANGCI_LINT):
	@mkdir -p $(BIN)
	GOBIN=$(CURDIR)/$(BIN) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(BIN)/golangci-lint $(GOLANGCI_LINT)

lint: $(GOLANGCI_LINT)
	$(GOLANGCI_LINT) run ./...

# Go benchmarks for now; the load-generator runs against the simulator (docs/BENCHMARKS.md)
# come with later issues.
bench:
	$(GO) test -run='^$$' -bench=. ./...

demo:
	$(GO) run ./cmd/vllm-proxy demo

docker:
	docker build -t vllm-proxy:dev .

clean:
	rm -rf $(BIN)
