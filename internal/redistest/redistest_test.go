package redistest_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dingq/dingq/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// TestCluster: the cluster spreads keys over its masters and refuses a
// script whose keys are in two slots.
func TestCluster(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := redistest.StartCluster(t, 3)
	t.Logf("3-master cluster up in %s", time.Since(start).Round(time.Millisecond))
	rdb := c.Client(t)
	ctx := context.Background()
	for i := range 100 {
		if err := rdb.Set(ctx, fmt.Sprint("k", i), i, 0).Err(); err != nil {
			t.Fatalf("SET: %v", err)
		}
	}
	var n int64
	for _, addr := range c.Addrs {
		node := redis.NewClient(&redis.Options{Addr: addr})
		keys, err := node.DBSize(ctx).Result()
		node.Close()
		if err != nil {
			t.Fatal(err)
		}
		if keys == 0 {
			t.Errorf("node %s holds no key of 100", addr)
		}
		n += keys
	}
	if n != 100 {
		t.Errorf("keys on the nodes: got %d, want 100", n)
	}
	err := rdb.Eval(ctx, "return redis.call('MGET', KEYS[1], KEYS[2])", []string{"a", "b"}).Err()
	if err == nil {
		t.Errorf("a script on keys of two slots: got no error, want CROSSSLOT")
	}
}

// TestSentinel: the failover client follows the master through a
// failover, and a FailoverPaused loses none of the writes made during it.
func TestSentinel(t *testing.T) {
	t.Parallel()
	start := time.Now()
	s := redistest.StartSentinel(t)
	t.Logf("master, replica and sentinel up in %s", time.Since(start).Round(time.Millisecond))
	rdb := s.Client(t)
	ctx := context.Background()
	old := s.MasterAddr(t)
	if old != s.Master.Addr {
		t.Errorf("master: got %s, want %s", old, s.Master.Addr)
	}
	var acked, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := rdb.RPush(ctx, "writes", "x").Err(); err != nil {
					failed.Add(1)
					time.Sleep(10 * time.Millisecond)
				} else {
					acked.Add(1)
				}
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	start = time.Now()
	now := s.FailoverPaused(t, 5*time.Second)
	t.Logf("failover %s → %s in %s", old, now, time.Since(start).Round(time.Millisecond))
	if now != s.Master.Addr || now == old {
		t.Errorf("master after failover: got %s, want %s", now, s.Master.Addr)
	}
	// Writing goes on on the new master.
	for n := acked.Load(); acked.Load() < n+100; {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("no write acknowledged since the failover: %d failed", failed.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	n, err := rdb.LLen(ctx, "writes").Result()
	if err != nil || n != acked.Load() {
		t.Errorf("writes kept: got %d (%v), want the %d acknowledged", n, err, acked.Load())
	}
	t.Logf("%d writes acknowledged and kept, %d refused", n, failed.Load())
}

// TestRestart: a server with an AOF fsynced at every write keeps every
// acknowledged write through Stop and Restart on its port, and a client
// made before the restart reconnects by itself.
func TestRestart(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	rdb := s.Client(t)
	ctx := context.Background()
	for i := range 100 {
		if err := rdb.RPush(ctx, "writes", i).Err(); err != nil {
			t.Fatal(err)
		}
	}
	addr := s.Addr
	s.Stop(t)
	if err := rdb.Ping(ctx).Err(); err == nil {
		t.Fatalf("PING answered with the server stopped")
	}
	s.Stop(t) // stopping twice is harmless
	start := time.Now()
	s.Restart(t)
	t.Logf("restarted in %s", time.Since(start).Round(time.Millisecond))
	if s.Addr != addr {
		t.Errorf("address after Restart: got %s, want %s", s.Addr, addr)
	}
	if n, err := rdb.LLen(ctx, "writes").Result(); err != nil || n != 100 {
		t.Errorf("writes after the restart: got %d (%v), want 100", n, err)
	}
	s.Restart(t) // a running server is stopped first
	if n, err := rdb.LLen(ctx, "writes").Result(); err != nil || n != 100 {
		t.Errorf("writes after a second restart: got %d (%v), want 100", n, err)
	}
}
