# dingq — `make help` lists the targets.
GO       ?= go
BIN      ?= bin/dingq
PKGS     ?= ./...

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-8s %s\n", $$1, $$2}'

.PHONY: run
run: ## Run the demo: in-memory Redis + fake DingTalk + api + worker in one process
	$(GO) run ./cmd/dingq demo

.PHONY: build
build: ## Build the dingq binary into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/dingq

.PHONY: test
test: ## Vet, then run every test with the race detector (needs redis-server, chromium, docker-compose)
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 $(PKGS)

.PHONY: test-short
test-short: ## Unit tests only: no processes, no redis-server
	$(GO) test -short -count=1 $(PKGS)

.PHONY: lint
lint: ## gofmt check, go vet, and staticcheck when installed
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@if command -v staticcheck >/dev/null; then staticcheck $(PKGS); else echo "staticcheck not installed: go install honnef.co/go/tools/cmd/staticcheck@latest"; fi

.PHONY: bench
bench: build ## Measure the fleet against DingTalk's rate limits (dingq bench; ~13 min, needs redis-server)
	$(BIN) bench $(BENCH_FLAGS)

.PHONY: fuzz
fuzz: ## Run each fuzz test for 30s
	$(GO) test -run='^$$' -fuzz=FuzzLoad -fuzztime=30s ./internal/config
	$(GO) test -run='^$$' -fuzz=FuzzSendBody -fuzztime=30s ./internal/api
	$(GO) test -run='^$$' -fuzz=FuzzReceiver -fuzztime=30s ./internal/callback
	$(GO) test -run='^$$' -fuzz=FuzzCallbackDecrypt -fuzztime=30s ./dingtalk
	$(GO) test -run='^$$' -fuzz=FuzzMessageValidate -fuzztime=30s ./producer

.PHONY: clean
clean: ## Remove build output
	rm -rf bin
