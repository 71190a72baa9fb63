package worker

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/internal/outcome"
	"github.com/dingq/dingq/producer"
	"github.com/hibiken/asynq"
	"go.uber.org/zap"
)

// Coalescing merges small messages with the same app and content into
// shared asyncsend_v2 calls, with asynq's group aggregation.
//
// The producer puts a message that opts in (producer.Message.Coalesce) in
// the asynq group of its app and content, on its priority's queue, as an
// ordinary TypeMessageSend task with its own id and record. Each worker
// checks the groups every CoalesceWindow (every 7s at most): a group whose newest task is at
// least CoalesceWindow old, whose oldest is CoalesceMaxDelay old, or that
// holds CoalesceMaxMessages tasks, is handed to coalesce, which merges its
// tasks into one TypeCoalescedSend task on the same queue (asynq then
// deletes the originals). HandleCoalesced sends that task's messages in as
// few calls of at most 100 distinct users as it can and records each
// message's outcome as if it had been sent alone.
//
// asynq counts the window in whole seconds (it is truncated), at least one
// second, and stamps tasks with the second they joined the group: with
// the check's own period, a message of a group that stays small waits
// from CoalesceWindow-1s to twice CoalesceWindow (0 to 2s by default),
// and one of a busy group up to about CoalesceMaxDelay plus a period.
// Each check merges at most CoalesceMaxMessages tasks of a group, so a
// worker drains a group's backlog at up to 100 messages per window.
//
// The defaults and bounds of coalescing:
const (
	// DefaultCoalesceWindow is how long a group waits for one more
	// message; asynq allows no less.
	DefaultCoalesceWindow = time.Second
	// DefaultCoalesceMaxDelay is how long the first message of a group
	// waits at most.
	DefaultCoalesceMaxDelay = 5 * time.Second
	// CoalesceMaxMessages is how many messages one coalesced task holds:
	// a group that reaches it is merged at once.
	CoalesceMaxMessages = 100
)

// coalesce returns the GroupAggregator that merges the TypeMessageSend
// tasks of a group into one TypeCoalescedSend task. asynq enqueues it on
// the group's queue, ignoring any Queue option, and gives it none of the
// originals' options: it gets maxRetry, a fresh task id, the default
// timeout.
func coalesce(maxRetry int, log *zap.Logger) asynq.GroupAggregatorFunc {
	return func(group string, tasks []*asynq.Task) *asynq.Task {
		var p producer.CoalescedPayload
		for _, t := range tasks {
			m, err := producer.DecodeMessageSend(t)
			if err == nil && t.Type() != producer.TypeMessageSend {
				err = fmt.Errorf("task of type %s", t.Type())
			}
			if err == nil && len(p.Messages) > 0 && (m.App != p.App || !reflect.DeepEqual(m.Msg, p.Msg)) {
				err = fmt.Errorf("message %s differs from the group's first", m.ID)
			}
			if err == nil && (len(m.DeptIDs) > 0 || m.ToAllUser || len(m.UserIDs) == 0) {
				err = fmt.Errorf("message %s is not to users only", m.ID)
			}
			if err != nil {
				// dingq's producer names a group after its app and content
				// and groups only messages to users: this is a task someone
				// else put in the group.
				log.Error("task left out of a coalesced send; its outcome is not updated",
					zap.String("group", group), zap.Error(err))
				continue
			}
			if len(p.Messages) == 0 {
				p.App, p.Msg = m.App, m.Msg
			}
			p.Messages = append(p.Messages, producer.CoalescedMessage{ID: m.ID, UserIDs: m.UserIDs})
		}
		t, err := producer.NewCoalescedTask(&p, asynq.MaxRetry(maxRetry))
		if err != nil {
			// asynq needs a task: this one fails in HandleCoalesced and is
			// archived, where operators see it.
			log.Error("group could not be coalesced", zap.String("group", group), zap.Error(err))
			return asynq.NewTask(producer.TypeCoalescedSend, []byte("{}"), asynq.MaxRetry(0))
		}
		return t
	}
}

// coalescedCall is one asyncsend_v2 call of a coalesced task: whole
// messages and their distinct users.
type coalescedCall struct {
	msgs  []producer.CoalescedMessage
	users []string
	seen  map[string]bool
}

// add adds m and its users not in the call yet.
func (c *coalescedCall) add(m producer.CoalescedMessage) {
	c.msgs = append(c.msgs, m)
	for _, u := range m.UserIDs {
		if !c.seen[u] {
			c.seen[u] = true
			c.users = append(c.users, u)
		}
	}
}

// fits reports whether m's users still fit the call's max distinct users.
func (c *coalescedCall) fits(m producer.CoalescedMessage, max int) bool {
	n := len(c.users)
	added := map[string]bool{}
	for _, u := range m.UserIDs {
		if !c.seen[u] && !added[u] {
			added[u] = true
			n++
		}
	}
	return n <= max
}

// packCalls puts msgs in as few calls of at most max distinct users as
// first fit finds, in their order; a message is never split, and a user
// of several messages of a call is sent to once.
func packCalls(msgs []producer.CoalescedMessage, max int) []*coalescedCall {
	var calls []*coalescedCall
	for _, m := range msgs {
		var to *coalescedCall
		for _, c := range calls {
			if c.fits(m, max) {
				to = c
				break
			}
		}
		if to == nil {
			to = &coalescedCall{seen: map[string]bool{}}
			calls = append(calls, to)
		}
		to.add(m)
	}
	return calls
}

// HandleCoalesced sends the messages of a coalesced task: those already
// sent, failed or canceled are skipped, the rest go out in calls of at
// most 100 distinct users, each message in one call. Each call is admitted
// by the rate limits for its users, marks its messages sending (a new
// attempt each), and records DingTalk's task_id for every message it sent
// before anything else. A call that fails records the error on each of its
// messages: a permanent error fails them and the next calls go on; any
// other error ends the task, which asynq retries, skipping what was sent.
func (h *Handlers) HandleCoalesced(ctx context.Context, t *asynq.Task) (err error) {
	p, err := producer.DecodeCoalesced(t)
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	annotate(ctx, zap.String("app", p.App), zap.Int("messages", len(p.Messages)))
	defer func() {
		// The ids, up to 100, only where someone will look for them.
		if err != nil {
			ids := make([]string, len(p.Messages))
			for i, m := range p.Messages {
				ids[i] = m.ID
			}
			annotate(ctx, zap.Strings("message_ids", ids))
		}
	}()

	// Messages already final take none of DingTalk's budget.
	todo := make([]producer.CoalescedMessage, 0, len(p.Messages))
	seen := make(map[string]bool, len(p.Messages))
	for _, m := range p.Messages {
		if seen[m.ID] {
			continue
		}
		seen[m.ID] = true
		st, err := h.store.Status(ctx, m.ID)
		switch {
		case err == nil && st.Terminal():
			h.countFinal(ctx, counted{app: p.App, kind: kindMessage, recipients: len(m.UserIDs)}, m.ID)
			continue
		case err != nil && !errors.Is(err, outcome.ErrNotFound):
			return err
		}
		todo = append(todo, m)
	}
	if len(todo) < len(p.Messages) {
		annotate(ctx, zap.Int("skipped", len(p.Messages)-len(todo)))
	}
	if len(todo) == 0 {
		annotate(ctx, zap.Bool("duplicate", true))
		return nil
	}

	calls := packCalls(todo, dingtalk.MaxUserIDs)
	var (
		taskIDs []int64
		sent    int
		final   error // the first permanent error; later calls go on
	)
	defer func() {
		fields := []zap.Field{zap.Int("calls", len(calls)), zap.Int("sent", sent)}
		if len(taskIDs) == 1 {
			fields = append(fields, zap.Int64("dingtalk_task_id", taskIDs[0]))
		} else if len(taskIDs) > 1 {
			fields = append(fields, zap.Int64s("dingtalk_task_ids", taskIDs))
		}
		annotate(ctx, fields...)
	}()
	for _, c := range calls {
		res, n, err := h.sendCall(ctx, p, c)
		switch {
		case err == nil:
			if res != nil {
				taskIDs = append(taskIDs, res.TaskID)
				sent += n
			}
		case isFinal(err):
			if final == nil {
				final = err
			}
		default:
			return err
		}
	}
	return final
}

// sendCall makes call c of a coalesced task and records its outcome on
// each of its messages. It returns DingTalk's answer (nil if no message
// was left to send) and how many messages it sent, or the error to answer
// the queue with.
func (h *Handlers) sendCall(ctx context.Context, p *producer.CoalescedPayload, c *coalescedCall) (*dingtalk.SendResult, int, error) {
	app, known := h.apps[p.App]
	if known {
		if err := h.limits.admit(ctx, app.Name, dingtalk.PathAsyncSendV2, len(c.users)); err != nil {
			return nil, 0, err
		}
	}
	// Each message gets a new attempt; one that became final since the
	// check (canceled, or sent by a duplicate task) is left out.
	msgs := make([]producer.CoalescedMessage, 0, len(c.msgs))
	attempts := make([]int, 0, len(c.msgs))
	for _, m := range c.msgs {
		n, err := h.begin(ctx, p.App, m)
		var te *outcome.TerminalError
		if errors.As(err, &te) {
			h.countFinal(ctx, counted{app: p.App, kind: kindMessage, recipients: len(m.UserIDs)}, m.ID)
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		msgs = append(msgs, m)
		attempts = append(attempts, n)
	}
	if len(msgs) == 0 {
		return nil, 0, nil
	}
	users := c.users
	if len(msgs) < len(c.msgs) {
		left := &coalescedCall{seen: map[string]bool{}}
		for _, m := range msgs {
			left.add(m)
		}
		users = left.users
	}

	var (
		res *dingtalk.SendResult
		err error
	)
	if !known {
		err = fmt.Errorf("%w %q: not in this worker's dingtalk.apps", errUnknownApp, p.App)
	} else {
		req := &dingtalk.SendRequest{AgentID: app.AgentID, UserIDs: users, Msg: p.Msg}
		res, err = h.send(ctx, app, req, len(users), nil)
	}
	if err != nil {
		final, info, ret := h.judge(ctx, err, slices.Max(attempts))
		to := outcome.StatusRetrying
		if final {
			to = outcome.StatusFailed
		}
		for i, m := range msgs {
			c := counted{app: p.App, kind: kindMessage, recipients: len(m.UserIDs)}
			tr := outcome.Transition{To: to, Err: info, Attempt: &outcome.Attempt{N: attempts[i], Result: to, Error: info}}
			if rerr := h.record(ctx, c, m.ID, tr); rerr != nil {
				h.log.Error("outcome could not be recorded", zap.String("message_id", m.ID), zap.Error(rerr))
			}
		}
		return nil, 0, ret
	}
	// DingTalk has the messages: record that before anything else, and
	// never answer the queue with an error that would send them again.
	for i, m := range msgs {
		c := counted{app: p.App, kind: kindMessage, recipients: len(m.UserIDs)}
		tr := outcome.Transition{To: outcome.StatusSent, TaskID: res.TaskID, RequestID: res.RequestID,
			Attempt: &outcome.Attempt{N: attempts[i], Result: outcome.StatusSent, RequestID: res.RequestID}}
		if err := h.record(ctx, c, m.ID, tr); err != nil {
			h.log.Error("message sent but its outcome could not be recorded",
				zap.String("message_id", m.ID), zap.Int64("dingtalk_task_id", res.TaskID), zap.Error(err))
		}
	}
	return res, len(msgs), nil
}

// begin marks message m of app sending and returns its attempt number; a
// message without a record (enqueued by hand, or the record expired) gets
// one. A *TerminalError says it is final already.
func (h *Handlers) begin(ctx context.Context, app string, m producer.CoalescedMessage) (int, error) {
	start := outcome.Transition{To: outcome.StatusSending, NewAttempt: true}
	n, err := h.store.Apply(ctx, m.ID, start)
	if errors.Is(err, outcome.ErrNotFound) {
		rec := &outcome.Outcome{ID: m.ID, App: app, Recipients: len(m.UserIDs)}
		if _, err = h.store.Create(ctx, rec, ""); err == nil {
			n, err = h.store.Apply(ctx, m.ID, start)
		}
	}
	return n, err
}
