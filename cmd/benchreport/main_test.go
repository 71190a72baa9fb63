package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/dingq/dingq/worker
cpu: Test CPU @ 2GHz
BenchmarkPipeline/asynq-2         	   20000	    190562 ns/op	      5000 tasks/s
BenchmarkPipeline/dingq-2         	   20000	    468411 ns/op	      4000 tasks/s
BenchmarkLatency-2
    bench_test.go:12: a log line
BenchmarkLatency-2                	    3000	   6101545 ns/op	        42.08 max-ms	       2000 max-msgs/s	       1000 msgs/s	        11.5 p50-ms	        30.25 p99-ms
PASS
ok  	github.com/dingq/dingq/worker	16.162s
BenchmarkEnqueue/asynq-2         	   20000	     40251 ns/op	     20000 msgs/s
BenchmarkEnqueue/producer-2      	redis: 2026/11/24 01:00:00 pool.go:770: redis: connection pool: failed to dial
   20000	     95061 ns/op	     10000 msgs/s
batches  45% |██████████████████                      | (4589/10000) [13s:15s]
BenchmarkScenario/broadcast	1	3.02 accept-s	202 api-peak-MiB	506 singles-p50-ms	551 singles-max-ms
`

func TestParse(t *testing.T) {
	r, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if r.machine["cpu"] != "Test CPU @ 2GHz" || r.machine["goos"] != "linux" {
		t.Errorf("machine = %v", r.machine)
	}
	var names []string
	for _, res := range r.results {
		names = append(names, res.name)
	}
	want := "BenchmarkPipeline/asynq BenchmarkPipeline/dingq BenchmarkLatency BenchmarkEnqueue/asynq BenchmarkEnqueue/producer BenchmarkScenario/broadcast"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("results:\n got %s\nwant %s", got, want)
	}
	tests := []struct {
		name, unit string
		want       float64
	}{
		{"BenchmarkPipeline/dingq", "tasks/s", 4000},
		{"BenchmarkLatency", "p99-ms", 30.25},
		{"BenchmarkScenario/broadcast", "accept-s", 3.02},
	}
	for _, tt := range tests {
		if v, ok := r.get(tt.name, tt.unit); !ok || v != tt.want {
			t.Errorf("%s %s = %v, %v; want %v", tt.name, tt.unit, v, ok, tt.want)
		}
	}
	if _, ok := r.get("BenchmarkFanOut/producer", "users/s"); ok {
		t.Error("a benchmark not in the input has a result")
	}
}

// TestParseMedian: a benchmark run several times (go test -count 3) has
// the median of each figure.
func TestParseMedian(t *testing.T) {
	r, err := parse(strings.NewReader("BenchmarkEnqueue/producer-2\t10\t9 ns/op\t12000 msgs/s\n" +
		"BenchmarkEnqueue/producer-2\t10\t5 ns/op\t8000 msgs/s\n" +
		"BenchmarkEnqueue/producer-2\t10\t7 ns/op\t11000 msgs/s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.results) != 1 {
		t.Fatalf("%d results, want 1", len(r.results))
	}
	if v, _ := r.get("BenchmarkEnqueue/producer", "msgs/s"); v != 11000 {
		t.Errorf("msgs/s = %v, want the median 11000", v)
	}
	if v, _ := r.get("BenchmarkEnqueue/producer", "ns/op"); v != 7 {
		t.Errorf("ns/op = %v, want the median 7", v)
	}
}

func TestParseRefusesBadNumber(t *testing.T) {
	_, err := parse(strings.NewReader("BenchmarkX-2\t1\tfast tasks/s\n"))
	if err == nil || !strings.Contains(err.Error(), "tasks/s") {
		t.Errorf("err = %v, want one naming the metric", err)
	}
}

func TestMarkdown(t *testing.T) {
	r, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	writeMarkdown(&b, r)
	out := b.String()
	for _, want := range []string{
		"Machine: linux/amd64, Test CPU @ 2GHz",
		"| Pipeline: queue → handler done | 4,000 tasks/s (dingq's send path) | 5,000 tasks/s (no-op asynq handler) | 0.80× | ≥ 0.7×: met |",
		"| Enqueue: one message | 10,000 msgs/s (producer.Send) | 20,000 msgs/s (asynq client) | 0.50× | ≥ 0.9×: **missed** |",
		"| Fan-out: 100,000 users | – | – | – | ≥ 0.9× (not measured) |",
		"at 1,000 msgs/s (aiming at half of the most, 2,000) | p50 11.5 ms, p99 30.2 ms",
		"| Scenario/broadcast | 3.02 accept-s, 202 api-peak-MiB, 506 singles-p50-ms, 551 singles-max-ms |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
}

func TestWritePlot(t *testing.T) {
	r, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tt := range []struct{ file, magic string }{{"bench.svg", "<?xml"}, {"bench.png", "\x89PNG"}} {
		path := filepath.Join(dir, tt.file)
		if err := writePlot(path, r); err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte(tt.magic)) {
			t.Errorf("%s starts %q, want %q", tt.file, b[:min(len(b), 8)], tt.magic)
		}
		if tt.file == "bench.svg" && !bytes.Contains(b, []byte("4,000")) {
			t.Errorf("the SVG does not show dingq's 4,000 tasks/s")
		}
	}
	if err := writePlot(filepath.Join(dir, "bench.gif"), r); err == nil || !strings.Contains(err.Error(), ".svg or .png") {
		t.Errorf("a .gif: %v, want refused", err)
	}
	empty, _ := parse(strings.NewReader("BenchmarkOther-2\t1\t5 ns/op\n"))
	if err := writePlot(filepath.Join(dir, "none.svg"), empty); err == nil {
		t.Error("a plot of nothing was written")
	}
}
