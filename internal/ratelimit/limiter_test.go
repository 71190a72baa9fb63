package ratelimit_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/dingq/dingq/internal/ratelimit"
	"github.com/dingq/dingq/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// setup returns a limiter on a miniredis whose clock the test sets.
func setup(t *testing.T) (*ratelimit.Limiter, *miniredis.Miniredis, *time.Time) {
	t.Helper()
	mr := miniredis.RunT(t)
	now := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	mr.SetTime(now)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return ratelimit.New(rdb, "test"), mr, &now
}

var (
	calls20      = ratelimit.Limit{N: 20, Per: time.Second}
	recipients5k = ratelimit.Limit{N: 5000, Per: time.Minute}
)

func reserve(t *testing.T, l *ratelimit.Limiter, req ratelimit.Request, maxWait time.Duration) ratelimit.Decision {
	t.Helper()
	d, err := l.Reserve(context.Background(), req, maxWait)
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	return d
}

// maxInWindow returns the most cost admitted in any window of length w,
// given admissions at times at with costs.
func maxInWindow(at []time.Duration, cost []int, w time.Duration) int {
	best := 0
	for i := range at {
		sum := 0
		for j := range at {
			// Windows (at[i]-w, at[i]]: the sliding window ending at each
			// admission is where the most can be.
			if at[j] > at[i]-w && at[j] <= at[i] {
				sum += cost[j]
			}
		}
		best = max(best, sum)
	}
	return best
}

// TestCallsNeverOverLimit: reservations with a long enough wait are all
// granted, and their slots never put more than the limit in any second.
func TestCallsNeverOverLimit(t *testing.T) {
	l, _, _ := setup(t)
	req := ratelimit.Request{App: "hr", API: "/send", Calls: calls20}
	var at []time.Duration
	var cost []int
	for i := range 100 {
		d := reserve(t, l, req, time.Minute)
		if !d.Allowed {
			t.Fatalf("reservation %d: denied, want a slot", i)
		}
		at, cost = append(at, d.Wait), append(cost, 1)
	}
	if got := maxInWindow(at, cost, time.Second); got > 20 {
		t.Errorf("most calls in a second: got %d, want at most 20", got)
	}
	// 19 a second (one of the 20 is kept for the call that straddles a
	// window's start): the 100th slot is at 99/19 s.
	if got, want := at[99], 99*time.Second/19; got < want-time.Millisecond || got > want+time.Millisecond {
		t.Errorf("100th slot: got %v, want %v", got, want)
	}
}

// TestRecipientsNeverOverLimit: 100-recipient calls stay under the
// recipients limit in every window and use at least 95% of it.
func TestRecipientsNeverOverLimit(t *testing.T) {
	l, _, _ := setup(t)
	req := ratelimit.Request{App: "hr", API: "/send", Recipients: recipients5k, Cost: 100}
	var at []time.Duration
	var cost []int
	for i := range 300 { // 30,000 recipients
		d := reserve(t, l, req, time.Hour)
		if !d.Allowed {
			t.Fatalf("reservation %d: denied", i)
		}
		at, cost = append(at, d.Wait), append(cost, 100)
	}
	if got := maxInWindow(at, cost, time.Minute); got > 5000 {
		t.Errorf("most recipients in a minute: got %d, want at most 5000", got)
	}
	// Ideal: 30,000 at 5,000 a minute, 6 minutes.
	last := at[len(at)-1]
	if ideal := 6 * time.Minute; last > ideal*105/100 {
		t.Errorf("last slot at %v, want within 5%% of the ideal %v", last, ideal)
	}
}

// TestAllOrNothing: a call denied by one limit takes nothing from the
// others.
func TestAllOrNothing(t *testing.T) {
	l, _, _ := setup(t)
	small := ratelimit.Limit{N: 200, Per: time.Minute}
	both := ratelimit.Request{App: "hr", API: "/send", Calls: calls20, Recipients: small, Cost: 100}
	if d := reserve(t, l, both, 0); !d.Allowed || d.Wait != 0 {
		t.Fatalf("first call: %+v, want allowed at once", d)
	}
	// The recipients budget is spent; ten more calls are denied...
	for i := range 10 {
		d := reserve(t, l, both, 0)
		if d.Allowed || d.Limit != ratelimit.LimitRecipients {
			t.Fatalf("call %d: %+v, want denied by recipients", i, d)
		}
	}
	// ...and took no calls budget: after one call interval a call without
	// recipients goes at once.
	callsOnly := ratelimit.Request{App: "hr", API: "/send", Calls: calls20}
	d := reserve(t, l, callsOnly, time.Second)
	if !d.Allowed || d.Wait > time.Second/19+time.Millisecond {
		t.Errorf("call after denials: %+v, want a slot within one interval", d)
	}
}

func TestDeniedBeyondMaxWait(t *testing.T) {
	l, _, _ := setup(t)
	req := ratelimit.Request{App: "hr", API: "/send", Calls: ratelimit.Limit{N: 2, Per: time.Second}}
	reserve(t, l, req, 0)
	d := reserve(t, l, req, 100*time.Millisecond)
	if d.Allowed || d.Limit != ratelimit.LimitCalls || d.Wait <= 100*time.Millisecond {
		t.Fatalf("second call: %+v, want denied by calls with a wait over 100ms", d)
	}
	// Nothing was reserved: a wait long enough gets the same slot.
	d2 := reserve(t, l, req, time.Second)
	if !d2.Allowed || d2.Wait != d.Wait {
		t.Errorf("third call: %+v, want allowed after %v", d2, d.Wait)
	}
}

func TestAppsAndAPIsApart(t *testing.T) {
	l, _, _ := setup(t)
	for _, req := range []ratelimit.Request{
		{App: "hr", API: "/send", Calls: calls20},
		{App: "ops", API: "/send", Calls: calls20},
		{App: "hr", API: "/result", Calls: calls20},
	} {
		if d := reserve(t, l, req, 0); !d.Allowed || d.Wait != 0 {
			t.Errorf("%s %s: %+v, want allowed at once", req.App, req.API, d)
		}
	}
}

func TestFleetLimit(t *testing.T) {
	l, _, _ := setup(t)
	fleet := ratelimit.Limit{N: 3, Per: 20 * time.Second}
	var waits []time.Duration
	for _, app := range []string{"a", "b", "c", "d"} {
		d := reserve(t, l, ratelimit.Request{App: app, API: "/send", Fleet: fleet}, time.Minute)
		waits = append(waits, d.Wait)
	}
	if !slices.IsSorted(waits) || waits[1] != 10*time.Second || waits[3] != 30*time.Second {
		t.Errorf("slots of four apps under one fleet limit of 3 per 20s: %v, want 0s 10s 20s 30s", waits)
	}
}

func TestPause(t *testing.T) {
	l, mr, _ := setup(t)
	ctx := context.Background()
	req := ratelimit.Request{App: "hr", API: "/send", Calls: calls20}
	if err := l.Pause(ctx, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := l.Pause(ctx, time.Second); err != nil { // a shorter pause does not cut it
		t.Fatal(err)
	}
	d := reserve(t, l, req, time.Hour)
	if d.Allowed || d.Limit != ratelimit.LimitPause || d.Wait < 4*time.Minute {
		t.Fatalf("call while paused: %+v, want denied for about 5 minutes", d)
	}
	mr.FastForward(5 * time.Minute)
	if d := reserve(t, l, req, 0); !d.Allowed {
		t.Errorf("call after the pause: %+v, want allowed", d)
	}
}

// TestAdaptive: throttling lowers the app's calls rate once per burst, the
// slots spread out accordingly, and successes bring it back step by step.
func TestAdaptive(t *testing.T) {
	l, mr, now := setup(t)
	ctx := context.Background()
	req := ratelimit.Request{App: "hr", API: "/send", Calls: calls20}

	f, changed, err := l.Throttled(ctx, "hr", "/send")
	if err != nil || !changed || f != 0.7 {
		t.Fatalf("Throttled: %v %v %v, want 0.7, changed", f, changed, err)
	}
	if f, changed, _ = l.Throttled(ctx, "hr", "/send"); changed || f != 0.7 {
		t.Errorf("second Throttled within a second: %v %v, want 0.7 unchanged", f, changed)
	}
	reserve(t, l, req, 0)
	d := reserve(t, l, req, time.Second)
	if want := time.Duration(float64(time.Second/19) / d.Factor); d.Factor != 0.7 || d.Wait < want-time.Millisecond || d.Wait > want+time.Millisecond {
		t.Errorf("slot at factor 0.7: %+v, want wait %v", d, want)
	}
	// Other apps keep their full rate.
	if d := reserve(t, l, ratelimit.Request{App: "ops", API: "/send", Calls: calls20}, 0); d.Factor != 1 {
		t.Errorf("other app's factor: %v, want 1", d.Factor)
	}

	// No recovery within 5 s of the decrease.
	*now = now.Add(4 * time.Second)
	mr.SetTime(*now)
	if f, changed, _ := l.Succeeded(ctx, "hr", "/send"); changed || f != 0.7 {
		t.Errorf("Succeeded 4s after: %v %v, want 0.7 unchanged", f, changed)
	}
	// Then 0.05 a second, back to 1.
	steps := 0
	for f < 1 {
		*now = now.Add(time.Second)
		mr.SetTime(*now)
		if f, changed, err = l.Succeeded(ctx, "hr", "/send"); err != nil || !changed {
			t.Fatalf("Succeeded: %v %v %v", f, changed, err)
		}
		// A second success within the same second changes nothing.
		if f2, changed, _ := l.Succeeded(ctx, "hr", "/send"); changed || f2 != f {
			t.Fatalf("second Succeeded within a second: %v %v, want %v unchanged", f2, changed, f)
		}
		if steps++; steps > 10 {
			t.Fatalf("factor %v after %d steps, want 1 after 6", f, steps)
		}
	}
	if steps != 6 {
		t.Errorf("steps to recover from 0.7: got %d, want 6", steps)
	}
	if mr.Exists("test:{rate}:adapt:hr:/send") {
		t.Errorf("adapt key kept after full recovery")
	}
}

// TestRealRedisConcurrent runs the scripts on a real redis-server and on
// a Redis Cluster of 3 masters (where a key of another slot in one script
// fails it with CROSSSLOT), from many goroutines at once: every slot stays
// within the limit.
func TestRealRedisConcurrent(t *testing.T) {
	tests := []struct {
		name   string
		client func(t *testing.T) redis.UniversalClient
	}{
		{"redis", func(t *testing.T) redis.UniversalClient { return redistest.Start(t).Client(t) }},
		{"cluster", func(t *testing.T) redis.UniversalClient { return redistest.StartCluster(t, 3).Client(t) }},
	}
	for _, tt := range tests {
		// One after the other: the slots are checked to the millisecond.
		t.Run(tt.name, func(t *testing.T) { testConcurrent(t, tt.client(t)) })
	}
}

func testConcurrent(t *testing.T, rdb redis.UniversalClient) {
	l := ratelimit.New(rdb, "test")
	ctx := context.Background()
	// Every script once, every limit on: the pause and adapt keys, the
	// fleet's, the app's calls and recipients.
	if _, _, err := l.Throttled(ctx, "hr", "/send"); err != nil {
		t.Fatalf("Throttled: %v", err)
	}
	if _, _, err := l.Succeeded(ctx, "hr", "/send"); err != nil {
		t.Fatalf("Succeeded: %v", err)
	}
	if err := l.Pause(ctx, time.Millisecond); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if err := rdb.Del(ctx, "test:{rate}:adapt:hr:/send", "test:{rate}:pause").Err(); err != nil {
		t.Fatal(err)
	}
	req := ratelimit.Request{App: "hr", API: "/send", Calls: ratelimit.Limit{N: 50, Per: time.Second},
		Recipients: ratelimit.Limit{N: 1000, Per: time.Second}, Cost: 10,
		Fleet: ratelimit.Limit{N: 10000, Per: 20 * time.Second}}
	start := time.Now()
	var mu sync.Mutex
	var at []time.Duration
	var cost []int
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 25 {
				d, err := l.Reserve(context.Background(), req, 10*time.Second)
				if err != nil || !d.Allowed {
					t.Errorf("Reserve: %+v %v", d, err)
					return
				}
				mu.Lock()
				at, cost = append(at, time.Since(start)+d.Wait), append(cost, 1)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// Reservations are made within a few ms of each other on this
	// machine; a little slack for the time between TIME and time.Since.
	slices.Sort(at)
	if got := maxInWindow(at, cost, time.Second-20*time.Millisecond); got > 50 {
		t.Errorf("most calls in a second: got %d, want at most 50", got)
	}
	if got, want := len(at), 200; got != want {
		t.Errorf("slots: got %d, want %d", got, want)
	}
}

// TestRobotMinuteAndHold: a custom robot's 20 a minute never puts 21 in
// any minute, and Hold keeps its calls waiting for the block, without
// shortening a longer hold or touching other webhooks.
func TestRobotMinuteAndHold(t *testing.T) {
	l, mr, now := setup(t)
	robot := ratelimit.Limit{N: 20, Per: time.Minute}
	hookA := ratelimit.Request{App: "robot.alerts.0", API: "/robot/send", Calls: robot}
	hookB := ratelimit.Request{App: "robot.alerts.1", API: "/robot/send", Calls: robot}
	var at []time.Duration
	var cost []int
	for range 60 {
		d := reserve(t, l, hookA, time.Hour)
		if !d.Allowed {
			t.Fatalf("denied with an hour's wait: %+v", d)
		}
		at, cost = append(at, d.Wait), append(cost, 1)
	}
	if got := maxInWindow(at, cost, time.Minute); got > 20 {
		t.Errorf("most in any minute: got %d, want at most 20", got)
	}
	if last := at[len(at)-1]; last < 2*time.Minute+30*time.Second {
		t.Errorf("60 messages reserved within %s, want about three minutes", last)
	}

	// A fresh webhook, held for 10 minutes: its next slot is 10 minutes off;
	// a shorter hold after it changes nothing; the other webhook is free.
	*now = now.Add(time.Hour)
	mr.SetTime(*now)
	hookC := ratelimit.Request{App: "robot.pair.0", API: "/robot/send", Calls: robot}
	ctx := context.Background()
	if err := l.Hold(ctx, hookC, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := l.Hold(ctx, hookC, time.Minute); err != nil {
		t.Fatal(err)
	}
	if d := reserve(t, l, hookC, time.Second); d.Allowed || d.Wait < 10*time.Minute-time.Second || d.Limit != ratelimit.LimitCalls {
		t.Errorf("held webhook: %+v, want denied for about 10m by calls", d)
	}
	if d := reserve(t, l, hookB, 0); !d.Allowed || d.Wait > 0 {
		t.Errorf("other webhook: %+v, want allowed now", d)
	}
}
