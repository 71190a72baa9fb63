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

// isFailure is asynq's IsFailure: throttling and a cancelled context are not
// failures, so they do not use up the message's retries.
func isFailure(err error) bool {
	if err == nil {
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
