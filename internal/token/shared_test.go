package token_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/dingq/dingq/internal/token"
)

const prefix = "test"

// fleet is several "processes" (caches, each with its own Redis client)
// sharing one Redis, one fetcher and one clock.
type fleet struct {
	mr     *miniredis.Miniredis // nil on a real Redis
	b      *backend
	prefix string // the caches' KeyPrefix
	f      *fetcher
	clock  *clock
	caches []*token.Cache
}

// setupFleet returns n caches sharing a fresh miniredis, each configured
// by cfg (Redis, KeyPrefix and Now are set here), with KeyPrefix prefix.
func setupFleet(t *testing.T, n int, cfg token.Config) *fleet {
	t.Helper()
	return newFleet(t, miniBackend(t), prefix, n, cfg)
}

// setupFleetOn returns n caches sharing backend b, each with a client of
// its own and configured by cfg (Redis, KeyPrefix and Now are set here),
// under a key prefix of their own.
func setupFleetOn(t *testing.T, b *backend, n int, cfg token.Config) *fleet {
	t.Helper()
	return newFleet(t, b, newPrefix(), n, cfg)
}

func newFleet(t *testing.T, b *backend, prefix string, n int, cfg token.Config) *fleet {
	c := newClock()
	fl := &fleet{mr: b.mr, b: b, prefix: prefix, f: newFetcher(c), clock: c}
	for range n {
		cf := cfg
		cf.Redis, cf.KeyPrefix, cf.Now = b.client(t), fl.prefix, c.Now
		cache := token.New(fl.f, cf)
		t.Cleanup(cache.Close)
		fl.caches = append(fl.caches, cache)
	}
	return fl
}

// sharedValue returns the token Redis holds for app, "" if none.
func (fl *fleet) sharedValue(app string) string {
	v, _ := fl.b.admin.HGet(context.Background(), fl.prefix+":token:{"+app+"}", "token").Result()
	return v
}

func testSharedOneFetchPerFleet(t *testing.T, b *backend) {
	fl := setupFleetOn(t, b, 3, token.Config{})
	f := fl.f
	f.started = make(chan string, 2)
	f.release = make(chan struct{})

	type result struct {
		app, tok string
		err      error
	}
	apps := []string{"a", "b"}
	const callers = 40 // per app per process
	results := make(chan result, len(apps)*len(fl.caches)*callers)
	var wg sync.WaitGroup
	for _, cache := range fl.caches {
		for _, app := range apps {
			for range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					tok, err := cache.Token(context.Background(), app, cred(app))
					results <- result{app, tok, err}
				}()
			}
		}
	}
	// Both apps' fetches start (apps never wait for each other); then the
	// other processes are waiting on the lock, not fetching.
	for range apps {
		select {
		case <-f.started:
		case <-time.After(5 * time.Second):
			t.Fatalf("timed out waiting for fetches to start")
		}
	}
	close(f.release)
	wg.Wait()
	close(results)
	for r := range results {
		if r.err != nil {
			t.Errorf("Token(%s): %v", r.app, r.err)
		} else if want := r.app + "-1"; r.tok != want {
			t.Errorf("Token(%s): got %v, want %v", r.app, r.tok, want)
		}
	}
	for _, app := range apps {
		if got, want := f.countFor(app), 1; got != want {
			t.Errorf("fetches for %s: got %v, want %v", app, got, want)
		}
		if got, want := fl.sharedValue(app), app+"-1"; got != want {
			t.Errorf("Redis token of %s: got %v, want %v", app, got, want)
		}
	}
	// The lock was released.
	if n, err := fl.b.admin.Exists(context.Background(), fl.prefix+":token:{a}:lock").Result(); err != nil || n != 0 {
		t.Errorf("lock of a still held after the fetch")
	}
}

func testSharedNewProcessTakesToken(t *testing.T, b *backend) {
	fl := setupFleetOn(t, b, 2, token.Config{})
	first := mustToken(t, fl.caches[0], "a")
	second := mustToken(t, fl.caches[1], "a")
	if first != second {
		t.Errorf("second process's token: got %v, want %v", second, first)
	}
	if got, want := fl.f.count(), 1; got != want {
		t.Errorf("fetches: got %v, want %v", got, want)
	}
}

// testSharedRefresh: when the token nears its expiry one process refreshes
// it in the background and the others take the refreshed token from Redis.
func testSharedRefresh(t *testing.T, b *backend) {
	fl := setupFleetOn(t, b, 3, token.Config{})
	fl.f.setLife(5 * time.Second)
	for _, cache := range fl.caches {
		mustToken(t, cache, "a")
	}
	for round := 1; round <= 5; round++ {
		fl.clock.Add(4500 * time.Millisecond) // the refresh window: 0.5 s left
		for i, cache := range fl.caches {
			if got := mustToken(t, cache, "a"); got != fmt.Sprintf("a-%d", round) {
				t.Fatalf("round %d, process %d: got %v while refreshing, want the old token", round, i, got)
			}
		}
		want := fmt.Sprintf("a-%d", round+1)
		for i, cache := range fl.caches {
			waitFor(t, fmt.Sprintf("round %d, process %d refreshed", round, i),
				func() bool { return mustToken(t, cache, "a") == want })
		}
		if got, want := fl.f.count(), round+1; got != want {
			t.Fatalf("round %d: fetches: got %v, want %v", round, got, want)
		}
	}
}

// testSharedInvalidate: a refused token is dropped by compare-and-delete,
// so a token another process fetched meanwhile survives, and the fleet
// fetches exactly once more.
func testSharedInvalidate(t *testing.T, b *backend) {
	fl := setupFleetOn(t, b, 3, token.Config{})
	ctx := context.Background()
	old := ""
	for _, cache := range fl.caches {
		old = mustToken(t, cache, "a")
	}
	// Process 0 is told the token is invalid, drops it and fetches anew.
	fl.caches[0].Invalidate(ctx, "a", old)
	if got := fl.sharedValue("a"); got != "" {
		t.Errorf("Redis token after Invalidate: got %v, want none", got)
	}
	fresh := mustToken(t, fl.caches[0], "a")
	if fresh == old {
		t.Fatalf("token after Invalidate: got the old one, %v", fresh)
	}
	// The others learn the same about the old token later: their
	// Invalidate leaves the fresh one.
	for _, cache := range fl.caches[1:] {
		cache.Invalidate(ctx, "a", old)
		if got := mustToken(t, cache, "a"); got != fresh {
			t.Errorf("token after late Invalidate: got %v, want %v", got, fresh)
		}
	}
	if got := fl.sharedValue("a"); got != fresh {
		t.Errorf("Redis token: got %v, want %v", got, fresh)
	}
	if got, want := fl.f.count(), 2; got != want {
		t.Errorf("fetches: got %v, want %v", got, want)
	}
}

// TestSharedStaleNeverOverwrites: a process whose fetch outlived its lock
// does not replace the token fetched by the lock's next holder.
func TestSharedStaleNeverOverwrites(t *testing.T) {
	const lockTTL = 3 * time.Second
	fl := setupFleet(t, 2, token.Config{LockTTL: lockTTL})
	slow, fast := fl.caches[0], fl.caches[1]
	fl.f.started = make(chan string, 2)
	release := make(chan struct{})
	fl.f.setRelease(release)

	slowTok := make(chan string, 1)
	go func() { slowTok <- mustToken(t, slow, "a") }()
	<-fl.f.started // slow is fetching "a-1", holding the lock
	fl.mr.FastForward(lockTTL)

	// The lock expired: fast takes it and fetches "a-2"...
	fl.f.setRelease(nil)
	fastTok := make(chan string, 1)
	go func() { fastTok <- mustToken(t, fast, "a") }()
	<-fl.f.started
	// ...which both must end up using, once slow's fetch returns too.
	if got, want := <-fastTok, "a-2"; got != want {
		t.Errorf("fast process: got %v, want %v", got, want)
	}
	close(release)
	if got, want := <-slowTok, "a-2"; got != want {
		t.Errorf("slow process: got %v, want %v", got, want)
	}
	if got, want := fl.sharedValue("a"), "a-2"; got != want {
		t.Errorf("Redis token: got %v, want %v", got, want)
	}
	if got, want := mustToken(t, slow, "a"), "a-2"; got != want {
		t.Errorf("slow process afterwards: got %v, want %v", got, want)
	}
}

// TestSharedLockHolderGone: a process that died holding the lock blocks the
// others only until the lock's TTL.
func TestSharedLockHolderGone(t *testing.T) {
	fl := setupFleet(t, 1, token.Config{LockTTL: 10 * time.Second})
	fl.mr.Set(prefix+":token:{a}:lock", "dead-process")
	fl.mr.SetTTL(prefix+":token:{a}:lock", 10*time.Second)

	got := make(chan string, 1)
	go func() { got <- mustToken(t, fl.caches[0], "a") }()
	select {
	case tok := <-got:
		t.Fatalf("token while the lock is held: got %v, want a wait", tok)
	case <-time.After(200 * time.Millisecond):
	}
	fl.mr.FastForward(10 * time.Second)
	select {
	case tok := <-got:
		if tok != "a-1" {
			t.Errorf("token: got %v, want a-1", tok)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for the token after the lock expired")
	}
}

func testSharedBadCredentials(t *testing.T, b *backend) {
	fl := setupFleetOn(t, b, 3, token.Config{})
	ctx := context.Background()
	fl.f.setErr(badCredentials())
	_, err := fl.caches[0].Token(ctx, "a", cred("a"))
	checkBadCredentials(t, "first Token", err)

	// Every process now fails fast, without a call.
	for i, cache := range fl.caches {
		for range 100 {
			_, err := cache.Token(ctx, "a", cred("a"))
			if !errors.Is(err, token.ErrBadCredentials) {
				t.Fatalf("process %d: got %v, want %v", i, err, token.ErrBadCredentials)
			}
			checkBadCredentials(t, fmt.Sprintf("process %d", i), err)
		}
	}
	if got, want := fl.f.count(), 1; got != want {
		t.Errorf("fetches: got %v, want %v", got, want)
	}
	// Nothing in Redis shows the secret.
	if dump := fl.b.dump(t, fl.prefix); !strings.Contains(dump, fl.prefix+":token:{a}:refused") || strings.Contains(dump, cred("a").AppSecret) {
		t.Fatalf("the app secret is in Redis:\n%s", dump)
	}

	// A process started with fixed credentials is not held back by the
	// refusal of the old ones.
	fl.f.setErr(nil)
	fixed := cred("a")
	fixed.AppSecret = "fixed"
	tok, err := fl.caches[2].Token(ctx, "a", fixed)
	if err != nil {
		t.Fatalf("Token with fixed credentials: %v", err)
	}
	if got, want := tok, "a-2"; got != want {
		t.Errorf("token with fixed credentials: got %v, want %v", got, want)
	}
}

// TestSharedRedisDown: with Redis unreachable a process keeps using its
// token, and once that has expired fetches one on its own rather than fail.
func TestSharedRedisDown(t *testing.T) {
	fl := setupFleet(t, 1, token.Config{})
	cache := fl.caches[0]
	ctx := context.Background()
	mustToken(t, cache, "a")
	fl.mr.Close()

	// In the refresh window, and past the point where it would wait for a
	// new token: the held token is still valid at DingTalk, so it is used.
	for _, advance := range []time.Duration{2*time.Hour - token.DefaultRefreshMargin, token.DefaultRefreshMargin * 3 / 4} {
		fl.clock.Add(advance)
		tok, err := cache.Token(ctx, "a", cred("a"))
		if err != nil || tok != "a-1" {
			t.Fatalf("after %s with Redis down: got %q, %v; want a-1", advance, tok, err)
		}
	}
	if got, want := fl.f.count(), 1; got != want {
		t.Errorf("fetches while the token is valid: got %v, want %v", got, want)
	}
	fl.clock.Add(time.Hour)
	tok, err := cache.Token(ctx, "a", cred("a"))
	if err != nil || tok != "a-2" {
		t.Fatalf("after expiry with Redis down: got %q, %v; want a-2", tok, err)
	}
	if got, want := mustToken(t, cache, "a"), "a-2"; got != want {
		t.Errorf("next call: got %v, want %v", got, want)
	}
	if got, want := fl.f.count(), 2; got != want {
		t.Errorf("fetches: got %v, want %v", got, want)
	}
}

// testSharedOtherCredentials: a token in Redis for other credentials under
// the same app name is never handed out.
func testSharedOtherCredentials(t *testing.T, b *backend) {
	fl := setupFleetOn(t, b, 2, token.Config{})
	mustToken(t, fl.caches[0], "a")
	other := cred("other-key")
	tok, err := fl.caches[1].Token(context.Background(), "a", other)
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if got, want := tok, "other-key-1"; got != want {
		t.Errorf("token for other credentials: got %v, want %v", got, want)
	}
}

func TestClosed(t *testing.T) {
	cache, _, _ := setup(t)
	cache.Close()
	if _, err := cache.Token(context.Background(), "a", cred("a")); !errors.Is(err, token.ErrClosed) {
		t.Errorf("Token after Close: got %v, want %v", err, token.ErrClosed)
	}
}

// testSharedRefusedNotTakenBack: a token DingTalk refused is not taken from
// Redis again, even when Redis still holds it (another process's load put
// it back, or its drop has not happened yet): the process fetches anew.
func testSharedRefusedNotTakenBack(t *testing.T, b *backend) {
	fl := setupFleetOn(t, b, 1, token.Config{})
	cache := fl.caches[0]
	old := mustToken(t, cache, "a")
	cache.Invalidate(context.Background(), "a", old)
	err := fl.b.admin.HSet(context.Background(), fl.prefix+":token:{a}", "token", old,
		"expires_at", fl.clock.Now().Add(time.Hour).UnixMilli(), "life", 2*time.Hour.Milliseconds(), "id", "a").Err()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mustToken(t, cache, "a"), "a-2"; got != want {
		t.Errorf("token after Invalidate: got %v, want %v", got, want)
	}
	if got, want := fl.sharedValue("a"), "a-2"; got != want {
		t.Errorf("Redis token: got %v, want %v", got, want)
	}
}
