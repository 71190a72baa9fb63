package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/dingq/dingq/producer"
	"github.com/hibiken/asynq"
)

// TestFaultAPILoad: a second process (testdata/loadgen, built without the
// race detector) sends POST /v1/messages to a `dingq api` process on
// loopback at 2,000 requests a second, open loop: each request is due
// 500 µs after the last, answered or not. Every request must be accepted
// and every accepted message queued; the latency percentiles are printed.
// 5 s in make test; with DINGQ_TEST_SOAK set, 30 s.
func TestFaultAPILoad(t *testing.T) {
	const rate = 2000
	dur := 5 * time.Second
	if os.Getenv("DINGQ_TEST_SOAK") != "" {
		dur = 30 * time.Second
	}
	const token = "load-test-api-token-0123456789"
	// No workers: the messages stay queued, to be counted.
	fl := startFleetWith(t, fleetOpts{workers: 0, fakeArgs: []string{"--no-limits"},
		apiYAML: "tokens: [" + token + "]"}, hrApp)
	start(t, fl.dir, "api", fl.bin, fl.env, "api")
	waitHTTP(t, fl.apiURL+"/readyz")

	gen := filepath.Join(t.TempDir(), "loadgen")
	if out, err := exec.Command("go", "build", "-o", gen, "./testdata/loadgen").CombinedOutput(); err != nil {
		t.Fatalf("building the load generator: %v\n%s", err, out)
	}
	out, err := exec.Command(gen, "-url", fl.apiURL, "-token", token, "-rate", strconv.Itoa(rate), "-duration", dur.String()).Output()
	if err != nil {
		t.Fatalf("load generator: %v", err)
	}
	var r struct {
		Requests, Failed   int
		FirstError         string  `json:"first_error"`
		OfferedRate        float64 `json:"offered_rate"`
		P50, P90, P99, Max float64
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("load generator's answer %q: %v", out, err)
	}
	t.Logf("%d requests in %v at %.0f/s (target %d/s): %d failed; latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.1f ms",
		r.Requests, dur, r.OfferedRate, rate, r.Failed, r.P50, r.P90, r.P99, r.Max)
	if r.Failed > 0 {
		t.Errorf("%d of %d requests failed; the first: %s", r.Failed, r.Requests, r.FirstError)
	}
	if r.OfferedRate < 0.9*rate {
		t.Errorf("offered %.0f requests a second, want at least 90%% of %d (the load generator fell behind)", r.OfferedRate, rate)
	}
	// Every accepted message is queued.
	info, err := asynq.NewInspectorFromRedisClient(fl.rdb).GetQueueInfo(producer.QueueDefault)
	if err != nil {
		t.Fatal(err)
	}
	if info.Pending != r.Requests {
		t.Errorf("%d messages pending, want %d", info.Pending, r.Requests)
	}
}
