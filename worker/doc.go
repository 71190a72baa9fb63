// Package worker runs dingq's asynq server: it takes tasks from the queues
// in Redis, calls DingTalk for them with the app's cached access token, sorts
// DingTalk's answer into sent, retry later, wait, or give up, and records
// the outcome.
//
// Only this package decides what an error means for the queue: permanent
// errors stop the task (asynq.SkipRetry), throttling waits without counting
// as a failure (asynq IsFailure), everything else is retried with
// exponential backoff and jitter. A cancelled context is never a failure.
//
// It imports producer (for the task contract), dingtalk and dingq's internal
// packages; never cmd.
package worker
