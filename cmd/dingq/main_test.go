package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestMain gives the tests that run dingq as processes a directory for the
// binary they share, and removes it afterwards.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dingq-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// decodeBody decodes resp's JSON body into v and closes it, failing the
// test on a status other than 200.
func decodeBody(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: HTTP %d", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", resp.Request.URL.Path, err)
	}
}

// TestBenchLine: dingq bench --bench-out writes each scenario's figures as
// a Go benchmark result line, which make bench's report reads.
func TestBenchLine(t *testing.T) {
	var b strings.Builder
	f := &benchFlags{benchOut: &b}
	f.benchLine("calls", benchFigure{100, "utilization-%"}, benchFigure{1.25, "x-ideal"}, benchFigure{0, "throttled"})
	(&benchFlags{}).benchLine("calls", benchFigure{1, "x"}) // no --bench-out: nothing, no panic
	if want := "BenchmarkScenario/calls\t1\t100 utilization-%\t1.25 x-ideal\t0 throttled\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}
