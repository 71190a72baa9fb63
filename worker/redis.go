package worker

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dingq/dingq/internal/outcome"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// DefaultRedisPatience is how long one delivery of a task, all its writes
// together, keeps trying to write down what happened (an outcome, a
// batch's end, a follow-up task) while Redis does not answer: a restart, a
// failover or a network blip takes seconds, and a message DingTalk accepted
// must not stay "sending" because Redis was away for them. Past it, each
// write gets one try. An outage this long outlasts asynq's lease on the
// task (its heartbeat cannot renew it either), so the task is delivered
// again once Redis is back, and that delivery writes what this one could
// not.
const DefaultRedisPatience = 2 * time.Minute

// Backoff of retryRedis: the first wait, and the longest.
const (
	redisRetryFirst = 100 * time.Millisecond
	redisRetryMax   = 2 * time.Second
	// redisTryTimeout bounds one try: a server that accepts a connection and
	// never answers must not hold the write past its patience.
	redisTryTimeout = 5 * time.Second
)

// redisBudget is what is left of one delivery's patience: it runs from the
// first write that failed.
type redisBudget struct {
	mu    sync.Mutex
	until time.Time
}

type redisBudgetKey struct{}

// withRedisBudget is middleware that gives each delivery of a task one
// budget of waiting for Redis, shared by all of its writes: a coalesced
// send records up to 100 outcomes, and an outage must not hold it 100
// times the patience.
func withRedisBudget(next asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		return next.ProcessTask(context.WithValue(ctx, redisBudgetKey{}, &redisBudget{}), t)
	})
}

// waitUntil returns until when the writes of ctx's delivery may wait for
// Redis, starting its budget now if this is the first failure; without a
// budget in ctx, now plus patience.
func waitUntil(ctx context.Context, patience time.Duration) time.Time {
	b, ok := ctx.Value(redisBudgetKey{}).(*redisBudget)
	if !ok {
		return time.Now().Add(patience)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.until.IsZero() {
		b.until = time.Now().Add(patience)
	}
	return b.until
}

// retryRedis runs f until it succeeds or fails for good (permanent), even
// when ctx is done (what happened must be written down, a shutdown
// included), waiting longer each time, 1 to 2 s at most (jittered), within
// the patience of ctx's delivery (DefaultRedisPatience, shared by its
// writes; once spent, one try). It logs the first failure, the success
// that follows or the giving up, and annotates the task's log line with
// how many tries it took.
func (h *Handlers) retryRedis(ctx context.Context, f func(ctx context.Context) error) error {
	patience := h.redisPatience
	if patience <= 0 {
		patience = DefaultRedisPatience
	}
	base := context.WithoutCancel(ctx)
	start := time.Now()
	var until time.Time
	wait := redisRetryFirst
	for try := 1; ; try++ {
		tctx, cancel := context.WithTimeout(base, redisTryTimeout)
		err := f(tctx)
		cancel()
		if err == nil {
			if try > 1 {
				annotate(ctx, zap.Int("redis_tries", try))
				h.log.Info("Redis write succeeded after retrying", zap.Int("tries", try),
					zap.Duration("took", time.Since(start)))
			}
			return nil
		}
		if permanent(err) {
			return err
		}
		if try == 1 {
			until = waitUntil(ctx, patience)
			if left := time.Until(until); left > 0 {
				h.log.Warn("Redis write failed; retrying until it succeeds", zap.Duration("patience", left),
					zap.Error(err))
			} else {
				annotate(ctx, zap.Int("redis_tries", try))
				h.log.Error("Redis write failed; this delivery's patience for Redis is spent", zap.Error(err))
				return err
			}
		}
		// Jitter spreads the workers' retries over the moment Redis is back.
		d := wait/2 + rand.N(wait/2+1)
		if time.Now().Add(d).After(until) {
			annotate(ctx, zap.Int("redis_tries", try))
			if try > 1 {
				h.log.Error("Redis write given up: patience spent", zap.Int("tries", try),
					zap.Duration("took", time.Since(start)), zap.Error(err))
			}
			return err
		}
		time.Sleep(d)
		wait = min(2*wait, redisRetryMax)
	}
}

// transientReplies are the codes that start the error replies of a Redis
// that is loading, failing over, out of memory or busy: they pass.
var transientReplies = []string{"LOADING", "READONLY", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "OOM", "BUSY",
	"NOREPLICAS", "MISCONF"}

// permanent reports whether err will not pass by trying again: a record
// that is not there (or not what the write expects), a client closed, or
// an error reply of Redis other than transientReplies (a script's error,
// a key of the wrong type), also as asynq's client words it ("redis eval
// error: WRONGTYPE …"). Anything else, a refused or broken connection, a
// timeout, is taken for an outage.
func permanent(err error) bool {
	switch {
	case errors.Is(err, outcome.ErrNotFound), errors.Is(err, outcome.ErrNotBroadcast),
		errors.Is(err, outcome.ErrNotSent), errors.Is(err, redis.ErrClosed):
		return true
	}
	var re redis.Error
	if errors.As(err, &re) {
		return !transientReply(re.Error())
	}
	msg := err.Error()
	if strings.Contains(msg, redis.ErrClosed.Error()) {
		return true
	}
	if _, reply, ok := strings.Cut(msg, "redis eval error: "); ok {
		code, _, _ := strings.Cut(reply, " ")
		return isReplyCode(code) && !transientReply(reply)
	}
	return false
}

// transientReply reports whether the error reply msg starts with one of
// transientReplies.
func transientReply(msg string) bool {
	code, _, _ := strings.Cut(msg, " ")
	return slices.Contains(transientReplies, code)
}

// isReplyCode reports whether s looks like the code of an error reply:
// capital letters, such as ERR or WRONGTYPE.
func isReplyCode(s string) bool {
	if len(s) < 2 {
		return false
	}
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

// finishAfterCancel is a go-redis hook that works around a bug of asynq
// v0.26.0 (processor.go markAsComplete, markAsDone, retry, archive): when
// the script that ends a task (done, complete, retry, archive) fails over a
// Redis blip, asynq's syncer tries it again (5 s after the last request
// it was handed) with a context its caller already canceled (defer
// cancel(), asynq PR #926), so every retry fails at once and the task
// stays active until its lease expires and a recoverer runs it again, one
// to two minutes later, spending one of its retries. The hook runs a
// script that ends a task (EVALSHA or EVAL over a queue's active list and
// lease set, isTaskEnd) whose context was canceled before its deadline,
// the task's lease, with that deadline and without the cancellation. Any
// other command, and a context past its deadline, is left alone. Those
// scripts first take the task off the active list and do nothing if it is
// not there, so one run late or twice does no harm.
type finishAfterCancel struct{}

func (finishAfterCancel) DialHook(next redis.DialHook) redis.DialHook { return next }

func (finishAfterCancel) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (finishAfterCancel) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if ctx.Err() != context.Canceled || !isTaskEnd(cmd) {
			return next(ctx, cmd)
		}
		deadline, ok := ctx.Deadline()
		if !ok || !time.Now().Before(deadline) {
			return next(ctx, cmd)
		}
		rctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
		defer cancel()
		return next(rctx, cmd)
	}
}

// isTaskEnd reports whether cmd runs a Lua script over an asynq queue's
// active list and its lease set ("asynq:{q}:active", "asynq:{q}:lease"):
// asynq's scripts that end a task or hand it back, and no other.
func isTaskEnd(cmd redis.Cmder) bool {
	switch strings.ToLower(cmd.Name()) {
	case "evalsha", "eval":
	default:
		return false
	}
	args := cmd.Args()
	if len(args) < 4 {
		return false
	}
	n, ok := args[2].(int)
	if !ok || n < 2 || len(args) < 3+n {
		return false
	}
	var active, lease bool
	for _, a := range args[3 : 3+n] {
		k, ok := a.(string)
		if !ok || !strings.HasPrefix(k, "asynq:{") {
			continue
		}
		active = active || strings.HasSuffix(k, "}:active")
		lease = lease || strings.HasSuffix(k, "}:lease")
	}
	return active && lease
}
