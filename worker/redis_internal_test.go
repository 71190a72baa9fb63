package worker

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/dingq/dingq/internal/outcome"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestRetryRedisOutlastsOutage: a write that fails while Redis is away is
// tried again until Redis is back, however many tries that takes (an
// earlier version gave up after three, 0.7 s), even with the task's
// context done, and the first failure and the success are logged.
func TestRetryRedisOutlastsOutage(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	core, logs := observer.New(zap.InfoLevel)
	h := &Handlers{log: zap.New(core)}

	mr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a shutdown began: what happened must still be written
	var tries atomic.Int64
	done := make(chan error, 1)
	go func() {
		done <- h.retryRedis(ctx, func(ctx context.Context) error {
			tries.Add(1)
			return rdb.Set(ctx, "outcome", "sent", 0).Err()
		})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for tries.Load() < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("%d tries in 10 s", tries.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := mr.Restart(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("retryRedis: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("retryRedis still trying 10 s after Redis came back")
	}
	if got, _ := mr.Get("outcome"); got != "sent" {
		t.Errorf("outcome = %q after Redis came back, want sent", got)
	}
	if n := logs.FilterMessage("Redis write failed; retrying until it succeeds").Len(); n != 1 {
		t.Errorf("failure logged %d times, want once", n)
	}
	if n := logs.FilterMessage("Redis write succeeded after retrying").Len(); n != 1 {
		t.Errorf("success logged %d times, want once", n)
	}
}

// TestRetryRedisPatience: a write that keeps failing gives up with its
// error once the patience is spent, not long after.
func TestRetryRedisPatience(t *testing.T) {
	h := &Handlers{log: zap.NewNop(), redisPatience: time.Second}
	boom := errors.New("boom")
	var tries int
	start := time.Now()
	err := h.retryRedis(context.Background(), func(context.Context) error {
		tries++
		return boom
	})
	took := time.Since(start)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if tries < 2 {
		t.Errorf("%d tries within a patience of 1 s, want more than one", tries)
	}
	if took > time.Second+redisTryTimeout {
		t.Errorf("gave up after %s, patience 1 s", took)
	}
}

// TestFinishAfterCancel: the hook runs asynq's scripts that end a task
// (over a queue's active list and lease set) whose context was canceled
// before its deadline (asynq's syncer retrying the end of a task), and
// nothing else.
func TestFinishAfterCancel(t *testing.T) {
	mr := miniredis.RunT(t)
	hooked := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	hooked.AddHook(finishAfterCancel{})
	plain := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { hooked.Close(); plain.Close() })
	const src = `redis.call("SET", KEYS[#KEYS], ARGV[1]) return 1`
	end := redis.NewScript(src)
	q := "asynq:{dingq:default}"
	endKeys := func(marker string) []string { return []string{q + ":active", q + ":lease", marker} }

	canceled := func(deadline time.Duration) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		cancel()
		return ctx
	}
	script := func(keys func(string) []string) func(context.Context, *redis.Client, string) error {
		return func(ctx context.Context, c *redis.Client, marker string) error {
			return end.Run(ctx, c, keys(marker), "done").Err()
		}
	}
	tests := []struct {
		name   string
		client *redis.Client
		ctx    context.Context
		run    func(ctx context.Context, c *redis.Client, marker string) error
		want   bool // runs
	}{
		{"the end of a task, canceled within its lease", hooked, canceled(time.Minute), script(endKeys), true},
		{"the end of a task by EVAL", hooked, canceled(time.Minute),
			func(ctx context.Context, c *redis.Client, marker string) error {
				return c.Eval(ctx, src, endKeys(marker), "done").Err()
			}, true},
		{"without the hook (asynq's bug)", plain, canceled(time.Minute), script(endKeys), false},
		{"past its deadline", hooked, func() context.Context {
			ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
			cancel()
			return ctx
		}(), script(endKeys), false},
		{"canceled without a deadline", hooked, func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}(), script(endKeys), false},
		{"asynq's enqueue (no active list)", hooked, canceled(time.Minute),
			script(func(m string) []string { return []string{q + ":t:1", q + ":pending", m} }), false},
		{"dingq's own script", hooked, canceled(time.Minute),
			script(func(m string) []string { return []string{"dingq:active", "dingq:lease", m} }), false},
		{"a plain command", hooked, canceled(time.Minute),
			func(ctx context.Context, c *redis.Client, marker string) error {
				return c.Set(ctx, marker, "done", 0).Err()
			}, false},
		{"a script without keys", hooked, canceled(time.Minute),
			func(ctx context.Context, c *redis.Client, marker string) error {
				return c.Eval(ctx, `redis.call("SET", ARGV[1], "done") return 1`, nil, marker).Err()
			}, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			marker := fmt.Sprintf("marker:%d", i)
			err := tt.run(tt.ctx, tt.client, marker)
			_, getErr := mr.Get(marker)
			if ran := getErr == nil; ran != tt.want {
				t.Fatalf("ran = %v (err %v), want %v", ran, err, tt.want)
			}
			if tt.want && err != nil {
				t.Errorf("err = %v, want nil", err)
			}
			if !tt.want && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want the context's error", err)
			}
		})
	}
}

// TestRetryRedisBudgetPerDelivery: the writes of one delivery share one
// patience: once a write spent it, the next gets one try.
func TestRetryRedisBudgetPerDelivery(t *testing.T) {
	h := &Handlers{log: zap.NewNop(), redisPatience: 300 * time.Millisecond}
	boom := errors.New("connection refused")
	var tries [2]int
	err := withRedisBudget(asynq.HandlerFunc(func(ctx context.Context, _ *asynq.Task) error {
		for i := range tries {
			_ = h.retryRedis(ctx, func(context.Context) error {
				tries[i]++
				return boom
			})
			time.Sleep(300 * time.Millisecond) // the budget is spent by now
		}
		return nil
	})).ProcessTask(context.Background(), asynq.NewTask("t", nil))
	if err != nil {
		t.Fatal(err)
	}
	if tries[0] < 2 || tries[1] != 1 {
		t.Errorf("tries = %v, want the first write to retry and the second to try once", tries)
	}
}

// TestRetryRedisStopsOnPermanent: an error trying again cannot cure ends
// the write at once.
func TestRetryRedisStopsOnPermanent(t *testing.T) {
	h := &Handlers{log: zap.NewNop()}
	tries := 0
	err := h.retryRedis(context.Background(), func(context.Context) error {
		tries++
		return fmt.Errorf("applying: %w", outcome.ErrNotFound)
	})
	if !errors.Is(err, outcome.ErrNotFound) || tries != 1 {
		t.Errorf("err = %v after %d tries, want ErrNotFound after 1", err, tries)
	}
}

func TestPermanent(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	scriptErr := rdb.Eval(ctx, `return redis.error_reply("ERR broken")`, []string{"k"}).Err()
	wrongType := func() error {
		rdb.Set(ctx, "s", "v", 0)
		return rdb.HGet(ctx, "s", "f").Err()
	}()
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { dead.Close() })
	refused := dead.Ping(ctx).Err()
	closed := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	closed.Close()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"record not found", fmt.Errorf("x: %w", outcome.ErrNotFound), true},
		{"batch not sent", outcome.ErrNotSent, true},
		{"a script's error", scriptErr, true},
		{"wrong type", wrongType, true},
		{"redis nil", redis.Nil, true},
		{"connection refused", refused, false},
		{"client closed", closed.Ping(ctx).Err(), true},
		{"timeout", context.DeadlineExceeded, false},
		{"loading", redisReply("LOADING Redis is loading the dataset in memory"), false},
		{"read only replica", redisReply("READONLY You can't write against a read only replica."), false},
		{"cluster down", redisReply("CLUSTERDOWN The cluster is down"), false},
		{"out of memory", redisReply("OOM command not allowed when used memory > 'maxmemory'."), false},
		{"busy script", redisReply("BUSY Redis is busy running a script."), false},
		{"busy key", redisReply("BUSYKEY Target key name already exists."), true},
		{"asynq's words for a script's error", errors.New("INTERNAL_ERROR: redis eval error: WRONGTYPE Operation against a key holding the wrong kind of value"), true},
		{"asynq's words for loading", errors.New("UNKNOWN: redis eval error: LOADING Redis is loading the dataset in memory"), false},
		{"asynq's words for a refused connection", errors.New("UNKNOWN: redis eval error: dial tcp 127.0.0.1:1: connect: connection refused"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil {
				t.Fatal("no error to classify")
			}
			if got := permanent(tt.err); got != tt.want {
				t.Errorf("permanent(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// redisReply is an error reply of Redis.
type redisReply string

func (e redisReply) Error() string { return string(e) }
func (redisReply) RedisError()     {}
