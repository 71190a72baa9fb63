package producer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/internal/outcome"
	"github.com/hibiken/asynq"
)

// DefaultMaxRecipients caps the user and department ids of one message
// when the configuration does not.
const DefaultMaxRecipients = 1_000_000

// MaxRecipientsLimit is the most Config.MaxRecipients may allow, and what
// Message.Validate, which knows no configuration, checks.
const MaxRecipientsLimit = 10_000_000

// DefaultCancelWait is how long Cancel waits for the batches of a
// broadcast being sent when it is canceled.
const DefaultCancelWait = 30 * time.Second

// enqueueWorkers is how many batch tasks a broadcast enqueues at once.
const enqueueWorkers = 16

// ErrNotBroadcast is returned by Pause and Resume for a message sent in
// one call.
var ErrNotBroadcast = outcome.ErrNotBroadcast

// ErrInFlight is returned by Cancel for a single message a worker is
// sending: DingTalk may have it already.
var ErrInFlight = outcome.ErrInFlight

// ErrTerminal is returned (wrapped in a *TerminalError) by Cancel, Pause
// and Resume for a message that is final already.
var ErrTerminal = outcome.ErrTerminal

// TerminalError names the final status that refused a change.
type TerminalError = outcome.TerminalError

// ErrNothingToRecall is returned by Recall for a message DingTalk never
// accepted.
var ErrNothingToRecall = errors.New("producer: DingTalk accepted nothing of this message to recall")

// ErrRobotRecall is returned by Recall for a robot's message: dingq
// recalls work notifications only.
var ErrRobotRecall = errors.New("producer: a robot's message cannot be recalled")

// Broadcast is what a broadcast's outcome adds.
type Broadcast = outcome.Broadcast

// Recipient is one recipient in a list of results: a user or department
// id, and for a forbidden one the code of the limit that dropped it.
type Recipient = outcome.Forbidden

// RecipientResults lists the results Recipients takes.
var RecipientResults = outcome.RecipientResults

func validateRecipients(users, depts []string, toAll bool, max int) error {
	switch {
	case len(users) == 0 && len(depts) == 0 && !toAll:
		return &dingtalk.ValidationError{Field: "userid_list", Reason: "required: give userid_list, dept_id_list or to_all_user"}
	case len(users) > max:
		return &dingtalk.ValidationError{Field: "userid_list", Reason: fmt.Sprintf("%d user ids, at most %d in one message", len(users), max)}
	case len(depts) > max:
		return &dingtalk.ValidationError{Field: "dept_id_list", Reason: fmt.Sprintf("%d department ids, at most %d in one message", len(depts), max)}
	case toAll && (len(users) > dingtalk.MaxUserIDs || len(depts) > dingtalk.MaxDeptIDs):
		return &dingtalk.ValidationError{Field: "to_all_user", Reason: fmt.Sprintf(
			"cannot be combined with more than %d user ids or %d department ids: to_all_user reaches everyone already",
			dingtalk.MaxUserIDs, dingtalk.MaxDeptIDs)}
	}
	if err := dingtalk.ValidateIDs("userid_list", users); err != nil {
		return err
	}
	return dingtalk.ValidateIDs("dept_id_list", depts)
}

// dedupe returns ids without repeats, first ones kept in order, and how
// many it left out. ids itself is returned when it has none.
func dedupe(ids []string) ([]string, int) {
	if len(ids) < 2 {
		return ids, 0
	}
	seen := make(map[string]struct{}, len(ids))
	var out []string // nil until the first duplicate: ids is returned as it is
	for i, id := range ids {
		if _, dup := seen[id]; dup {
			if out == nil {
				out = append(make([]string, 0, len(ids)), ids[:i]...)
			}
			continue
		}
		seen[id] = struct{}{}
		if out != nil {
			out = append(out, id)
		}
	}
	if out == nil {
		return ids, 0
	}
	return out, len(ids) - len(out)
}

// batchPlan splits a broadcast's recipients into its batches: users by
// perBatch (100 for work notifications, 20 for an enterprise robot), then
// departments by 20.
type batchPlan struct {
	users, depts []string
	perBatch     int
}

func (b batchPlan) count() int {
	return (len(b.users)+b.perBatch-1)/b.perBatch + (len(b.depts)+dingtalk.MaxDeptIDs-1)/dingtalk.MaxDeptIDs
}

// batch returns batch i's users and departments.
func (b batchPlan) batch(i int) (users, depts []string) {
	nu := (len(b.users) + b.perBatch - 1) / b.perBatch
	if i < nu {
		return b.users[i*b.perBatch : min((i+1)*b.perBatch, len(b.users))], nil
	}
	i -= nu
	return nil, b.depts[i*dingtalk.MaxDeptIDs : min((i+1)*dingtalk.MaxDeptIDs, len(b.depts))]
}

// fanOut is a message sent in batches: what every batch shares, and how
// the message is accepted.
type fanOut struct {
	// shared holds App, Msg or Robot and RobotMsg, and Priority: what each
	// batch's payload shares.
	shared BatchPayload
	sendAt time.Time
	// idemScope and idemKey are the idempotency key and the scope it is
	// unique in (the app, or the robot).
	idemScope, idemKey string
}

func (p *Producer) broadcast(ctx context.Context, m *Message, users, depts []string, dups int, o enqueueOptions) (*Accepted, error) {
	if m.ToAllUser {
		return nil, &dingtalk.ValidationError{Field: "to_all_user", Reason: "cannot be combined with more than 100 user ids or 20 department ids"}
	}
	f := fanOut{shared: BatchPayload{App: m.App, Msg: m.Msg, Priority: m.Priority}, sendAt: m.SendAt,
		idemScope: m.App, idemKey: m.IdempotencyKey}
	return p.fanOut(ctx, f, batchPlan{users: users, depts: depts, perBatch: dingtalk.MaxUserIDs}, dups, o)
}

// fanOut records and enqueues message f in the batches of plan.
func (p *Producer) fanOut(ctx context.Context, f fanOut, plan batchPlan, dups int, o enqueueOptions) (*Accepted, error) {
	acc := &Accepted{Status: StatusQueued, Recipients: len(plan.users) + len(plan.depts), Duplicates: dups, Batches: plan.count()}
	var fp string
	if f.idemKey != "" {
		fp = broadcastFingerprint(&f, plan)
	}
	id, err := newID()
	if err != nil {
		return nil, err
	}
	if f.idemKey != "" {
		var existed bool
		if id, existed, err = p.store.Reserve(ctx, f.idemScope, f.idemKey, id); err != nil {
			return nil, err
		}
		if existed {
			prev, err := p.store.Fingerprint(ctx, id)
			switch {
			case errors.Is(err, outcome.ErrNotFound):
			case err != nil:
				return nil, err
			case prev != fp:
				return nil, ErrIdempotencyConflict
			}
		}
	}
	acc.ID = id
	rec := &outcome.Outcome{ID: id, App: f.shared.App, Robot: f.shared.Robot, Recipients: acc.Recipients, SendAt: f.sendAt}
	if _, err := p.store.CreateBroadcast(ctx, rec, fp, acc.Batches, dups); err != nil {
		return nil, err
	}
	if done, err := p.store.Enqueued(ctx, id); err != nil || done {
		return acc, err
	}
	if queued, err := p.enqueueBatches(ctx, id, &f, plan, o.progress); err != nil {
		if f.idemKey == "" {
			// Nobody can retry this one: cancel it, so the record tells the
			// truth and finishes: the batches queued cancel themselves, the
			// others are canceled here, and a worker counts those.
			bg := context.WithoutCancel(ctx)
			if _, cerr := p.store.Cancel(bg, id, 0, batchRecipients); cerr == nil {
				for i, q := range queued {
					if !q {
						users, depts := plan.batch(i)
						_, _ = p.store.CancelBatch(bg, id, strconv.Itoa(i), append(slices.Clone(users), depts...))
					}
				}
				_ = p.enqueueCanceled(bg, id, f.shared.App)
			}
		}
		return nil, err
	}
	return acc, p.store.SetEnqueued(ctx, id)
}

// enqueueBatches enqueues every batch of plan, enqueueWorkers at a time,
// and says which it queued. A batch whose task exists already (a repeated
// idempotency key) is not enqueued twice.
func (p *Producer) enqueueBatches(ctx context.Context, id string, f *fanOut, plan batchPlan, progress func(done, total int)) ([]bool, error) {
	total := plan.count()
	queued := make([]bool, total)
	var next, done atomic.Int64
	var once sync.Once
	var firstErr error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var opts []asynq.Option
	opts = append(opts, asynq.MaxRetry(p.maxRetry))
	if at, ok := p.processAt(f.sendAt); ok {
		opts = append(opts, asynq.ProcessAt(at))
	}
	var wg sync.WaitGroup
	for range min(enqueueWorkers, total) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= total || ctx.Err() != nil {
					return
				}
				users, depts := plan.batch(i)
				bp := f.shared // the shared parts, copied
				bp.ID, bp.Batch, bp.UserIDs, bp.DeptIDs = id, strconv.Itoa(i), users, depts
				err := p.enqueueBatch(ctx, &bp, opts...)
				if err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
				queued[i] = true
				if d := done.Add(1); progress != nil {
					progress(int(d), total)
				}
			}
		})
	}
	wg.Wait()
	return queued, firstErr
}

func (p *Producer) enqueueBatch(ctx context.Context, bp *BatchPayload, opts ...asynq.Option) error {
	t, err := NewBatchTask(bp, opts...)
	if err != nil {
		return err
	}
	if _, err = p.client.EnqueueContext(ctx, t); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("producer: enqueueing batch %s of %s: %w", bp.Batch, bp.ID, err)
	}
	return nil
}

// processAt says when a task for a message with send_at sendAt may run:
// asynq schedules in whole seconds and runs a task once its second has
// begun, so round up and never send before send_at.
func (p *Producer) processAt(sendAt time.Time) (time.Time, bool) {
	if !sendAt.After(p.now()) {
		return time.Time{}, false
	}
	at := sendAt.Truncate(time.Second)
	if at.Before(sendAt) {
		at = at.Add(time.Second)
	}
	return at, true
}

// broadcastFingerprint hashes what a broadcast sends, without building its
// whole JSON.
func broadcastFingerprint(f *fanOut, plan batchPlan) string {
	h := sha256.New()
	msg, _ := json.Marshal(f.shared.Msg)
	if f.shared.Robot != "" {
		msg, _ = json.Marshal(f.shared.RobotMsg)
		fmt.Fprintf(h, "robot %s\x00", f.shared.Robot)
	}
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00", f.shared.App, msg, f.sendAt.UnixMilli())
	for _, l := range [][]string{plan.users, plan.depts} {
		for _, id := range l {
			h.Write([]byte(id))
			h.Write([]byte{0})
		}
		h.Write([]byte{1})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Cancel cancels message id. A broadcast stops sending: its batches not
// yet sent are dropped, and Cancel returns once the batches being sent at
// that moment are done (or after Config.CancelWait), so no batch goes out
// after it; the outcome counts what went out. Canceling a canceled
// broadcast returns it as it is. A single message can be canceled while it
// waits in the queue: ErrInFlight while a worker is sending it, and a
// *TerminalError once it is final.
//
// The batches of a broadcast a pause set aside are canceled right here,
// where nothing counts them: Cancel queues a task for a worker to count
// them in its metrics. If that task cannot be queued the cancel still
// stands and Cancel says so; those recipients are counted when the task is
// queued by a later Cancel of the same broadcast.
func (p *Producer) Cancel(ctx context.Context, id string) (*Outcome, error) {
	o, err := p.store.Cancel(ctx, id, p.cancelWait, batchRecipients)
	if err != nil || o.Broadcast == nil {
		return o, err
	}
	_ = p.enqueueCanceled(ctx, id, o.App) // metrics only: never undo or deny a cancel for them
	return o, nil
}

// enqueueCanceled queues the task that counts what canceling broadcast id
// of app outside the workers canceled.
func (p *Producer) enqueueCanceled(ctx context.Context, id, app string) error {
	t, err := NewBroadcastCanceledTask(&BroadcastCanceledPayload{ID: id, App: app}, asynq.MaxRetry(p.maxRetry))
	if err != nil {
		return err
	}
	if _, err := p.client.EnqueueContext(ctx, t); err != nil {
		return fmt.Errorf("producer: %s is canceled, but the task that counts it could not be queued: %w", id, err)
	}
	return nil
}

// Pause pauses a broadcast: workers set its batches aside as they come to
// them, without calling DingTalk, until Resume. Batches being sent at that
// moment go on. ErrNotBroadcast for a single message, a *TerminalError for
// a broadcast that is done or canceled.
func (p *Producer) Pause(ctx context.Context, id string) (*Outcome, error) {
	return p.store.Pause(ctx, id)
}

// Resume sets a paused broadcast going again: the batches set aside are
// enqueued once more. Resuming a running broadcast changes nothing.
func (p *Producer) Resume(ctx context.Context, id string) (*Outcome, error) {
	parked, err := p.store.Resume(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, pk := range parked {
		bp, err := decodeBatch(TypeBroadcastBatch, pk.Payload)
		if err != nil {
			return nil, err
		}
		// The task that parked the batch may still be finishing: a task id
		// of its own (the park's generation) keeps asynq from taking the
		// new one for it.
		tid := asynq.TaskID(BatchTaskID(id, pk.Batch) + ":resume" + pk.Gen)
		if err := p.enqueueBatch(ctx, bp, asynq.MaxRetry(p.maxRetry), tid); err != nil {
			return nil, err
		}
		if err := p.store.Unpark(ctx, id, pk); err != nil {
			return nil, err
		}
	}
	return p.store.Get(ctx, id)
}

// Recall asks the workers to recall message id at DingTalk: every batch
// DingTalk accepted in the last 24 hours (older ones are counted as
// expired in the outcome's broadcast.recall). It returns once the recall
// task is queued; ErrNothingToRecall if DingTalk accepted none of it.
func (p *Producer) Recall(ctx context.Context, id string) (*Outcome, error) {
	o, err := p.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if o.Robot != "" {
		return nil, ErrRobotRecall
	}
	if (o.Broadcast == nil && o.TaskID == 0) || (o.Broadcast != nil && o.Broadcast.Batches.Sent == 0) {
		return nil, ErrNothingToRecall
	}
	b, err := json.Marshal(RecallPayload{ID: id, App: o.App})
	if err != nil {
		return nil, err
	}
	// No task id: a recall asked for again runs again, and recalls only
	// what is not recalled yet.
	t := asynq.NewTask(TypeRecall, b, asynq.Queue(QueueCritical), asynq.MaxRetry(p.maxRetry))
	if _, err := p.client.EnqueueContext(ctx, t); err != nil {
		return nil, fmt.Errorf("producer: enqueueing the recall of %s: %w", id, err)
	}
	return o, nil
}

// RecipientsPage is one page of a broadcast's recipients with one result.
type RecipientsPage struct {
	Result string      `json:"result"`
	Total  int64       `json:"total"`
	Items  []Recipient `json:"items"`
	// Next is the offset of the next page; zero when this is the last.
	Next int64 `json:"next,omitempty"`
}

// MaxRecipientsPage caps a page of Recipients.
const MaxRecipientsPage = 10000

// Recipients returns up to limit (at most MaxRecipientsPage) of broadcast
// id's recipients with result (one of RecipientResults), from offset on.
func (p *Producer) Recipients(ctx context.Context, id, result string, offset, limit int64) (*RecipientsPage, error) {
	known := false
	for _, r := range RecipientResults {
		known = known || r == result
	}
	switch {
	case !known:
		return nil, &dingtalk.ValidationError{Field: "status", Reason: fmt.Sprintf("unknown result %q: one of %v", result, RecipientResults)}
	case offset < 0:
		return nil, &dingtalk.ValidationError{Field: "offset", Reason: "must be >= 0"}
	case limit <= 0 || limit > MaxRecipientsPage:
		return nil, &dingtalk.ValidationError{Field: "limit", Reason: fmt.Sprintf("must be 1 to %d", MaxRecipientsPage)}
	}
	if _, err := p.store.Status(ctx, id); err != nil {
		return nil, err
	}
	items, total, err := p.store.Recipients(ctx, id, result, offset, limit)
	if err != nil {
		return nil, err
	}
	page := &RecipientsPage{Result: result, Total: total, Items: items}
	if end := offset + int64(len(items)); end < total {
		page.Next = end
	}
	return page, nil
}

// batchRecipients reads the recipients of a batch task's payload.
func batchRecipients(payload []byte) []string {
	bp, err := decodeBatch(TypeBroadcastBatch, payload)
	if err != nil {
		return nil
	}
	return bp.Recipients()
}
