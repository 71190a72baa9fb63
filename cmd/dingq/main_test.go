package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
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
