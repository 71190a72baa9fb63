package outcome

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// A broadcast is a message to more recipients than one DingTalk call takes.
// Its record is an ordinary outcome record (kind "broadcast") that also
// counts its batches, the recipients DingTalk accepted, and what
// getsendresult later said of them. Every change of a batch goes through
// one Lua script that moves the batch between states and the counters with
// it, so the counts always add up, whatever the fleet does at once.
//
// A batch is in one state, kept in the Batches hash by its name:
//
//	q queued   (also when absent)   s sending   S sent
//	f failed   c canceled           p paused (parked, its task done)
//
// A broadcast's status is queued, sending, paused, canceled or done.

// Statuses only broadcasts have.
const (
	// StatusPaused: a paused broadcast; its batches wait for a resume.
	StatusPaused Status = "paused"
	// StatusDone: every batch of a broadcast is sent or failed and their
	// results are in (or given up on).
	StatusDone Status = "done"
)

// KindBroadcast is the kind of a broadcast's record.
const KindBroadcast = "broadcast"

// KindRobot is the kind of the record of a custom group robot's message.
// (An enterprise robot's one-to-one message is a broadcast whose Robot is
// set.)
const KindRobot = "robot"

// Recipient results: the lists a broadcast's recipients end in, by what
// DingTalk's getsendresult said of them, or why they were never sent.
const (
	ResultInvalid   = "invalid"   // not a user DingTalk knows
	ResultForbidden = "forbidden" // dropped by a silent limit; the code says which
	ResultFailed    = "failed"    // DingTalk failed to deliver
	ResultRead      = "read"
	ResultUnread    = "unread"
	ResultUnknown   = "unknown" // accepted, but DingTalk gave no result in time
	// ResultDelivered: an enterprise robot messaged the user one to one;
	// DingTalk's answer says nothing of reading.
	ResultDelivered = "delivered"
	ResultRejected  = "rejected" // its batch was refused by DingTalk (failed)
	ResultCanceled  = "canceled" // its batch was canceled before it was sent
)

// RecipientResults lists every recipient result, in the order they are
// shown.
var RecipientResults = []string{ResultInvalid, ResultForbidden, ResultFailed, ResultRead,
	ResultUnread, ResultDelivered, ResultUnknown, ResultRejected, ResultCanceled}

// resultLists are the results getsendresult (or a robot's batch send)
// fills, in the order recordResultsScript takes them.
var resultLists = []string{ResultInvalid, ResultForbidden, ResultFailed, ResultRead, ResultUnread, ResultUnknown,
	ResultDelivered}

// Broadcast is what a broadcast's record adds to an Outcome.
type Broadcast struct {
	Batches    BatchCounts     `json:"batches"`
	Recipients RecipientCounts `json:"recipients"`
	Results    ResultCounts    `json:"results"`
	Recall     *RecallCounts   `json:"recall,omitempty"`
	// Finished is true once no batch is queued, sending or paused and no
	// result is pending: nothing about the broadcast changes any more.
	Finished   bool      `json:"finished"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	CanceledAt time.Time `json:"canceled_at,omitzero"`
}

// BatchCounts counts a broadcast's batches by state. Total is the sum of
// the others.
type BatchCounts struct {
	Total    int `json:"total"`
	Queued   int `json:"queued"`
	Sending  int `json:"sending"`
	Sent     int `json:"sent"`
	Failed   int `json:"failed"`
	Canceled int `json:"canceled"`
	Paused   int `json:"paused"`
}

// RecipientCounts counts a broadcast's recipients (user ids and department
// ids). Total counts each distinct id once; Duplicates are the ids the
// request repeated, sent once. Accepted counts the recipients of batches
// DingTalk accepted, re-sends included; Rejected those of batches it
// refused; Canceled those of batches canceled before they were sent;
// Resent those DingTalk dropped only for its per-minute limits (143103,
// 143104), sent once more in a batch of their own.
type RecipientCounts struct {
	Total      int `json:"total"`
	Duplicates int `json:"duplicates"`
	Accepted   int `json:"accepted"`
	Rejected   int `json:"rejected"`
	Canceled   int `json:"canceled"`
	Resent     int `json:"resent"`
}

// ResultCounts counts what getsendresult said of the accepted recipients,
// once each batch's results are in. Accepted = Invalid + Forbidden total +
// Failed + Read + Unread + Delivered + Unknown + Resent + the recipients
// of the PendingBatches.
type ResultCounts struct {
	// PendingBatches are accepted batches whose results are not in yet.
	PendingBatches int `json:"pending_batches"`
	Invalid        int `json:"invalid"`
	// Forbidden counts the recipients a silent limit dropped, by
	// DingTalk's code (143105 daily limit, 143106 same content…). They
	// are not sent again: only the per-minute limits' drops are, once.
	Forbidden map[string]int `json:"forbidden"`
	Failed    int            `json:"failed"`
	Read      int            `json:"read"`
	Unread    int            `json:"unread"`
	// Unknown: accepted recipients DingTalk named in no list, or whose
	// results could not be had within its 24 hours.
	Unknown int `json:"unknown"`
	// Delivered: users an enterprise robot messaged one to one (its batch
	// send tells no more).
	Delivered int `json:"delivered,omitempty"`
}

// ForbiddenTotal sums Forbidden.
func (r ResultCounts) ForbiddenTotal() int {
	n := 0
	for _, v := range r.Forbidden {
		n += v
	}
	return n
}

// RecallCounts says what a recall did: batches recalled at DingTalk, and
// batches too old to recall (DingTalk recalls within 24 hours).
type RecallCounts struct {
	Recalled int `json:"recalled"`
	Expired  int `json:"expired"`
}

// Batch verdicts of BeginBatch.
type BatchVerdict string

// What BeginBatch tells a worker to do with a batch.
const (
	// BatchGo: send it now.
	BatchGo BatchVerdict = "go"
	// BatchFinal: it was sent, failed or canceled before; do nothing.
	BatchFinal BatchVerdict = "final"
	// BatchCanceled: the broadcast is canceled; the batch now is too.
	BatchCanceled BatchVerdict = "canceled"
	// BatchParked: the broadcast is paused; the batch is kept for Resume.
	BatchParked BatchVerdict = "paused"
	// BatchBusy: another delivery of the batch's task went sending less
	// than SendingStale ago; come back later.
	BatchBusy BatchVerdict = "busy"
)

// SendingStale is how long a batch stays another delivery's once it went
// sending: a second delivery of its task (asynq redelivers a task whose
// worker stopped answering) neither sends it nor cancels or parks it
// before then, so a batch in flight is never sent twice, nor listed
// canceled or parked while DingTalk takes it. After that the first
// delivery is taken for dead and the batch is sent again (at least once).
// It is longer than any one attempt: two calls of dingtalk.timeout (10 s
// by default) and the waits for rate-limit slots.
const SendingStale = 2 * time.Minute

// ErrNotBroadcast is returned by a broadcast-only operation on a single
// message.
var ErrNotBroadcast = errors.New("outcome: not a broadcast")

// ErrInFlight is returned by Cancel for a single message a worker is
// sending right now: DingTalk may have it already.
var ErrInFlight = errors.New("outcome: the message is being sent")

// CreateBroadcast writes a new broadcast record in status queued with
// batches batches, all queued. It returns false if the id exists.
func (s *Store) CreateBroadcast(ctx context.Context, o *Outcome, fingerprint string, batches, duplicates int) (bool, error) {
	return s.create(ctx, o, fingerprint, "kind", KindBroadcast, "b_total", batches, "b_queued", batches,
		"dups", duplicates)
}

// BeginBatch moves a broadcast's batch to sending and says BatchGo, unless
// it is final already, or another delivery is sending it (BatchBusy), or
// the broadcast is canceled (the batch is canceled,
// its recipients listed as canceled) or paused (the batch is parked with
// its task's payload for Resume). recipients are the batch's user and
// department ids. It returns ErrNotFound if the broadcast has no record.
func (s *Store) BeginBatch(ctx context.Context, id, batch string, recipients []string, payload []byte) (BatchVerdict, error) {
	return s.beginBatch(ctx, id, batch, recipients, payload, false)
}

// CancelBatch cancels a batch of a canceled broadcast that no worker will
// take (its task was never queued, or a pause parked it): its recipients
// are listed as canceled and kept for TakeUncounted, since no worker
// counts them. It reports whether it canceled the batch: false for a
// batch final already, one another delivery is sending, or a broadcast
// not canceled. ErrNotFound if the broadcast has no record.
func (s *Store) CancelBatch(ctx context.Context, id, batch string, recipients []string) (bool, error) {
	v, err := s.beginBatch(ctx, id, batch, recipients, nil, true)
	return v == BatchCanceled, err
}

// beginBatch is BeginBatch, or CancelBatch if outside.
func (s *Store) beginBatch(ctx context.Context, id, batch string, recipients []string, payload []byte, outside bool) (BatchVerdict, error) {
	now := s.now().UnixMilli()
	keys := []string{s.keys.Outcome(id), s.keys.Batches(id), s.keys.Parked(id), s.keys.ParkGen(id),
		s.keys.Recipients(id, ResultCanceled)}
	flag := ""
	if outside {
		flag = "1"
	}
	args := make([]any, 0, 7+len(recipients))
	args = append(args, now, s.retention.Milliseconds(), batch, len(recipients), payload, SendingStale.Milliseconds(), flag)
	for _, r := range recipients {
		args = append(args, r)
	}
	v, err := beginBatchScript.Run(ctx, s.rdb, keys, args...).Text()
	if err != nil {
		return "", fmt.Errorf("outcome: beginning batch %s of %s: %w", batch, id, err)
	}
	if v == "missing" {
		return "", ErrNotFound
	}
	return BatchVerdict(v), nil
}

// BatchEnd is how a batch's attempt ended.
type BatchEnd struct {
	// To is StatusSent, StatusFailed, or StatusRetrying (back to queued).
	To Status
	// TaskID is DingTalk's task_id when it accepted the batch.
	TaskID int64
	// Err is the attempt's error, if any; it becomes the record's LastError.
	Err *ErrorInfo
	// Recipients are the batch's ids; a failed batch lists them as rejected.
	Recipients []string
	// Claimant, if set, names this end: an EndBatch repeated with the same
	// Claimant (its answer was lost) reports true again, so the caller
	// counts what it ended.
	Claimant string
}

// EndBatch ends the attempt of a sending batch and reports whether it
// did: a batch not sending (ended by another delivery of its task, or by
// an earlier try of the same end, see BatchEnd.Claimant) is left alone,
// and false says so.
func (s *Store) EndBatch(ctx context.Context, id, batch string, e BatchEnd) (bool, error) {
	to := map[Status]string{StatusSent: "S", StatusFailed: "f", StatusRetrying: "q"}[e.To]
	if to == "" {
		return false, fmt.Errorf("outcome: a batch cannot end %s", e.To)
	}
	info := e.Err
	if info == nil {
		info = &ErrorInfo{}
	}
	keys := []string{s.keys.Outcome(id), s.keys.Batches(id), s.keys.Tasks(id), s.keys.Recipients(id, ResultRejected)}
	args := make([]any, 0, 11+len(e.Recipients))
	args = append(args, s.now().UnixMilli(), s.retention.Milliseconds(), batch, len(e.Recipients), to, e.TaskID,
		info.Code, info.SubCode, info.Class, info.Message, e.Claimant)
	for _, r := range e.Recipients {
		args = append(args, r)
	}
	v, err := endBatchScript.Run(ctx, s.rdb, keys, args...).Text()
	if err != nil {
		return false, fmt.Errorf("outcome: ending batch %s of %s: %w", batch, id, err)
	}
	return v == "ok", nil
}

// BatchResults are what getsendresult said of an accepted batch's
// recipients. Forbidden maps each dropped recipient to DingTalk's code.
type BatchResults struct {
	Invalid, Failed, Read, Unread, Unknown, Delivered []string
	Forbidden                                         []Forbidden
	// Resend, if not empty, names a new batch that sends ResendCount
	// recipients again (those only the per-minute limits dropped); the
	// caller enqueues its task after RecordResults.
	Resend      string
	ResendCount int
	// ResendPayload, if set, is the task payload of batch Resend, kept
	// with the batch so that a delivery that finds these results recorded
	// but the re-send not queued can queue it (ResendPayload).
	ResendPayload []byte
	// Claimant, if set, names this recording: a RecordResults repeated
	// with the same Claimant (its answer was lost) returns true again, so
	// the caller counts what it recorded.
	Claimant string
}

// Forbidden is one recipient a silent limit dropped.
type Forbidden struct {
	UserID string `json:"userid"`
	Code   string `json:"code"`
}

// ErrNotSent is returned by RecordResults for a batch not recorded as sent.
var ErrNotSent = errors.New("outcome: the batch is not recorded as sent")

// RecordResults records batch's results once: a second call for the same
// batch changes nothing and returns false (true if it repeats the first,
// see BatchResults.Claimant). Results of a batch not recorded
// as sent are refused with ErrNotSent.
func (s *Store) RecordResults(ctx context.Context, id, batch string, r BatchResults) (bool, error) {
	keys := []string{s.keys.Outcome(id), s.keys.Results(id), s.keys.Batches(id)}
	for _, l := range resultLists {
		keys = append(keys, s.keys.Recipients(id, l))
	}
	forbidden := make([]string, len(r.Forbidden))
	for i, f := range r.Forbidden {
		forbidden[i] = f.Code + ":" + f.UserID
	}
	lists := [][]string{r.Invalid, forbidden, r.Failed, r.Read, r.Unread, r.Unknown, r.Delivered}
	args := []any{s.now().UnixMilli(), s.retention.Milliseconds(), batch, r.Resend, r.ResendCount}
	for _, l := range lists {
		args = append(args, len(l))
	}
	args = append(args, r.Claimant, r.ResendPayload)
	for _, l := range lists {
		for _, v := range l {
			args = append(args, v)
		}
	}
	n, err := recordResultsScript.Run(ctx, s.rdb, keys, args...).Int()
	if err != nil {
		return false, fmt.Errorf("outcome: recording results of batch %s of %s: %w", batch, id, err)
	}
	if n < 0 {
		return false, ErrNotSent
	}
	return n == 1, nil
}

// ResendPayload returns the payload of re-send batch resend of broadcast
// id as RecordResults kept it (BatchResults.ResendPayload), and its state
// letter; nil if none was kept.
func (s *Store) ResendPayload(ctx context.Context, id, resend string) ([]byte, string, error) {
	v, err := s.rdb.HMGet(ctx, s.keys.Batches(id), resend+"#", resend).Result()
	if err != nil {
		return nil, "", fmt.Errorf("outcome: reading batch %s of %s: %w", resend, id, err)
	}
	payload, _ := v[0].(string)
	state, _ := v[1].(string)
	if state == "" {
		state = "q"
	}
	if payload == "" {
		return nil, state, nil
	}
	return []byte(payload), state, nil
}

// BatchState returns the status of broadcast id and the state letter of
// its batch ("q" if it has none yet), in one round trip: a worker's look
// before it spends DingTalk's budget on the batch. ErrNotFound if the
// broadcast has no record.
func (s *Store) BatchState(ctx context.Context, id, batch string) (Status, string, error) {
	var st, b *redis.StringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		st = p.HGet(ctx, s.keys.Outcome(id), fieldStatus)
		b = p.HGet(ctx, s.keys.Batches(id), batch)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", "", fmt.Errorf("outcome: reading batch %s of %s: %w", batch, id, err)
	}
	if st.Val() == "" {
		return "", "", ErrNotFound
	}
	state := b.Val()
	if state == "" {
		state = "q"
	}
	return Status(st.Val()), state, nil
}

// Cancel cancels message id. A broadcast stops: batches not sent yet are
// canceled when a worker takes them (at once, without a call) and parked
// ones right here (with CancelBatch: no worker will count their
// recipients, TakeUncounted has them); Cancel then waits up to wait for
// the batches being sent at this moment, so that none goes out after it
// returns, and returns the record. recipientsOf reads a parked batch's
// recipients from its payload, to list them as canceled. A single message
// is canceled only while queued or retrying: ErrInFlight while a worker is
// sending it, a *TerminalError once final.
func (s *Store) Cancel(ctx context.Context, id string, wait time.Duration, recipientsOf func(payload []byte) []string) (*Outcome, error) {
	v, err := cancelScript.Run(ctx, s.rdb, []string{s.keys.Outcome(id)}, s.now().UnixMilli(),
		s.retention.Milliseconds()).Text()
	if err != nil {
		return nil, fmt.Errorf("outcome: canceling %s: %w", id, err)
	}
	switch v {
	case "missing":
		return nil, ErrNotFound
	case "ok-single":
		return s.Get(ctx, id)
	case "ok":
		// A broadcast: cancel what the pause parked, wait for what is sending.
	case string(StatusSending):
		return nil, ErrInFlight
	default:
		return nil, &TerminalError{Status: Status(v)}
	}
	parked, err := s.rdb.HGetAll(ctx, s.keys.Parked(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("outcome: canceling %s: %w", id, err)
	}
	for batch, payload := range parked {
		if _, err := s.CancelBatch(ctx, id, batch, recipientsOf([]byte(payload))); err != nil {
			return nil, err
		}
	}
	deadline := time.Now().Add(wait)
	for {
		n, err := s.rdb.HGet(ctx, s.keys.Outcome(id), "b_sending").Int()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("outcome: canceling %s: %w", id, err)
		}
		if n <= 0 || time.Now().After(deadline) {
			break
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return nil, err
		}
	}
	return s.Get(ctx, id)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SetEnqueued records that the task (or every batch) of message id is in
// the queue.
func (s *Store) SetEnqueued(ctx context.Context, id string) error {
	if err := s.rdb.HSet(ctx, s.keys.Outcome(id), "enqueued", 1).Err(); err != nil {
		return fmt.Errorf("outcome: updating %s: %w", id, err)
	}
	return nil
}

// Enqueued reports whether SetEnqueued was called for message id.
func (s *Store) Enqueued(ctx context.Context, id string) (bool, error) {
	n, err := s.rdb.HExists(ctx, s.keys.Outcome(id), "enqueued").Result()
	if err != nil {
		return false, fmt.Errorf("outcome: reading %s: %w", id, err)
	}
	return n, nil
}

// Pause pauses a queued or sending broadcast: workers park its batches as
// they take them, without calling DingTalk. Batches being sent go on.
func (s *Store) Pause(ctx context.Context, id string) (*Outcome, error) {
	v, err := pauseScript.Run(ctx, s.rdb, []string{s.keys.Outcome(id)}, s.now().UnixMilli(),
		s.retention.Milliseconds()).Text()
	if err != nil {
		return nil, fmt.Errorf("outcome: pausing %s: %w", id, err)
	}
	if err := verdictErr(v); err != nil {
		return nil, err
	}
	return s.Get(ctx, id)
}

// Parked is a batch a pause parked.
type Parked struct {
	Batch   string
	Payload []byte
	// Gen counts the batch's parks: a resumed task's id includes it, so it
	// never meets the task that parked it, still finishing.
	Gen string
}

// Resume sets a paused broadcast going again and returns its parked
// batches; the caller enqueues each one's task and then calls Unpark.
// Resuming a broadcast that is not paused returns its parked batches too
// (none, unless a resume was cut short), so a resume can be repeated.
func (s *Store) Resume(ctx context.Context, id string) ([]Parked, error) {
	res, err := resumeScript.Run(ctx, s.rdb, []string{s.keys.Outcome(id), s.keys.Parked(id), s.keys.ParkGen(id)},
		s.now().UnixMilli(), s.retention.Milliseconds()).Slice()
	if err != nil {
		return nil, fmt.Errorf("outcome: resuming %s: %w", id, err)
	}
	if v, _ := res[0].(string); v != "ok" {
		if err := verdictErr(v); err != nil {
			return nil, err
		}
	}
	flat, _ := res[1].([]any)
	var out []Parked
	for i := 0; i+2 < len(flat); i += 3 {
		b, _ := flat[i].(string)
		p, _ := flat[i+1].(string)
		g, _ := flat[i+2].(string)
		out = append(out, Parked{Batch: b, Payload: []byte(p), Gen: g})
	}
	return out, nil
}

// Unpark forgets a parked batch whose task Resume's caller enqueued again,
// unless a pause parked it anew since.
func (s *Store) Unpark(ctx context.Context, id string, p Parked) error {
	keys := []string{s.keys.Outcome(id), s.keys.Batches(id), s.keys.Parked(id), s.keys.ParkGen(id)}
	if err := unparkScript.Run(ctx, s.rdb, keys, p.Batch, p.Gen).Err(); err != nil {
		return fmt.Errorf("outcome: unparking batch %s of %s: %w", p.Batch, id, err)
	}
	return nil
}

func verdictErr(v string) error {
	switch v {
	case "ok":
		return nil
	case "missing":
		return ErrNotFound
	case "single":
		return ErrNotBroadcast
	}
	return &TerminalError{Status: Status(v)}
}

// SentBatch tells, for a batch recorded as sent, DingTalk's task_id, when
// it accepted the batch, and whether its results are recorded; ok is false
// for a batch not recorded as sent.
func (s *Store) SentBatch(ctx context.Context, id, batch string) (a AcceptedBatch, resultsIn, ok bool, err error) {
	var task *redis.StringCmd
	var res *redis.BoolCmd
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		task = p.HGet(ctx, s.keys.Tasks(id), batch)
		res = p.HExists(ctx, s.keys.Results(id), batch)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return a, false, false, fmt.Errorf("outcome: reading batch %s of %s: %w", batch, id, err)
	}
	t, at, found := strings.Cut(task.Val(), ":")
	if !found {
		return a, false, false, nil
	}
	a = AcceptedBatch{Batch: batch, AcceptedAt: millis(at)}
	a.TaskID, _ = strconv.ParseInt(t, 10, 64)
	return a, res.Val(), true, nil
}

// AcceptedBatch is a batch DingTalk accepted.
type AcceptedBatch struct {
	Batch      string
	TaskID     int64
	AcceptedAt time.Time
	Recalled   bool
}

// AcceptedBatches lists a broadcast's accepted batches, in no order.
func (s *Store) AcceptedBatches(ctx context.Context, id string) ([]AcceptedBatch, error) {
	var tasks *redis.MapStringStringCmd
	var recalled *redis.MapStringStringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		tasks = p.HGetAll(ctx, s.keys.Tasks(id))
		recalled = p.HGetAll(ctx, s.keys.Recalled(id))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("outcome: reading the batches of %s: %w", id, err)
	}
	out := make([]AcceptedBatch, 0, len(tasks.Val()))
	for b, v := range tasks.Val() {
		t, at, _ := strings.Cut(v, ":")
		a := AcceptedBatch{Batch: b, AcceptedAt: millis(at)}
		a.TaskID, _ = strconv.ParseInt(t, 10, 64)
		_, a.Recalled = recalled.Val()[b]
		out = append(out, a)
	}
	return out, nil
}

// MarkRecalled records that batch was recalled (or was too old to be,
// expired true); each batch counts once.
func (s *Store) MarkRecalled(ctx context.Context, id, batch string, expired bool) error {
	field := "recalled"
	if expired {
		field = "recall_expired"
	}
	keys := []string{s.keys.Outcome(id), s.keys.Recalled(id)}
	if err := markRecalledScript.Run(ctx, s.rdb, keys, s.now().UnixMilli(), s.retention.Milliseconds(), batch, field).Err(); err != nil {
		return fmt.Errorf("outcome: recording the recall of %s: %w", id, err)
	}
	return nil
}

// Recipients returns up to limit of broadcast id's recipients with result
// (one of RecipientResults) from offset on, and how many there are. A
// forbidden recipient's Code says which limit dropped it.
func (s *Store) Recipients(ctx context.Context, id, result string, offset, limit int64) ([]Forbidden, int64, error) {
	key := s.keys.Recipients(id, result)
	var l *redis.StringSliceCmd
	var n *redis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		n = p.LLen(ctx, key)
		l = p.LRange(ctx, key, offset, offset+limit-1)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("outcome: reading the %s recipients of %s: %w", result, id, err)
	}
	out := make([]Forbidden, len(l.Val()))
	for i, v := range l.Val() {
		if result == ResultForbidden {
			code, user, _ := strings.Cut(v, ":")
			out[i] = Forbidden{UserID: user, Code: code}
		} else {
			out[i] = Forbidden{UserID: v}
		}
	}
	return out, n.Val(), nil
}

// broadcastOf reads a broadcast's counters from its record's fields.
func broadcastOf(m map[string]string) *Broadcast {
	b := &Broadcast{
		Batches: BatchCounts{Total: atoi(m["b_total"]), Queued: atoi(m["b_queued"]), Sending: atoi(m["b_sending"]),
			Sent: atoi(m["b_sent"]), Failed: atoi(m["b_failed"]), Canceled: atoi(m["b_canceled"]), Paused: atoi(m["b_paused"])},
		Recipients: RecipientCounts{Total: atoi(m[fieldRecipients]), Duplicates: atoi(m["dups"]),
			Accepted: atoi(m["r_accepted"]), Rejected: atoi(m["r_rejected"]), Canceled: atoi(m["r_canceled"]),
			Resent: atoi(m["r_resent"])},
		Results: ResultCounts{PendingBatches: atoi(m["res_pending"]), Invalid: atoi(m["res_invalid"]),
			Failed: atoi(m["res_failed"]), Read: atoi(m["res_read"]), Unread: atoi(m["res_unread"]),
			Unknown: atoi(m["res_unknown"]), Delivered: atoi(m["res_delivered"]), Forbidden: map[string]int{}},
		FinishedAt: millis(m["finished_at"]),
		CanceledAt: millis(m["canceled_at"]),
	}
	b.Finished = !b.FinishedAt.IsZero()
	for k, v := range m {
		if code, ok := strings.CutPrefix(k, "res_forbidden:"); ok {
			b.Results.Forbidden[code] = atoi(v)
		}
	}
	if m["recalled"] != "" || m["recall_expired"] != "" {
		b.Recall = &RecallCounts{Recalled: atoi(m["recalled"]), Expired: atoi(m["recall_expired"])}
	}
	return b
}

// luaBroadcast is shared by the broadcast scripts: KEYS[1] is always the
// record. move shifts a batch's counter between states; settle marks the
// broadcast done (or finished, if canceled) once nothing is left to
// happen; touch stamps and keeps every key of the script for the retention.
const luaBroadcast = `
local P = KEYS[1]
local names = {q='queued', s='sending', S='sent', f='failed', c='canceled', p='paused'}
local function num(f) return tonumber(redis.call('HGET', P, f) or '0') end
local function move(from, to)
  if from == to then return end
  redis.call('HINCRBY', P, 'b_' .. names[from], -1)
  redis.call('HINCRBY', P, 'b_' .. names[to], 1)
end
local function settle(now)
  if num('b_queued') + num('b_sending') + num('b_paused') + num('res_pending') == 0 then
    if redis.call('HGET', P, 'status') ~= 'canceled' then redis.call('HSET', P, 'status', 'done') end
    redis.call('HSETNX', P, 'finished_at', now)
  end
end
local function touch(now, ret)
  redis.call('HSET', P, 'updated_at', now)
  for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ret) end
end
local function pushall(key, from, to)
  for j = from, to, 1000 do
    redis.call('RPUSH', key, unpack(ARGV, j, math.min(j + 999, to)))
  end
end
`

// beginBatchScript: KEYS record, batches, parked, parkgen, canceled list;
// ARGV now, retention, batch, recipient count, payload, SendingStale ms,
// "1" outside a worker (CancelBatch: cancel or leave alone, and keep the
// recipients for TakeUncounted) or "", ids…. A batch's field "<batch>@"
// holds when it last went sending.
var beginBatchScript = redis.NewScript(luaBroadcast + `
local st = redis.call('HGET', P, 'status')
if not st then return 'missing' end
local b = ARGV[3]
local cur = redis.call('HGET', KEYS[2], b) or 'q'
if cur == 'S' or cur == 'f' or cur == 'c' then return 'final' end
if cur == 's' and tonumber(ARGV[1]) - tonumber(redis.call('HGET', KEYS[2], b .. '@') or '0') < tonumber(ARGV[6]) then
  return 'busy'
end
if st == 'canceled' then
  move(cur, 'c')
  redis.call('HSET', KEYS[2], b, 'c')
  redis.call('HDEL', KEYS[3], b)
  redis.call('HINCRBY', P, 'r_canceled', tonumber(ARGV[4]))
  if ARGV[7] == '1' then redis.call('HINCRBY', P, '` + fieldUncounted + `', tonumber(ARGV[4])) end
  if #ARGV >= 8 then pushall(KEYS[5], 8, #ARGV) end
  settle(ARGV[1])
  touch(ARGV[1], ARGV[2])
  return 'canceled'
end
if ARGV[7] == '1' then return 'running' end
if st == 'paused' then
  move(cur, 'p')
  redis.call('HSET', KEYS[2], b, 'p')
  redis.call('HSET', KEYS[3], b, ARGV[5])
  redis.call('HINCRBY', KEYS[4], b, 1)
  touch(ARGV[1], ARGV[2])
  return 'paused'
end
move(cur, 's')
redis.call('HSET', KEYS[2], b, 's', b .. '@', ARGV[1])
if st == 'queued' then redis.call('HSET', P, 'status', 'sending') end
touch(ARGV[1], ARGV[2])
return 'go'`)

// endBatchScript: KEYS record, batches, tasks, rejected list; ARGV now,
// retention, batch, recipient count, new state (S f q), task_id, err code,
// sub code, class, message, claimant or "", ids…. "ok" if it ended the
// batch (or the same claimant did, and it changes nothing more), else the
// batch's state, unchanged. A batch's field "<batch>!" holds the claimant
// of its last end.
var endBatchScript = redis.NewScript(luaBroadcast + `
local b, to = ARGV[3], ARGV[5]
if ARGV[11] ~= '' and redis.call('HGET', KEYS[2], b .. '!') == ARGV[11] then return 'ok' end
local cur = redis.call('HGET', KEYS[2], b)
if cur ~= 's' then return cur or 'q' end
move('s', to)
redis.call('HSET', KEYS[2], b, to, b .. '!', ARGV[11])
if to == 'S' then
  redis.call('HINCRBY', P, 'r_accepted', tonumber(ARGV[4]))
  redis.call('HSET', KEYS[3], b, ARGV[6] .. ':' .. ARGV[1])
  redis.call('HINCRBY', P, 'res_pending', 1)
elseif to == 'f' then
  redis.call('HINCRBY', P, 'r_rejected', tonumber(ARGV[4]))
  if #ARGV >= 12 then pushall(KEYS[4], 12, #ARGV) end
end
if ARGV[9] ~= '' then
  redis.call('HSET', P, 'err_code', ARGV[7], 'err_sub_code', ARGV[8], 'err_class', ARGV[9], 'err_message', ARGV[10])
end
settle(ARGV[1])
touch(ARGV[1], ARGV[2])
return 'ok'`)

// recordResultsScript: KEYS record, results, batches, then the lists of
// resultLists; ARGV now, retention, batch, resend batch or ”, resend
// count, the seven lists' lengths, claimant or ”, the resend batch's
// payload or ”, then the lists' items. A batch's field "<batch>#" holds
// the payload of the re-send batch.
// The results hash holds, by batch, the claimant that recorded its
// results, or when.
var recordResultsScript = redis.NewScript(luaBroadcast + `
if redis.call('HGET', KEYS[3], ARGV[3]) ~= 'S' then return -1 end
local mark = ARGV[13]
if mark == '' then mark = ARGV[1] end
if redis.call('HSETNX', KEYS[2], ARGV[3], mark) == 0 then
  if ARGV[13] ~= '' and redis.call('HGET', KEYS[2], ARGV[3]) == ARGV[13] then return 1 end
  return 0
end
local names = {'invalid', 'forbidden', 'failed', 'read', 'unread', 'unknown', 'delivered'}
local i = 15
for k = 1, 7 do
  local n = tonumber(ARGV[5 + k])
  if n > 0 then
    pushall(KEYS[3 + k], i, i + n - 1)
    redis.call('HINCRBY', P, 'res_' .. names[k], n)
    if k == 2 then
      for j = i, i + n - 1 do
        local code = string.match(ARGV[j], '^([^:]*):')
        redis.call('HINCRBY', P, 'res_forbidden:' .. code, 1)
      end
      redis.call('HINCRBY', P, 'res_forbidden', -n)
    end
  end
  i = i + n
end
redis.call('HINCRBY', P, 'res_pending', -1)
if ARGV[4] ~= '' and redis.call('HSETNX', KEYS[3], ARGV[4], 'q') == 1 then
  if ARGV[14] ~= '' then redis.call('HSET', KEYS[3], ARGV[4] .. '#', ARGV[14]) end
  redis.call('HINCRBY', P, 'b_total', 1)
  redis.call('HINCRBY', P, 'b_queued', 1)
  redis.call('HINCRBY', P, 'r_resent', tonumber(ARGV[5]))
end
settle(ARGV[1])
touch(ARGV[1], ARGV[2])
return 1`)

// cancelScript: KEYS record; ARGV now, retention. A broadcast: "ok" (also
// if canceled already, changing nothing), or "done". A single message:
// "ok-single" if it was queued or retrying, else its status (a canceled
// one is final like any other).
var cancelScript = redis.NewScript(luaBroadcast + `
local st = redis.call('HGET', P, 'status')
if not st then return 'missing' end
if redis.call('HGET', P, 'kind') == 'broadcast' then
  if st == 'canceled' then return 'ok' end
  if st == 'done' then return st end
  redis.call('HSET', P, 'status', 'canceled', 'canceled_at', ARGV[1])
  settle(ARGV[1])
  touch(ARGV[1], ARGV[2])
  return 'ok'
end
if st == 'queued' or st == 'retrying' then
  redis.call('HSET', P, 'status', 'canceled')
  touch(ARGV[1], ARGV[2])
  return 'ok-single'
end
return st`)

// pauseScript: KEYS record; ARGV now, retention.
var pauseScript = redis.NewScript(luaBroadcast + `
local st = redis.call('HGET', P, 'status')
if not st then return 'missing' end
if redis.call('HGET', P, 'kind') ~= 'broadcast' then return 'single' end
if st == 'paused' then return 'ok' end
if st ~= 'queued' and st ~= 'sending' then return st end
redis.call('HSET', P, 'status', 'paused')
touch(ARGV[1], ARGV[2])
return 'ok'`)

// resumeScript: KEYS record, parked, parkgen; ARGV now, retention. Returns
// {verdict, {batch, payload, gen, …}}.
var resumeScript = redis.NewScript(luaBroadcast + `
local st = redis.call('HGET', P, 'status')
if not st then return {'missing', {}} end
if redis.call('HGET', P, 'kind') ~= 'broadcast' then return {'single', {}} end
if st == 'paused' then
  redis.call('HSET', P, 'status', 'sending')
  touch(ARGV[1], ARGV[2])
elseif st ~= 'queued' and st ~= 'sending' then
  return {st, {}}
end
local out = {}
local parked = redis.call('HGETALL', KEYS[2])
for i = 1, #parked, 2 do
  out[#out + 1] = parked[i]
  out[#out + 1] = parked[i + 1]
  out[#out + 1] = redis.call('HGET', KEYS[3], parked[i]) or '0'
end
return {'ok', out}`)

// unparkScript: KEYS record, batches, parked, parkgen; ARGV batch, gen.
var unparkScript = redis.NewScript(luaBroadcast + `
local b = ARGV[1]
if (redis.call('HGET', KEYS[4], b) or '0') ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[3], b)
if redis.call('HGET', KEYS[2], b) == 'p' then
  move('p', 'q')
  redis.call('HSET', KEYS[2], b, 'q')
end
return 1`)

// markRecalledScript: KEYS record, recalled; ARGV now, retention, batch,
// counter field.
var markRecalledScript = redis.NewScript(luaBroadcast + `
if redis.call('HSETNX', KEYS[2], ARGV[3], ARGV[4]) == 0 then return 0 end
redis.call('HINCRBY', P, ARGV[4], 1)
touch(ARGV[1], ARGV[2])
return 1`)
