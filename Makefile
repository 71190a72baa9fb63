# dingq — `make help` lists the targets.
GO       ?= go
BIN      ?= bin/dingq
PKGS     ?= ./...
BENCH_DIR  ?= bench-results
BENCH_PLOT ?= docs/bench.svg

# bash with pipefail: a benchmark piped through tee still fails make.
SHELL       := bash
.SHELLFLAGS := -o pipefail -c

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
bench: build ## Benchmarks (~4 min, needs redis-server): dingq against raw asynq, latency, enqueue, rate limits, 1M broadcast; prints a markdown table and writes docs/bench.svg
	@mkdir -p $(BENCH_DIR) $(dir $(BENCH_PLOT)) && rm -f $(BENCH_DIR)/*.txt
	$(GO) test -run '^$$' -bench '^BenchmarkPipeline$$' -benchtime 20000x -count 1 ./worker | tee $(BENCH_DIR)/pipeline.txt
	$(GO) test -run '^$$' -bench '^BenchmarkLatency$$' -benchtime 3000x -count 1 ./worker | tee $(BENCH_DIR)/latency.txt
	$(GO) test -run '^$$' -bench '^BenchmarkEnqueue$$' -benchtime 20000x -count 3 ./producer | tee $(BENCH_DIR)/enqueue.txt
	$(GO) test -run '^$$' -bench '^BenchmarkFanOut$$' -benchtime 10x -count 3 ./producer | tee $(BENCH_DIR)/fanout.txt
	$(BIN) bench --scenario calls,recipients,broadcast --messages 600 --calls-per-second 50 \
		--users 20000 --recipients-per-minute 60000 --bench-out $(BENCH_DIR)/scenarios.txt
	@echo
	@$(GO) run ./cmd/benchreport -plot $(BENCH_PLOT) $(BENCH_DIR)/*.txt | tee $(BENCH_DIR)/report.md

.PHONY: profile
profile: ## CPU profile of dingq's send path (BenchmarkPipeline/dingq) into $(BENCH_DIR)/cpu.pprof, top functions printed
	@mkdir -p $(BENCH_DIR)
	$(GO) test -run '^$$' -bench '^BenchmarkPipeline$$/^dingq$$' -benchtime 20000x -count 1 \
		-cpuprofile $(BENCH_DIR)/cpu.pprof -o $(BENCH_DIR)/worker.test ./worker
	$(GO) tool pprof -top -nodecount 30 $(BENCH_DIR)/worker.test $(BENCH_DIR)/cpu.pprof

SOAK     ?= 10m
SOAK_LOG ?= /tmp/dingq-soak

# soak runs two processes: the in-process test counts its process's
# goroutines and file descriptors, so it runs alone in its own; the fleet
# tests run side by side in the other.
.PHONY: soak
soak: ## Fault suite, long form: each TestFault* loops for SOAK (10m) with kills, Redis restarts, DingTalk faults; totals at the end
	@echo "soak: each fault test loops for $(SOAK); full logs in $(SOAK_LOG).fleet and $(SOAK_LOG).dingtalk"
	@DINGQ_TEST_SOAK=$(SOAK) $(GO) test -race -count=1 -timeout 0 -v -run '^TestFaultDingTalkMisbehaves$$' ./cmd/dingq \
		> $(SOAK_LOG).dingtalk 2>&1 & \
	DINGQ_TEST_SOAK=$(SOAK) $(GO) test -race -count=1 -timeout 0 -v -parallel 3 \
		-run '^TestFault(KillWorker|KillWorkerBroadcast|RedisRestart)$$' ./cmd/dingq > $(SOAK_LOG).fleet 2>&1; \
	fleet=$$?; wait $$!; dingtalk=$$?; \
	grep -h -e '^\s*--- FAIL' -e 'TOTALS' -e '^ok' -e '^FAIL' $(SOAK_LOG).fleet $(SOAK_LOG).dingtalk | cut -c1-400; \
	exit $$((fleet | dingtalk))

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
