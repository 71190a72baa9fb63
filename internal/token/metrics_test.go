package token_test

import (
	"context"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/dingq/dingq/internal/metrics"
	"github.com/dingq/dingq/internal/metrics/metricstest"
	"github.com/dingq/dingq/internal/token"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// TestMetrics: two processes share a Redis. The first fetches (a fetch
// ok), then answers from memory; the second takes the token from Redis
// (a redis hit), then answers from memory; a refused fetch counts as an
// error.
func TestMetrics(t *testing.T) {
	mr := miniredis.RunT(t)
	c := newClock()
	f := newFetcher(c)
	process := func() (*token.Cache, *prometheus.Registry) {
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
		t.Cleanup(func() { rdb.Close() })
		reg := prometheus.NewRegistry()
		cache := token.New(f, token.Config{Redis: rdb, KeyPrefix: prefix, Now: c.Now, Metrics: metrics.New(reg)})
		t.Cleanup(cache.Close)
		return cache, reg
	}
	a, regA := process()
	b, regB := process()

	mustToken(t, a, "hr")
	mustToken(t, a, "hr")
	mustToken(t, b, "hr")
	mustToken(t, b, "hr")
	mustToken(t, b, "hr")
	f.setErr(badCredentials())
	if _, err := a.Token(context.Background(), "ops", cred("ops")); err == nil {
		t.Fatal("Token(ops) with refused credentials: no error")
	}

	tests := []struct {
		name   string
		reg    *prometheus.Registry
		metric string
		labels []string
		want   float64
	}{
		{"first process fetched", regA, "dingq_token_fetches_total", []string{"app", "hr", "result", "ok"}, 1},
		{"first process refused", regA, "dingq_token_fetches_total", []string{"app", "ops", "result", "error"}, 1},
		{"first process from memory", regA, "dingq_token_cache_hits_total", []string{"app", "hr", "layer", metrics.LayerMemory}, 1},
		{"first process never from redis", regA, "dingq_token_cache_hits_total", []string{"layer", metrics.LayerRedis}, 0},
		{"second process never fetched", regB, "dingq_token_fetches_total", nil, 0},
		{"second process from redis", regB, "dingq_token_cache_hits_total", []string{"app", "hr", "layer", metrics.LayerRedis}, 1},
		{"second process from memory", regB, "dingq_token_cache_hits_total", []string{"app", "hr", "layer", metrics.LayerMemory}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := metricstest.Value(t, tt.reg, tt.metric, tt.labels...); got != tt.want {
				t.Errorf("%s%v: got %v, want %v", tt.metric, tt.labels, got, tt.want)
			}
		})
	}
	if got := f.count(); got != 2 {
		t.Errorf("gettoken calls: got %d, want 2", got)
	}
}
