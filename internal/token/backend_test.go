package token_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/dingq/dingq/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// backend is a Redis the shared cache's tests run on. Tests sharing one
// keep apart by their key prefixes.
type backend struct {
	name string
	// mr is the miniredis, nil for a real Redis.
	mr *miniredis.Miniredis
	// client returns a new client, as another process would have.
	client func(t *testing.T) redis.UniversalClient
	// admin is the test's own client, to look at and change keys.
	admin redis.UniversalClient
}

// backends are every Redis the shared cache must work on: each starts its
// servers for the test it is given.
var backends = []struct {
	name  string
	start func(t *testing.T) *backend
}{
	{"miniredis", miniBackend},
	{"redis", func(t *testing.T) *backend {
		rs := redistest.Start(t)
		return realBackend(t, "redis", func(t *testing.T) redis.UniversalClient { return rs.Client(t) })
	}},
	{"cluster", func(t *testing.T) *backend {
		c := redistest.StartCluster(t, 3)
		return realBackend(t, "cluster", func(t *testing.T) redis.UniversalClient { return c.Client(t) })
	}},
	{"sentinel", func(t *testing.T) *backend {
		s := redistest.StartSentinel(t)
		return realBackend(t, "sentinel", func(t *testing.T) redis.UniversalClient { return s.Client(t) })
	}},
}

// miniBackend is a fresh miniredis. Its clients give up fast, for the
// tests that stop it.
func miniBackend(t *testing.T) *backend {
	mr := miniredis.RunT(t)
	client := func(t *testing.T) redis.UniversalClient {
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1, DialerRetries: 1,
			DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond})
		t.Cleanup(func() { rdb.Close() })
		return rdb
	}
	return &backend{name: "miniredis", mr: mr, client: client, admin: client(t)}
}

func realBackend(t *testing.T, name string, client func(t *testing.T) redis.UniversalClient) *backend {
	return &backend{name: name, client: client, admin: client(t)}
}

// sharedTests run on every backend.
var sharedTests = []struct {
	name string
	run  func(t *testing.T, b *backend)
}{
	{"OneFetchPerFleet", testSharedOneFetchPerFleet},
	{"NewProcessTakesToken", testSharedNewProcessTakesToken},
	{"Refresh", testSharedRefresh},
	{"Invalidate", testSharedInvalidate},
	{"BadCredentials", testSharedBadCredentials},
	{"OtherCredentials", testSharedOtherCredentials},
	{"RefusedNotTakenBack", testSharedRefusedNotTakenBack},
}

// TestShared runs the shared cache's tests on miniredis, a redis-server,
// a Redis Cluster of 3 masters and a master found through Sentinel.
func TestShared(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			b := be.start(t)
			t.Logf("%s up in %s", be.name, time.Since(start).Round(time.Millisecond))
			for _, tt := range sharedTests {
				t.Run(tt.name, func(t *testing.T) { tt.run(t, b) })
			}
		})
	}
}

var fleetSeq atomic.Int64

// newPrefix returns a key prefix no other fleet of the package uses.
func newPrefix() string { return fmt.Sprintf("%s%d", prefix, fleetSeq.Add(1)) }

// dump returns every key under prefix and its value, as text, from every
// master of b.
func (b *backend) dump(t *testing.T, prefix string) string {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex // ForEachMaster scans the masters at once
	var out strings.Builder
	scan := func(ctx context.Context, rdb *redis.Client) error {
		iter := rdb.Scan(ctx, 0, prefix+":*", 100).Iterator()
		for iter.Next(ctx) {
			key := iter.Val()
			typ, err := rdb.Type(ctx, key).Result()
			if err != nil {
				return err
			}
			switch typ {
			case "string":
				v, err := rdb.Get(ctx, key).Result()
				if err != nil {
					return err
				}
				mu.Lock()
				fmt.Fprintf(&out, "%s = %s\n", key, v)
				mu.Unlock()
			case "hash":
				v, err := rdb.HGetAll(ctx, key).Result()
				if err != nil {
					return err
				}
				mu.Lock()
				fmt.Fprintf(&out, "%s = %v\n", key, v)
				mu.Unlock()
			default:
				mu.Lock()
				fmt.Fprintf(&out, "%s: a %s\n", key, typ)
				mu.Unlock()
			}
		}
		return iter.Err()
	}
	var err error
	switch rdb := b.admin.(type) {
	case *redis.ClusterClient:
		err = rdb.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, rdb)
	default:
		t.Fatalf("dump: a %T", b.admin)
	}
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	return out.String()
}
