package worker

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/dingq/dingq/internal/outcome"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// DefaultRedisPatience is how long a worker keeps trying to write down
// what happened (an outcome, a batch's end, a follow-up task) while Redis
// does not answer: a restart, a failover or a network blip takes seconds,
// and a message DingTalk accepted must not stay "sending" because Redis
// was away for them. After it, asynq's lease on the task has long expired
// and the task is delivered again, which writes what this one could not.
const DefaultRedisPatience = 2 * time.Minute

// Backoff of retryRedis: the first wait, and the longest.
const (
	redisRetryFirst = 100 * time.Millisecond
	redisRetryMax   = 2 * time.Second
	// redisTryTimeout bounds one try: a server that accepts a connection and
	// never answers must not hold the write past its patience.
	redisTryTimeout = 5 * time.Second
)

// retryRedis runs f until it succeeds or fails for good (permanent), even when ctx is done (what happened
// must be written down, a shutdown included), waiting longer each time, at
// most redisRetryMax, for as long as h's patience (DefaultRedisPatience).
// It logs the first failure and the success that follows, and annotates
// the task's log line with how many tries it took.
func (h *Handlers) retryRedis(ctx context.Context, f func(ctx context.Context) error) error {
	patience := h.redisPatience
	if patience <= 0 {
		patience = DefaultRedisPatience
	}
	base := context.WithoutCancel(ctx)
	start := time.Now()
	wait := redisRetryFirst
	for try := 1; ; try++ {
		tctx, cancel := context.WithTimeout(base, redisTryTimeout)
		err := f(tctx)
		cancel()
		if err == nil {
			if try > 1 {
				took := time.Since(start)
				annotate(ctx, zap.Int("redis_tries", try))
				h.log.Info("Redis write succeeded after retrying", zap.Int("tries", try),
					zap.Duration("took", took))
			}
			return nil
		}
		if permanent(err) {
			return err
		}
		if try == 1 {
			h.log.Warn("Redis write failed; retrying until it succeeds", zap.Duration("patience", patience),
				zap.Error(err))
		}
		// Jitter spreads the workers' retries over the moment Redis is back.
		d := wait/2 + rand.N(wait/2+1)
		if time.Since(start)+d > patience {
			annotate(ctx, zap.Int("redis_tries", try))
			return err
		}
		time.Sleep(d)
		wait = min(2*wait, redisRetryMax)
	}
}

// transientReplies start the error replies of a Redis that is loading,
// failing over or out of memory: they pass.
var transientReplies = []string{"LOADING", "READONLY", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "OOM", "BUSY"}

// permanent reports whether err will not pass by trying again: a record
// that is not there (or not what the write expects), or an error reply of
// Redis other than transientReplies (a script's error). Anything else, a
// refused or broken connection, a timeout, is taken for an outage.
func permanent(err error) bool {
	if errors.Is(err, outcome.ErrNotFound) || errors.Is(err, outcome.ErrNotBroadcast) || errors.Is(err, outcome.ErrNotSent) {
		return true
	}
	var re redis.Error
	if !errors.As(err, &re) {
		return false
	}
	for _, p := range transientReplies {
		if strings.HasPrefix(re.Error(), p) {
			return false
		}
	}
	return true
}

// finishAfterCancel is a go-redis hook that works around a bug of asynq
// v0.26.0 (processor.go markAsComplete, markAsDone, retry, archive): when
// the script that ends a task (done, complete, retry, archive) fails over a
// Redis blip, asynq's syncer tries it again every 5 s with a context its
// caller already canceled (defer cancel(), asynq PR #926), so every retry
// fails at once and the task stays active until its lease expires and a
// recoverer runs it again, one to two minutes later, spending one of its
// retries. The hook runs an asynq script (EVALSHA or EVAL on keys under
// "asynq:") whose context was canceled while its deadline, the task's
// lease, still holds, with that deadline and without the cancellation. Any
// other command, and a context past its deadline, is left alone.
type finishAfterCancel struct{}

func (finishAfterCancel) DialHook(next redis.DialHook) redis.DialHook { return next }

func (finishAfterCancel) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (finishAfterCancel) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if ctx.Err() != context.Canceled || !isAsynqScript(cmd) {
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

// isAsynqScript reports whether cmd runs a Lua script whose first key is
// one of asynq's.
func isAsynqScript(cmd redis.Cmder) bool {
	args := cmd.Args()
	if len(args) < 4 {
		return false
	}
	if n, ok := args[2].(int); !ok || n < 1 {
		return false
	}
	switch name := strings.ToLower(cmd.Name()); name {
	case "evalsha", "eval":
	default:
		return false
	}
	key, ok := args[3].(string)
	return ok && strings.HasPrefix(key, "asynq:")
}
