package main

import (
	"context"
	"strings"
	"testing"

	"github.com/dingq/dingq/internal/redistest"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestWarnEviction: a Redis that may evict keys is reported loudly, one
// that may not is not.
func TestWarnEviction(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts redis-server; skipped with -short")
	}
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	ctx := context.Background()
	for _, tt := range []struct {
		policy string
		loud   bool
	}{{"allkeys-lru", true}, {"volatile-ttl", true}, {"noeviction", false}} {
		if err := rdb.ConfigSet(ctx, "maxmemory-policy", tt.policy).Err(); err != nil {
			t.Fatal(err)
		}
		core, logs := observer.New(zap.InfoLevel)
		warnEviction(ctx, rdb, zap.New(core))
		errs := logs.FilterLevelExact(zap.ErrorLevel).All()
		if got := len(errs) == 1 && strings.Contains(errs[0].Message, "noeviction") &&
			errs[0].ContextMap()["maxmemory_policy"] == tt.policy; got != tt.loud {
			t.Errorf("policy %s: error logged %v (%v), want %v", tt.policy, len(errs) > 0, logs.All(), tt.loud)
		}
		if !tt.loud && logs.Len() != 0 {
			t.Errorf("policy %s: logged %v, want nothing", tt.policy, logs.All())
		}
	}
}

// TestWarnEvictionCluster: on a cluster one master that may evict keys is
// enough for the warning.
func TestWarnEvictionCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster; skipped with -short")
	}
	c := redistest.StartCluster(t, 3)
	rdb := c.Client(t)
	ctx := context.Background()
	for i, tt := range []struct {
		policy string
		loud   bool
	}{{"noeviction", false}, {"allkeys-lru", true}} {
		// Only the last master's policy changes.
		one := redis.NewClient(&redis.Options{Addr: c.Addrs[len(c.Addrs)-1]})
		if err := one.ConfigSet(ctx, "maxmemory-policy", tt.policy).Err(); err != nil {
			t.Fatal(err)
		}
		one.Close()
		core, logs := observer.New(zap.InfoLevel)
		warnEviction(ctx, rdb, zap.New(core))
		if got := logs.FilterLevelExact(zap.ErrorLevel).Len() == 1; got != tt.loud {
			t.Errorf("case %d, one master %s: error logged %v (%v), want %v", i, tt.policy, got, logs.All(), tt.loud)
		}
	}
}
