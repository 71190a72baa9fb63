package outcome

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRetention is how long a record is kept after its last change when
// no retention is given.
const DefaultRetention = 7 * 24 * time.Hour

// ErrNotFound is returned for an id with no record: never accepted, or
// older than the retention.
var ErrNotFound = errors.New("outcome: not found")

// ErrTerminal is returned by a transition refused because the record is
// already final; errors.As gives the *TerminalError with the status.
var ErrTerminal = errors.New("outcome: already final")

// TerminalError says a transition was refused because the record had
// already reached Status.
type TerminalError struct{ Status Status }

// Error implements error.
func (e *TerminalError) Error() string { return "outcome: already " + string(e.Status) }

// Is makes errors.Is(err, ErrTerminal) true.
func (e *TerminalError) Is(target error) bool { return target == ErrTerminal }

// Store keeps outcomes in Redis. It is safe for concurrent use.
type Store struct {
	rdb       redis.UniversalClient
	keys      Keys
	retention time.Duration
	now       func() time.Time
}

// NewStore returns a store on rdb whose keys start with prefix (default
// "dingq") and live for retention after their last change (if zero,
// DefaultRetention).
func NewStore(rdb redis.UniversalClient, prefix string, retention time.Duration) *Store {
	if retention <= 0 {
		retention = DefaultRetention
	}
	return &Store{rdb: rdb, keys: NewKeys(prefix), retention: retention, now: time.Now}
}

// SetClock replaces the store's clock (tests).
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// Keys returns the store's key names.
func (s *Store) Keys() Keys { return s.keys }

// Reserve binds an idempotency key of app to id, unless the key is bound
// already: then it returns the id bound first and existed true. The binding
// lives for the retention from its first use.
func (s *Store) Reserve(ctx context.Context, app, idempotencyKey, id string) (string, bool, error) {
	key := s.keys.Idempotency(app, idempotencyKey)
	ok, err := s.rdb.SetNX(ctx, key, id, s.retention).Result()
	if err != nil {
		return "", false, fmt.Errorf("outcome: reserving idempotency key: %w", err)
	}
	if ok {
		return id, false, nil
	}
	prev, err := s.rdb.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		// Expired between the two calls: take it now.
		return s.Reserve(ctx, app, idempotencyKey, id)
	}
	if err != nil {
		return "", false, fmt.Errorf("outcome: reading idempotency key: %w", err)
	}
	return prev, true, nil
}

// Create writes a new record in status queued with the fingerprint of the
// message it stands for. It returns false if a record with that id exists.
func (s *Store) Create(ctx context.Context, o *Outcome, fingerprint string) (bool, error) {
	return s.create(ctx, o, fingerprint)
}

// create writes a new record with extra field/value pairs.
func (s *Store) create(ctx context.Context, o *Outcome, fingerprint string, extra ...any) (bool, error) {
	now := s.now()
	args := []any{s.retention.Milliseconds(),
		fieldStatus, string(StatusQueued),
		fieldApp, o.App,
		fieldRecipients, o.Recipients,
		fieldCreated, now.UnixMilli(),
		fieldUpdated, now.UnixMilli(),
		fieldAttempts, 0,
		fieldFingerprint, fingerprint,
	}
	if !o.SendAt.IsZero() {
		args = append(args, fieldSendAt, o.SendAt.UnixMilli())
	}
	if o.Robot != "" {
		args = append(args, fieldRobot, o.Robot)
	}
	if o.Kind != "" {
		args = append(args, fieldKind, o.Kind)
	}
	args = append(args, extra...)
	n, err := createScript.Run(ctx, s.rdb, []string{s.keys.Outcome(o.ID)}, args...).Int()
	if err != nil {
		return false, fmt.Errorf("outcome: creating %s: %w", o.ID, err)
	}
	return n == 1, nil
}

// CreateKind is Create for a task of another kind than a message
// ("session.create", "callback.register"…).
func (s *Store) CreateKind(ctx context.Context, o *Outcome, kind string) (bool, error) {
	return s.create(ctx, o, "", fieldKind, kind)
}

// Fingerprint returns the fingerprint recorded with id by Create.
func (s *Store) Fingerprint(ctx context.Context, id string) (string, error) {
	fp, err := s.rdb.HGet(ctx, s.keys.Outcome(id), fieldFingerprint).Result()
	if errors.Is(err, redis.Nil) {
		return "", ErrNotFound
	}
	return fp, err
}

// Delete removes a record and its history (used when an accepted message
// could not be enqueued at all).
func (s *Store) Delete(ctx context.Context, id string) error {
	keys := []string{s.keys.Outcome(id), s.keys.History(id), s.keys.Batches(id), s.keys.Tasks(id),
		s.keys.Results(id), s.keys.Parked(id), s.keys.ParkGen(id), s.keys.Recalled(id)}
	for _, r := range RecipientResults {
		keys = append(keys, s.keys.Recipients(id, r))
	}
	return s.rdb.Del(ctx, keys...).Err()
}

// Get returns the record of id, with its history, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*Outcome, error) {
	var h *redis.MapStringStringCmd
	var l *redis.StringSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		h = p.HGetAll(ctx, s.keys.Outcome(id))
		l = p.LRange(ctx, s.keys.History(id), 0, -1)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("outcome: reading %s: %w", id, err)
	}
	m := h.Val()
	if len(m) == 0 {
		return nil, ErrNotFound
	}
	o := &Outcome{
		ID:         id,
		App:        m[fieldApp],
		Robot:      m[fieldRobot],
		Status:     Status(m[fieldStatus]),
		RequestID:  m[fieldRequestID],
		Attempts:   atoi(m[fieldAttempts]),
		Recipients: atoi(m[fieldRecipients]),
		CreatedAt:  millis(m[fieldCreated]),
		UpdatedAt:  millis(m[fieldUpdated]),
		SendAt:     millis(m[fieldSendAt]),
	}
	o.TaskID, _ = strconv.ParseInt(m[fieldTaskID], 10, 64)
	if r := m[fieldResult]; r != "" {
		o.Result = json.RawMessage(r)
	}
	o.Kind = m[fieldKind]
	if m["kind"] == KindBroadcast {
		o.Broadcast = broadcastOf(m)
	} else {
		o.Recalled = m["recalled"] != ""
	}
	if m[fieldErrClass] != "" {
		o.LastError = &ErrorInfo{Code: atoi(m[fieldErrCode]), SubCode: m[fieldErrSubCode],
			Class: m[fieldErrClass], Message: m[fieldErrMessage]}
	}
	for _, raw := range l.Val() {
		var a Attempt
		if json.Unmarshal([]byte(raw), &a) == nil {
			o.History = append(o.History, a)
		}
	}
	return o, nil
}

// Transition is one change of a record.
type Transition struct {
	// To is the new status.
	To Status
	// NewAttempt counts a call to DingTalk: Attempts grows by one.
	NewAttempt bool
	// TaskID and RequestID are DingTalk's, when it accepted the message.
	TaskID    int64
	RequestID string
	// Err is the error of the attempt, if any; it becomes LastError.
	Err *ErrorInfo
	// Attempt, when set, is appended to the history. Its At is set by the
	// store if zero.
	Attempt *Attempt
	// Result, if set, is what DingTalk answered (a session task's result).
	Result json.RawMessage
	// Via, if set, binds the message to the way it is sent (a robot's
	// webhook), so that a retry goes the same way; see StatusVia.
	Via string
}

// StatusVia is Status, and the Via the record was last bound to ("" if
// none), in one read.
func (s *Store) StatusVia(ctx context.Context, id string) (Status, string, error) {
	v, err := s.rdb.HMGet(ctx, s.keys.Outcome(id), fieldStatus, fieldVia).Result()
	if err != nil {
		return "", "", fmt.Errorf("outcome: reading %s: %w", id, err)
	}
	st, _ := v[0].(string)
	if st == "" {
		return "", "", ErrNotFound
	}
	via, _ := v[1].(string)
	return Status(st), via, nil
}

// SetVia binds record id to via (see Transition.Via), if it exists.
func (s *Store) SetVia(ctx context.Context, id, via string) error {
	return s.rdb.Eval(ctx, `if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 0`, []string{s.keys.Outcome(id)}, fieldVia, via).Err()
}

// Status returns the status of id's record, or ErrNotFound: one read, for
// a worker checking a message before it spends DingTalk's budget on it.
func (s *Store) Status(ctx context.Context, id string) (Status, error) {
	v, err := s.rdb.HGet(ctx, s.keys.Outcome(id), fieldStatus).Result()
	if errors.Is(err, redis.Nil) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("outcome: reading %s: %w", id, err)
	}
	return Status(v), nil
}

// Apply moves the record of id to t.To. It refuses, with a *TerminalError,
// a record that is already terminal, and returns ErrNotFound for a missing
// one. It returns the attempt count after the change.
func (s *Store) Apply(ctx context.Context, id string, t Transition) (int, error) {
	keys, args, err := s.applyArgs(id, t)
	if err != nil {
		return 0, err
	}
	res, err := applyScript.Run(ctx, s.rdb, keys, args...).Result()
	return applyAnswer(id, t, res, err)
}

// ErrNotClaimed wraps the error of a claim of ApplyAndClaim whose
// transition was applied (or found the record final): the record is
// written, only whether its finish was counted is not known.
var ErrNotClaimed = errors.New("outcome: finish not claimed")

// ApplyAndClaim is Apply, then ClaimFinished(id, claimant), in one round
// trip: for a transition that may make the record final, by a caller that
// counts finishes. It returns Apply's answer; the claim's is meaningful
// when Apply succeeded or found the record final (a *TerminalError). A
// claim that failed after the transition was applied answers an error
// wrapping ErrNotClaimed; made again with the same claimant, it is safe.
func (s *Store) ApplyAndClaim(ctx context.Context, id string, t Transition, claimant string) (int, Status, bool, error) {
	keys, args, err := s.applyArgs(id, t)
	if err != nil {
		return 0, "", false, err
	}
	pipe := s.rdb.Pipeline()
	applied := pipe.EvalSha(ctx, applyScript.Hash(), keys, args...)
	claimed := pipe.EvalSha(ctx, claimFinishedScript.Hash(), []string{s.keys.Outcome(id)}, claimant)
	_, _ = pipe.Exec(ctx) // each command's error is its own
	if isNoScript(applied.Err()) {
		// Redis lost its scripts (a restart): neither ran as meant, but
		// a claim is the same claimant's when made again.
		n, err := s.Apply(ctx, id, t)
		if err != nil && !errors.Is(err, ErrTerminal) {
			return n, "", false, err
		}
		st, ok, cerr := s.ClaimFinished(ctx, id, claimant)
		if cerr != nil {
			return n, "", false, fmt.Errorf("%w: %w", ErrNotClaimed, cerr)
		}
		return n, st, ok, err
	}
	n, err := applyAnswer(id, t, applied.Val(), applied.Err())
	if err != nil && !errors.Is(err, ErrTerminal) {
		return n, "", false, err
	}
	var v string
	if cerr := claimed.Err(); isNoScript(cerr) {
		st, ok, cerr := s.ClaimFinished(ctx, id, claimant)
		if cerr != nil {
			return n, "", false, fmt.Errorf("%w: %w", ErrNotClaimed, cerr)
		}
		return n, st, ok, err
	} else if cerr != nil {
		return n, "", false, fmt.Errorf("%w: %s: %w", ErrNotClaimed, id, cerr)
	} else if v, _ = claimed.Val().(string); v == "" {
		return n, "", false, err
	}
	return n, Status(v), true, err
}

// isNoScript reports whether err is Redis's answer to EVALSHA of a script
// it does not hold.
func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// applyArgs are the keys and arguments of applyScript for t on record id.
func (s *Store) applyArgs(id string, t Transition) ([]string, []any, error) {
	now := s.now()
	hist := ""
	if t.Attempt != nil {
		a := *t.Attempt
		if a.At.IsZero() {
			a.At = now
		}
		b, err := json.Marshal(a)
		if err != nil {
			return nil, nil, err
		}
		hist = string(b)
	}
	incr := 0
	if t.NewAttempt {
		incr = 1
	}
	args := []any{s.retention.Milliseconds(), incr, hist, MaxHistory,
		fieldStatus, string(t.To), fieldUpdated, now.UnixMilli()}
	if t.TaskID != 0 {
		args = append(args, fieldTaskID, t.TaskID)
	}
	if t.RequestID != "" {
		args = append(args, fieldRequestID, t.RequestID)
	}
	if len(t.Result) > 0 {
		args = append(args, fieldResult, string(t.Result))
	}
	if t.Via != "" {
		args = append(args, fieldVia, t.Via)
	}
	if t.Err != nil {
		args = append(args, fieldErrCode, t.Err.Code, fieldErrSubCode, t.Err.SubCode,
			fieldErrClass, t.Err.Class, fieldErrMessage, t.Err.Message)
	}
	return []string{s.keys.Outcome(id), s.keys.History(id)}, args, nil
}

// applyAnswer reads applyScript's answer res (or err) to t on record id.
func applyAnswer(id string, t Transition, res any, err error) (int, error) {
	if err != nil {
		return 0, fmt.Errorf("outcome: updating %s to %s: %w", id, t.To, err)
	}
	switch v := res.(type) {
	case int64:
		if v < 0 {
			return 0, ErrNotFound
		}
		return int(v), nil
	case string:
		return 0, &TerminalError{Status: Status(v)}
	}
	return 0, fmt.Errorf("outcome: updating %s: unexpected answer %v", id, res)
}

// Hash fields of a record.
const (
	fieldStatus      = "status"
	fieldApp         = "app"
	fieldTaskID      = "task_id"
	fieldRequestID   = "request_id"
	fieldAttempts    = "attempts"
	fieldRecipients  = "recipients"
	fieldCreated     = "created_at"
	fieldUpdated     = "updated_at"
	fieldSendAt      = "send_at"
	fieldFingerprint = "fingerprint"
	fieldResult      = "result"
	fieldKind        = "kind"
	fieldRobot       = "robot"
	fieldVia         = "via"
	fieldErrCode     = "err_code"
	fieldErrSubCode  = "err_sub_code"
	fieldErrClass    = "err_class"
	fieldErrMessage  = "err_message"
)

// createScript: KEYS[1] record; ARGV[1] retention ms, ARGV[2..] field/value
// pairs. 1 if created, 0 if it existed.
var createScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`)

// applyScript: KEYS[1] record, KEYS[2] history; ARGV[1] retention ms,
// ARGV[2] 1 to count an attempt, ARGV[3] history entry or "", ARGV[4] max
// history, ARGV[5..] field/value pairs. Returns the attempt count, -1 for a
// missing record, or the terminal status that refused the change.
var applyScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return -1 end
if cur == 'sent' or cur == 'failed' or cur == 'canceled' or cur == 'done' then return cur end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
local n
if ARGV[2] == '1' then
  n = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
else
  n = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
end
if ARGV[3] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[3])
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[4]), -1)
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return n`)

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func millis(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}
