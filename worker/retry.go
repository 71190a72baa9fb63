package worker

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/hibiken/asynq"
)

// Defaults of the retry policy.
const (
	DefaultRetryBaseDelay = time.Second
	DefaultRetryMaxDelay  = 10 * time.Minute
)

// retryDelay returns asynq's RetryDelayFunc: throttling waits what DingTalk
// asked for (plus up to 20% jitter so a fleet does not come back at once);
// other errors back off exponentially from base, capped at max, with full
// jitter over the upper half.
func retryDelay(base, max time.Duration) asynq.RetryDelayFunc {
	return func(n int, err error, _ *asynq.Task) time.Duration {
		var te *throttledError
		if errors.As(err, &te) {
			return te.wait + rand.N(te.wait/5+1)
		}
		if d, ok := dingtalk.RetryAfter(err); ok {
			return d + rand.N(d/5+1)
		}
		d := base
		for i := 0; i < n && d < max; i++ {
			d *= 2
		}
		d = min(d, max)
		return d/2 + rand.N(d/2+1)
	}
}

// throttledError is a throttled attempt and how long the message waits
// before the next.
type throttledError struct {
	err  error
	wait time.Duration
}

func (e *throttledError) Error() string { return e.err.Error() }
func (e *throttledError) Unwrap() error { return e.err }

// throttleWait is how long attempt n waits after err throttled it: the
// delay DingTalk asks for; for limits shared by every caller of the API,
// doubled with every attempt, up to limit (or DingTalk's own delay, if
// longer). Throttled attempts do not count as failures, so asynq's retry
// count cannot pace them.
func throttleWait(err error, n int, limit time.Duration) time.Duration {
	d, _ := dingtalk.RetryAfter(err)
	var de *dingtalk.Error
	if errors.As(err, &de) && de.SharedLimit() && n > 1 {
		d = max(min(d<<min(n-1, 20), limit), d)
	}
	return d
}

// isFailure is asynq's IsFailure: throttling and a cancelled context are not
// failures, so they do not use up the message's retries.
func isFailure(err error) bool {
	var te *throttledError
	if err == nil || errors.As(err, &te) {
		return false
	}
	switch dingtalk.Classify(err) {
	case dingtalk.ClassThrottled, dingtalk.ClassCanceled:
		return false
	}
	return true
}

// isFinal reports whether err ends the task: no retry follows.
func isFinal(err error) bool { return errors.Is(err, asynq.SkipRetry) }
