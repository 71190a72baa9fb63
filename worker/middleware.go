package worker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"
)

type logFieldsKey struct{}

// logFields collects what a handler learned about its task, for the one log
// line the logging middleware writes per attempt.
type logFields struct {
	mu     sync.Mutex
	fields []zap.Field
}

// annotate adds fields to the task's log line.
func annotate(ctx context.Context, fields ...zap.Field) {
	if lf, ok := ctx.Value(logFieldsKey{}).(*logFields); ok {
		lf.mu.Lock()
		lf.fields = append(lf.fields, fields...)
		lf.mu.Unlock()
	}
}

// Logging returns middleware that writes one line per attempt: the task,
// its queue and retry count, how long it took, what the handler annotated
// (message id, app, errcode, status) and the error. Successes log at debug,
// retries at warn, final failures at error.
func Logging(log *zap.Logger) asynq.MiddlewareFunc {
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			lf := &logFields{}
			ctx = context.WithValue(ctx, logFieldsKey{}, lf)
			start := time.Now()
			err := next.ProcessTask(ctx, t)

			id, _ := asynq.GetTaskID(ctx)
			queue, _ := asynq.GetQueueName(ctx)
			retried, _ := asynq.GetRetryCount(ctx)
			fields := []zap.Field{zap.String("task_id", id), zap.String("task_type", t.Type()),
				zap.String("queue", queue), zap.Int("retried", retried), zap.Duration("took", time.Since(start))}
			lf.mu.Lock()
			fields = append(fields, lf.fields...)
			lf.mu.Unlock()
			var le *limitError
			switch {
			case err == nil:
				log.Debug("task done", fields...)
			case errors.As(err, &le):
				log.Debug("task waits for DingTalk's budget", append(fields, zap.Error(err))...)
			case !isFailure(err):
				log.Info("task handed back", append(fields, zap.Error(err))...)
			case isFinal(err):
				log.Error("task failed", append(fields, zap.Error(err))...)
			default:
				log.Warn("task will be retried", append(fields, zap.Error(err))...)
			}
			return err
		})
	}
}
