package worker

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/internal/outcome"
	"github.com/dingq/dingq/producer"
	"github.com/hibiken/asynq"
	"go.uber.org/zap"
)

// Defaults of the results loop.
const (
	// DefaultResultsDelay is how long after DingTalk accepted a batch its
	// results are first asked for.
	DefaultResultsDelay = 10 * time.Second
	// DefaultResultsMaxDelay caps the wait between two asks.
	DefaultResultsMaxDelay = 30 * time.Minute
	// DefaultResendDelay is how long the recipients DingTalk dropped for its
	// per-minute limits wait before they are sent once more.
	DefaultResendDelay = time.Minute
	// ResultsWindow is how long DingTalk answers getsendprogress and
	// getsendresult for a task: 24 hours.
	ResultsWindow = 24 * time.Hour
)

// errBroadcastStopped stops a batch's second call when its broadcast was
// canceled or paused since the first.
var errBroadcastStopped = errors.New("the broadcast was canceled or paused")

// busyWait is how long a delivery of a batch another delivery is sending
// waits before it looks again.
const busyWait = 10 * time.Second

// HandleBatch sends one batch of a broadcast. A batch of a canceled
// broadcast is canceled and one of a paused broadcast set aside, both
// without calling DingTalk or waiting for the rate limits; a batch sent
// before is skipped (its results task queued again if its results are not
// in). Once DingTalk accepts the batch its task_id is recorded first, then
// a results task is queued.
func (h *Handlers) HandleBatch(ctx context.Context, t *asynq.Task) error {
	p, err := producer.DecodeBatch(t)
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	annotate(ctx, zap.String("message_id", p.ID), zap.String("batch", p.Batch), zap.String("app", p.App))
	rcpts := p.Recipients()

	st, state, err := h.store.BatchState(ctx, p.ID, p.Batch)
	switch {
	case errors.Is(err, outcome.ErrNotFound):
		h.log.Warn("batch of a broadcast without a record (older than the retention?): dropped",
			zap.String("message_id", p.ID), zap.String("batch", p.Batch))
		return fmt.Errorf("broadcast %s has no record: %w", p.ID, asynq.SkipRetry)
	case err != nil:
		return err
	case state == "S":
		annotate(ctx, zap.Bool("duplicate", true))
		return h.ensureResults(ctx, p)
	case state == "f" || state == "c":
		annotate(ctx, zap.Bool("duplicate", true))
		// The delivery that ended it may have lost its answer before
		// counting the broadcast's finish; the claim counts it once.
		h.countBroadcast(ctx, p.App, p.ID)
		return nil
	}
	app, known := h.apps[p.App]
	api, cost := dingtalk.PathAsyncSendV2, len(rcpts)
	if p.Robot != "" {
		// An enterprise robot's batch: no work notification, so none of
		// the recipients limit.
		api, cost = dingtalk.PathRobotBatchSend, 0
		annotate(ctx, zap.String("robot", p.Robot))
	}
	if known && st != outcome.StatusCanceled && st != outcome.StatusPaused && state != "s" {
		if err := h.limits.admit(ctx, app.Name, api, cost); err != nil {
			return err
		}
	}
	v, err := h.store.BeginBatch(ctx, p.ID, p.Batch, rcpts, t.Payload())
	if err != nil {
		return err
	}
	annotate(ctx, zap.String("verdict", string(v)))
	if v == outcome.BatchCanceled {
		h.countBatch(ctx, p.App, p.ID, outcome.ResultCanceled, len(rcpts), nil)
	}
	switch v {
	case outcome.BatchGo:
	case outcome.BatchBusy:
		// Another delivery is sending it (asynq redelivered the task of a
		// worker that stopped answering): look again later.
		return &throttledError{err: errors.New("another delivery is sending this batch"), wait: busyWait}
	default:
		return nil
	}
	end := func(e outcome.BatchEnd) error {
		e.Claimant = rand.Text() // a try whose answer was lost still ended it
		ended := false
		err := h.retryRedis(ctx, func(ctx context.Context) (err error) {
			ended, err = h.store.EndBatch(ctx, p.ID, p.Batch, e)
			return err
		})
		if err != nil {
			h.log.Error("batch outcome could not be recorded", zap.String("message_id", p.ID),
				zap.String("batch", p.Batch), zap.String("to", string(e.To)), zap.Error(err))
		} else if ended && e.To == outcome.StatusFailed {
			// Only the delivery that ended it counts it: another one
			// (that took it over as stale) may have ended it first.
			h.countBatch(ctx, p.App, p.ID, outcome.ResultRejected, len(e.Recipients), nil)
		}
		return err
	}
	if !known {
		err := fmt.Errorf("%w %q: not in this worker's dingtalk.apps", errUnknownApp, p.App)
		_ = end(outcome.BatchEnd{To: outcome.StatusFailed, Err: errorInfo(err), Recipients: rcpts})
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	again := func(ctx context.Context) error {
		// A second call (throttled, or a refused token) goes out only while
		// the broadcast runs: Cancel must not see a batch sent after it.
		if st, err := h.store.Status(ctx, p.ID); err == nil && (st == outcome.StatusCanceled || st == outcome.StatusPaused) {
			return errBroadcastStopped
		}
		return nil
	}
	var (
		res      *dingtalk.SendResult
		robotRes *dingtalk.RobotBatchResult
	)
	if p.Robot != "" {
		robotRes, err = h.sendRobotBatch(ctx, app, p, again)
	} else {
		req := &dingtalk.SendRequest{AgentID: app.AgentID, UserIDs: p.UserIDs, DeptIDs: p.DeptIDs, Msg: p.Msg}
		res, err = h.send(ctx, app, req, len(rcpts), again)
	}
	if errors.Is(err, errBroadcastStopped) {
		// Back to queued: the next delivery cancels or parks it.
		_ = end(outcome.BatchEnd{To: outcome.StatusRetrying, Recipients: rcpts})
		return &throttledError{err: err, wait: time.Second}
	}
	if err != nil {
		retried, _ := asynq.GetRetryCount(ctx)
		final, info, ret := h.judge(ctx, err, retried+1)
		to := outcome.StatusRetrying
		if final {
			to = outcome.StatusFailed
		}
		_ = end(outcome.BatchEnd{To: to, Err: info, Recipients: rcpts})
		return ret
	}
	if robotRes != nil {
		return h.robotBatchSent(ctx, p, robotRes, end)
	}
	annotate(ctx, zap.Int64("dingtalk_task_id", res.TaskID), zap.String("request_id", res.RequestID))
	// DingTalk has the batch: record that before anything else, and never
	// answer the queue with an error that would send it again.
	if err := end(outcome.BatchEnd{To: outcome.StatusSent, TaskID: res.TaskID, Recipients: rcpts}); err != nil {
		return nil // logged; the batch stays sending and its results cannot be recorded
	}
	rp := &producer.ResultsPayload{Batch: *p, TaskID: res.TaskID, AcceptedAt: time.Now()}
	if err := h.enqueueResults(ctx, rp, h.resultsDelay); err != nil {
		// The batch is recorded sent: the next delivery of this task does
		// not send it again, it only queues the results task.
		annotate(ctx, zap.NamedError("results_error", err))
		return &throttledError{err: fmt.Errorf("queueing the results task: %w", err), wait: time.Second}
	}
	return nil
}

// ensureResults queues the results task of a batch recorded as sent whose
// results are not in: the delivery that sent it stopped before queueing
// it. The task's id makes queueing it twice harmless.
func (h *Handlers) ensureResults(ctx context.Context, p *producer.BatchPayload) error {
	a, in, ok, err := h.store.SentBatch(ctx, p.ID, p.Batch)
	switch {
	case err != nil || !ok:
		return err
	case p.Robot != "" && in:
		// The delivery that recorded them may have stopped before it
		// queued the re-send of the flow-controlled users.
		return h.ensureResend(ctx, p)
	case p.Robot != "":
		// An enterprise robot's batch has its results in DingTalk's answer,
		// which the delivery that sent it did not live to record.
		annotate(ctx, zap.String("results", "unknown"))
		return h.recordResults(ctx, &producer.ResultsPayload{Batch: *p}, outcome.BatchResults{Unknown: p.UserIDs})
	case in:
		return nil
	}
	return h.enqueueResults(ctx, &producer.ResultsPayload{Batch: *p, TaskID: a.TaskID, AcceptedAt: a.AcceptedAt},
		max(h.resultsDelay-time.Since(a.AcceptedAt), 0))
}

func (h *Handlers) enqueueResults(ctx context.Context, rp *producer.ResultsPayload, in time.Duration) error {
	t, err := producer.NewResultsTask(rp, asynq.ProcessIn(in), asynq.MaxRetry(h.maxRetry))
	if err != nil {
		return err
	}
	return h.retryRedis(ctx, func(ctx context.Context) error {
		_, err := h.queue.EnqueueContext(ctx, t)
		if errors.Is(err, asynq.ErrTaskIDConflict) {
			return nil
		}
		return err
	})
}

// HandleResults asks DingTalk how far an accepted batch is delivered; once
// it is done, it records what getsendresult says of each recipient. It
// asks again later (not counted as a failure) while DingTalk is still
// delivering, waiting longer each time, and gives the recipients up as
// unknown after DingTalk's 24 hours. Recipients dropped only by the
// per-minute limits are sent once more, in a batch of their own.
func (h *Handlers) HandleResults(ctx context.Context, t *asynq.Task) error {
	p, err := producer.DecodeResults(t)
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	b := &p.Batch
	annotate(ctx, zap.String("message_id", b.ID), zap.String("batch", b.Batch), zap.Int64("dingtalk_task_id", p.TaskID))
	age := time.Since(p.AcceptedAt)
	app, known := h.apps[b.App]
	if !known || age > ResultsWindow {
		annotate(ctx, zap.String("results", "unknown"))
		return h.recordResults(ctx, p, outcome.BatchResults{Unknown: b.Recipients()})
	}
	var prog *dingtalk.SendProgress
	err = h.admitted(ctx, app, dingtalk.PathGetSendProgress, func(tok string) (err error) {
		prog, err = h.client.GetSendProgress(ctx, tok, app.AgentID, p.TaskID)
		return err
	})
	if err != nil {
		return h.resultsError(ctx, p, err)
	}
	if !prog.Done() {
		wait := min(max(h.resultsDelay, age/2), h.resultsMaxDelay, ResultsWindow-age+time.Second)
		annotate(ctx, zap.Int("progress_percent", prog.Percent), zap.Duration("retry_in", wait))
		return &throttledError{err: fmt.Errorf("DingTalk is still delivering (%d%%)", prog.Percent), wait: wait}
	}
	var detail *dingtalk.SendResultDetail
	err = h.admitted(ctx, app, dingtalk.PathGetSendResult, func(tok string) (err error) {
		detail, err = h.client.GetSendResult(ctx, tok, app.AgentID, p.TaskID)
		return err
	})
	if err != nil {
		return h.resultsError(ctx, p, err)
	}
	r, resend := sortResults(b, detail)
	rb := resendOf(b, resend)
	if rb != nil {
		r.Resend, r.ResendCount = rb.Batch, len(resend)
	}
	annotate(ctx, zap.Int("invalid", len(r.Invalid)), zap.Int("forbidden", len(r.Forbidden)),
		zap.Int("failed", len(r.Failed)), zap.Int("read", len(r.Read)), zap.Int("unread", len(r.Unread)),
		zap.Int("resend", len(resend)))
	if err := h.recordResults(ctx, p, r); err != nil {
		return err
	}
	if rb == nil {
		return nil
	}
	return h.enqueueResend(ctx, rb)
}

// resendOf is the batch that sends users of batch b once more, nil if
// there are none.
func resendOf(b *producer.BatchPayload, users []string) *producer.BatchPayload {
	if len(users) == 0 {
		return nil
	}
	rb := *b
	rb.Batch, rb.UserIDs, rb.DeptIDs, rb.Resend = b.Batch+"r", users, nil, true
	return &rb
}

// enqueueResend queues re-send batch rb after the resend delay, unless it
// is queued already, trying until Redis answers. A task that fails here
// is run again: its results are recorded (so it does not record them
// twice) and the re-send's task id refuses a second task.
func (h *Handlers) enqueueResend(ctx context.Context, rb *producer.BatchPayload) error {
	_, state, err := h.store.BatchState(ctx, rb.ID, rb.Batch)
	if err != nil || state != "q" {
		return err
	}
	task, err := producer.NewBatchTask(rb, asynq.ProcessIn(h.resendDelay), asynq.MaxRetry(h.maxRetry))
	if err != nil {
		return err
	}
	err = h.retryRedis(ctx, func(ctx context.Context) error {
		_, err := h.queue.EnqueueContext(ctx, task)
		if errors.Is(err, asynq.ErrTaskIDConflict) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("queueing the re-send batch %s: %w", rb.Batch, err)
	}
	return nil
}

// ensureResend queues the re-send of enterprise robot batch p, whose
// results are recorded, from the payload they were recorded with, if it
// is not queued yet.
func (h *Handlers) ensureResend(ctx context.Context, p *producer.BatchPayload) error {
	if p.Resend {
		return nil
	}
	raw, state, err := h.store.ResendPayload(ctx, p.ID, p.Batch+"r")
	if err != nil || raw == nil || state != "q" {
		return err
	}
	rb, err := producer.DecodeBatch(asynq.NewTask(producer.TypeBroadcastBatch, raw))
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	annotate(ctx, zap.String("resend", rb.Batch))
	return h.enqueueResend(ctx, rb)
}

// robotBatchSent records an enterprise robot's batch DingTalk took, and
// at once its results, which are in DingTalk's answer: the users it
// messaged, those it does not know, and those it held back for flow
// control, who are sent once more after the resend delay.
func (h *Handlers) robotBatchSent(ctx context.Context, p *producer.BatchPayload, res *dingtalk.RobotBatchResult, end func(outcome.BatchEnd) error) error {
	annotate(ctx, zap.String("process_query_key", res.ProcessQueryKey))
	if err := end(outcome.BatchEnd{To: outcome.StatusSent, Recipients: p.Recipients()}); err != nil {
		return nil // logged; never answer with an error that would send it again
	}
	r, resend := robotResults(p, res)
	rb := resendOf(p, resend)
	if rb != nil {
		// Kept with the results: a delivery that finds them recorded
		// queues the re-send from it (ensureResend).
		payload, err := json.Marshal(rb)
		if err != nil {
			return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
		}
		r.Resend, r.ResendCount, r.ResendPayload = rb.Batch, len(resend), payload
	}
	annotate(ctx, zap.Int("delivered", len(r.Delivered)), zap.Int("invalid", len(r.Invalid)),
		zap.Int("flow_controlled", len(r.Forbidden)+len(resend)), zap.Int("resend", len(resend)))
	if err := h.recordResults(ctx, &producer.ResultsPayload{Batch: *p}, r); err != nil {
		return err
	}
	if rb == nil {
		return nil
	}
	return h.enqueueResend(ctx, rb)
}

// resultsError answers the queue for a failed getsendprogress or
// getsendresult: retried like any call, and when it is final the batch's
// recipients are recorded as unknown.
func (h *Handlers) resultsError(ctx context.Context, p *producer.ResultsPayload, err error) error {
	retried, _ := asynq.GetRetryCount(ctx)
	final, _, ret := h.judge(ctx, err, retried+1)
	if final {
		if rerr := h.recordResults(ctx, p, outcome.BatchResults{Unknown: p.Batch.Recipients()}); rerr != nil {
			return rerr
		}
	}
	return ret
}

func (h *Handlers) recordResults(ctx context.Context, p *producer.ResultsPayload, r outcome.BatchResults) error {
	var notSent, recorded bool
	r.Claimant = rand.Text() // a try whose answer was lost still recorded them
	err := h.retryRedis(ctx, func(ctx context.Context) error {
		var err error
		recorded, err = h.store.RecordResults(ctx, p.Batch.ID, p.Batch.Batch, r)
		if notSent = errors.Is(err, outcome.ErrNotSent); notSent {
			return nil
		}
		return err
	})
	switch {
	case recorded:
		h.countBatch(ctx, p.Batch.App, p.Batch.ID, "", 0, &r)
	case err == nil && !notSent:
		// Recorded by another delivery: if that finished the broadcast,
		// it may not have counted it yet.
		h.countBroadcast(ctx, p.Batch.App, p.Batch.ID)
	}
	if notSent {
		h.log.Error("results of a batch not recorded as sent: dropped", zap.String("message_id", p.Batch.ID),
			zap.String("batch", p.Batch.Batch), zap.Int64("dingtalk_task_id", p.TaskID))
	}
	return err
}

// sortResults turns getsendresult's lists into the batch's results, and
// the users to send once more: those dropped only by a per-minute limit,
// unless the batch is itself a re-send. Users of the batch DingTalk names
// in no list are unknown; ids it names that were not in the batch (a
// department's members) are counted as they come.
func sortResults(b *producer.BatchPayload, d *dingtalk.SendResultDetail) (r outcome.BatchResults, resend []string) {
	named := make(map[string]struct{}, len(b.UserIDs))
	take := func(ids []string) []string {
		for _, id := range ids {
			named[id] = struct{}{}
		}
		return ids
	}
	r.Invalid = take(d.InvalidUserIDs)
	r.Failed = take(d.FailedUserIDs)
	r.Read = take(d.ReadUserIDs)
	r.Unread = take(d.UnreadUserIDs)
	codes := d.ForbiddenCodes()
	for _, id := range append(take(d.ForbiddenUserIDs), d.InvalidDeptIDs...) {
		code, ok := codes[id]
		if !ok {
			r.Invalid = append(r.Invalid, id) // an invalid department
			continue
		}
		delete(codes, id)
		if !b.Resend && (code == dingtalk.ForbiddenAppPerMinute || code == dingtalk.ForbiddenCorpPerMinute) {
			resend = append(resend, id)
			continue
		}
		r.Forbidden = append(r.Forbidden, outcome.Forbidden{UserID: id, Code: code})
	}
	for id, code := range codes { // in forbidden_list only
		named[id] = struct{}{}
		if !b.Resend && (code == dingtalk.ForbiddenAppPerMinute || code == dingtalk.ForbiddenCorpPerMinute) {
			resend = append(resend, id)
			continue
		}
		r.Forbidden = append(r.Forbidden, outcome.Forbidden{UserID: id, Code: code})
	}
	for _, id := range b.UserIDs {
		if _, ok := named[id]; !ok {
			r.Unknown = append(r.Unknown, id)
		}
	}
	return r, resend
}

// HandleBroadcastCanceled counts, for the metrics, what canceling a
// broadcast outside the workers canceled: the recipients of its batches
// canceled there (producer.Producer.Cancel cancels those a pause set
// aside, which no task of the broadcast will come back to), and the
// broadcast, if that finished it. Each counts once, however often the
// task runs.
func (h *Handlers) HandleBroadcastCanceled(ctx context.Context, t *asynq.Task) error {
	p, err := producer.DecodeBroadcastCanceled(t)
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	annotate(ctx, zap.String("message_id", p.ID), zap.String("app", p.App))
	if h.metrics == nil {
		return nil // nothing to count into
	}
	n, err := h.store.TakeUncounted(ctx, p.ID)
	if err != nil {
		return err
	}
	annotate(ctx, zap.Int("canceled", n))
	h.countBatch(ctx, p.App, p.ID, outcome.ResultCanceled, n, nil)
	return nil
}

// HandleRecall recalls a message at DingTalk: each batch DingTalk accepted
// (or the single message), once; those accepted more than 24 hours ago
// are counted as expired without a call.
func (h *Handlers) HandleRecall(ctx context.Context, t *asynq.Task) error {
	p, err := producer.DecodeRecall(t)
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	annotate(ctx, zap.String("message_id", p.ID), zap.String("app", p.App))
	app, known := h.apps[p.App]
	if !known {
		return fmt.Errorf("%w %q: not in this worker's dingtalk.apps: %w", errUnknownApp, p.App, asynq.SkipRetry)
	}
	o, err := h.store.Get(ctx, p.ID)
	if err != nil {
		return err
	}
	if o.Robot != "" {
		annotate(ctx, zap.String("robot", o.Robot))
		return fmt.Errorf("a robot's message cannot be recalled: %w", asynq.SkipRetry)
	}
	var batches []outcome.AcceptedBatch
	if o.Broadcast == nil {
		if o.TaskID != 0 && !o.Recalled {
			batches = []outcome.AcceptedBatch{{Batch: "0", TaskID: o.TaskID, AcceptedAt: o.UpdatedAt}}
		}
	} else if batches, err = h.store.AcceptedBatches(ctx, p.ID); err != nil {
		return err
	}
	recalled := 0
	for _, b := range batches {
		if b.Recalled {
			continue
		}
		expired := time.Since(b.AcceptedAt) > ResultsWindow
		if !expired {
			err := h.admitted(ctx, app, dingtalk.PathRecall, func(tok string) error {
				return h.client.Recall(ctx, tok, app.AgentID, b.TaskID)
			})
			if err != nil {
				retried, _ := asynq.GetRetryCount(ctx)
				_, _, ret := h.judge(ctx, err, retried+1)
				return ret
			}
			recalled++
		}
		if err := h.store.MarkRecalled(ctx, p.ID, b.Batch, expired); err != nil {
			return err
		}
	}
	annotate(ctx, zap.Int("recalled", recalled))
	return nil
}

// admitted makes one call of app to api that costs no recipients, within
// the rate limits and with the token retry of call.
func (h *Handlers) admitted(ctx context.Context, app App, api string, do func(token string) error) error {
	if err := h.limits.admit(ctx, app.Name, api, 0); err != nil {
		return err
	}
	return h.call(ctx, app, api, 0, func(context.Context) error { return nil }, do)
}
