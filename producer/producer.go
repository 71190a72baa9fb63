package producer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/internal/outcome"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// DefaultMaxRetry is how many times a failed send is retried when the
// configuration says nothing. Throttling does not count as a failure.
const DefaultMaxRetry = 25

// MaxIdempotencyKeyLen bounds an idempotency key.
const MaxIdempotencyKeyLen = 255

// ErrIdempotencyConflict is returned by Send when an idempotency key already
// stands for a different message.
var ErrIdempotencyConflict = errors.New("producer: idempotency key already used for a different message")

// Message is a work notification to send: to whom, what, as which app. It is
// also the JSON body of dingq's POST /v1/messages.
type Message struct {
	// App names a configured DingTalk app (dingtalk.apps[].name).
	App string `json:"app"`
	// UserIDs, DeptIDs and ToAllUser say who gets the message; give at
	// least one.
	UserIDs   []string `json:"userid_list,omitempty"`
	DeptIDs   []string `json:"dept_id_list,omitempty"`
	ToAllUser bool     `json:"to_all_user,omitempty"`
	// Msg is the message itself.
	Msg dingtalk.Message `json:"msg"`
	// IdempotencyKey, if set, makes Send return the first message's id for
	// every later Send with the same app and key, without enqueueing again,
	// for as long as the outcome is kept.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// SendAt, if set and in the future, delays the send until then.
	SendAt time.Time `json:"send_at,omitzero"`
	// Priority picks the queue lane: PriorityCritical, PriorityDefault (if
	// empty) or PriorityBulk. Workers take critical work six times as
	// often as bulk work, and default three times, so a large broadcast
	// sent as bulk cannot starve single notifications.
	Priority Priority `json:"priority,omitempty"`
	// Coalesce opts in to merging: sent to at most 100 users and no
	// departments, due now, the message may wait a short while (the
	// workers' coalesce window) to go out in one asyncsend_v2 call with
	// other messages of the same app and content, each keeping its own id
	// and outcome. Config.CoalesceApps opts in whole apps.
	Coalesce bool `json:"coalesce,omitempty"`
}

// Priority is a message's queue lane.
type Priority string

// The priorities and the queues they map to.
const (
	PriorityCritical Priority = "critical"
	PriorityDefault  Priority = "default"
	PriorityBulk     Priority = "bulk"
)

// Queue returns the asynq queue of priority p; "" is PriorityDefault.
func (p Priority) Queue() (string, bool) {
	switch p {
	case PriorityCritical:
		return QueueCritical, true
	case PriorityDefault, "":
		return QueueDefault, true
	case PriorityBulk:
		return QueueBulk, true
	}
	return "", false
}

var (
	idempotencyKeyRE = regexp.MustCompile(`^[\x21-\x7e]+$`)
	// appNameRE is the rule of dingtalk.apps[].name; it keeps app names out
	// of the way of the ':' in Redis keys.
	appNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
)

// Validate reports the first problem in m as a *dingtalk.ValidationError
// naming the field ("app", "userid_list", "msg.text.content"…). It does not
// know which apps are configured; Send checks that.
func (m *Message) Validate() error {
	if m.App == "" {
		return &dingtalk.ValidationError{Field: "app", Reason: "required: the name of a configured app"}
	}
	if !appNameRE.MatchString(m.App) {
		return &dingtalk.ValidationError{Field: "app", Reason: fmt.Sprintf("unknown app %q: app names are 1-64 of a-z 0-9 _ -", m.App)}
	}
	if err := validateRecipients(m.UserIDs, m.DeptIDs, m.ToAllUser, MaxRecipientsLimit); err != nil {
		return err
	}
	if err := m.Msg.Validate(); err != nil {
		var ve *dingtalk.ValidationError
		if errors.As(err, &ve) {
			return &dingtalk.ValidationError{Field: "msg." + ve.Field, Reason: ve.Reason}
		}
		return err
	}
	return validateOptions(m.Priority, m.IdempotencyKey)
}

// validateOptions checks what every kind of message may add: its lane and
// its idempotency key.
func validateOptions(prio Priority, key string) error {
	if _, ok := prio.Queue(); !ok {
		return &dingtalk.ValidationError{Field: "priority",
			Reason: fmt.Sprintf("unknown priority %q: critical, default or bulk", prio)}
	}
	if key != "" && (len(key) > MaxIdempotencyKeyLen || !idempotencyKeyRE.MatchString(key)) {
		return &dingtalk.ValidationError{Field: "idempotency_key",
			Reason: fmt.Sprintf("at most %d printable ASCII characters without spaces", MaxIdempotencyKeyLen)}
	}
	return nil
}

// Config configures a Producer.
type Config struct {
	// Redis is the connection to the Redis that holds dingq's queues and
	// outcomes. Required. The producer does not close it.
	Redis redis.UniversalClient
	// KeyPrefix starts every key dingq writes. If empty, "dingq".
	KeyPrefix string
	// Retention is how long outcomes are kept after their last change. If
	// zero, 7 days.
	Retention time.Duration
	// Apps, if not empty, lists the app names Send accepts; others are
	// refused at once. If empty, every name is accepted and a worker that
	// does not know it fails the message.
	Apps []string
	// MaxRetry is how many failed attempts a message gets. If zero,
	// DefaultMaxRetry.
	MaxRetry int
	// MaxRecipients caps the user ids plus department ids of one message.
	// If zero, DefaultMaxRecipients.
	MaxRecipients int
	// CancelWait is how long Cancel waits for a broadcast's batches being
	// sent at that moment. If zero, DefaultCancelWait.
	CancelWait time.Duration
	// CoalesceApps lists the apps whose messages coalesce as if each set
	// Message.Coalesce.
	CoalesceApps []string
	// Robots are the robots SendRobot accepts, by name; it refuses others.
	Robots map[string]Robot
}

// Producer hands messages to dingq. It is safe for concurrent use.
type Producer struct {
	client        *asynq.Client
	inspector     *asynq.Inspector
	store         *outcome.Store
	apps          []string
	maxRetry      int
	maxRecipients int
	cancelWait    time.Duration
	coalesceApps  []string
	robots        map[string]Robot
	now           func() time.Time
}

// New returns a producer on cfg.Redis.
func New(cfg Config) (*Producer, error) {
	if cfg.Redis == nil {
		return nil, errors.New("producer: Config.Redis is required")
	}
	if cfg.MaxRetry < 0 {
		return nil, fmt.Errorf("producer: Config.MaxRetry must be >= 0, got %d", cfg.MaxRetry)
	}
	if cfg.MaxRetry == 0 {
		cfg.MaxRetry = DefaultMaxRetry
	}
	if cfg.MaxRecipients < 0 || cfg.MaxRecipients > MaxRecipientsLimit {
		return nil, fmt.Errorf("producer: Config.MaxRecipients must be 0 to %d, got %d", MaxRecipientsLimit, cfg.MaxRecipients)
	}
	if cfg.MaxRecipients == 0 {
		cfg.MaxRecipients = DefaultMaxRecipients
	}
	if cfg.CancelWait <= 0 {
		cfg.CancelWait = DefaultCancelWait
	}
	return &Producer{
		client:        asynq.NewClientFromRedisClient(cfg.Redis),
		inspector:     asynq.NewInspectorFromRedisClient(cfg.Redis),
		store:         outcome.NewStore(cfg.Redis, cfg.KeyPrefix, cfg.Retention),
		apps:          slices.Clone(cfg.Apps),
		maxRetry:      cfg.MaxRetry,
		maxRecipients: cfg.MaxRecipients,
		cancelWait:    cfg.CancelWait,
		coalesceApps:  slices.Clone(cfg.CoalesceApps),
		robots:        maps.Clone(cfg.Robots),
		now:           time.Now,
	}, nil
}

// Send validates m, records it as queued and enqueues it, and returns its
// id. It returns once the message is safely in Redis, without waiting for
// DingTalk. A message with an IdempotencyKey already used for the same app
// returns the first message's id and enqueues nothing, or
// ErrIdempotencyConflict if that key stood for a different message. A
// message to more recipients than one call takes is a broadcast: see
// Enqueue.
func (p *Producer) Send(ctx context.Context, m *Message) (string, error) {
	a, err := p.Enqueue(ctx, m)
	if err != nil {
		return "", err
	}
	return a.ID, nil
}

// Accepted describes a message Enqueue accepted.
type Accepted struct {
	ID     string `json:"id"`
	Status Status `json:"status"`
	// Recipients counts the distinct user and department ids.
	Recipients int `json:"recipients"`
	// Duplicates counts the ids the message repeated; each is sent once.
	Duplicates int `json:"duplicates,omitempty"`
	// Batches is how many DingTalk calls a broadcast is split into; zero
	// for a message sent in one call.
	Batches int `json:"batches,omitempty"`
	// Coalesced is true for a message that waits to be merged with others
	// of the same app and content (Message.Coalesce).
	Coalesced bool `json:"coalesced,omitempty"`
}

// EnqueueOption changes how Enqueue works.
type EnqueueOption func(*enqueueOptions)

type enqueueOptions struct {
	progress func(done, total int)
}

// WithProgress has Enqueue call f as a broadcast's batches are enqueued,
// with how many are done of how many; f must be safe for concurrent use.
func WithProgress(f func(done, total int)) EnqueueOption {
	return func(o *enqueueOptions) { o.progress = f }
}

// Enqueue is Send, telling more of what it accepted. Duplicate ids are
// sent once. A message to more than 100 users or 20 departments is a
// broadcast: it is split into batches of 100 users (or 20 departments),
// each its own task on the message's lane (bulk if none is given), and its
// record counts the batches and, later, what DingTalk said of each
// recipient. Validation happens before anything is written.
func (p *Producer) Enqueue(ctx context.Context, m *Message, opts ...EnqueueOption) (*Accepted, error) {
	var o enqueueOptions
	for _, opt := range opts {
		opt(&o)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if n := len(m.UserIDs) + len(m.DeptIDs); n > p.maxRecipients {
		return nil, &dingtalk.ValidationError{Field: "userid_list",
			Reason: fmt.Sprintf("%d user and department ids, at most %d in one message", n, p.maxRecipients)}
	}
	if len(p.apps) > 0 && !slices.Contains(p.apps, m.App) {
		return nil, &dingtalk.ValidationError{Field: "app", Reason: fmt.Sprintf("unknown app %q", m.App)}
	}
	users, du := dedupe(m.UserIDs)
	depts, dd := dedupe(m.DeptIDs)
	if len(users) > dingtalk.MaxUserIDs || len(depts) > dingtalk.MaxDeptIDs {
		return p.broadcast(ctx, m, users, depts, du+dd, o)
	}
	payload := &MessageSendPayload{App: m.App, UserIDs: users, DeptIDs: depts,
		ToAllUser: m.ToAllUser, Msg: m.Msg}
	group, err := p.coalesceGroup(m, payload)
	if err != nil {
		return nil, err
	}
	id, err := p.sendOne(ctx, m, payload, group)
	if err != nil {
		return nil, err
	}
	return &Accepted{ID: id, Status: StatusQueued, Recipients: len(users) + len(depts), Duplicates: du + dd,
		Coalesced: group != ""}, nil
}

// sendOne records and enqueues a message sent in one call; group, if not
// empty, is the asynq group its task waits in to be coalesced.
func (p *Producer) sendOne(ctx context.Context, m *Message, payload *MessageSendPayload, group string) (string, error) {
	// The fingerprint only serves to tell a repeated idempotency key from a
	// reused one: skip the encoding and hashing when there is no key.
	var fp string
	if m.IdempotencyKey != "" {
		var err error
		if fp, err = fingerprint(payload, m.SendAt); err != nil {
			return "", err
		}
	}
	rec := &outcome.Outcome{App: m.App, Recipients: len(payload.UserIDs) + len(payload.DeptIDs), SendAt: m.SendAt}
	return p.acceptOne(ctx, rec, m.App, m.IdempotencyKey, fp, func(ctx context.Context, id string) error {
		payload.ID = id
		return p.enqueue(ctx, payload, m.SendAt, m.Priority, group)
	})
}

// acceptOne records rec (its ID set here) and enqueues its one task with
// enqueue. An idempotency key (unique within scope) already used returns
// the first id, and enqueues only if the first call was cut short before
// its task reached the queue; fp tells the same message from another.
func (p *Producer) acceptOne(ctx context.Context, rec *outcome.Outcome, scope, key, fp string, enqueue func(ctx context.Context, id string) error) (string, error) {
	id, err := newID()
	if err != nil {
		return "", err
	}
	if key != "" {
		var existed bool
		id, existed, err = p.store.Reserve(ctx, scope, key, id)
		if err != nil {
			return "", err
		}
		if existed {
			return p.resume(ctx, id, fp, rec, enqueue)
		}
	}
	rec.ID = id
	if _, err := p.store.Create(ctx, rec, fp); err != nil {
		return "", err
	}
	if err := enqueue(ctx, id); err != nil {
		if key == "" {
			// Nobody can ask for this id again: don't leave a record that
			// says queued for a message that is not.
			_ = p.store.Delete(context.WithoutCancel(ctx), id)
		}
		return "", err
	}
	if key != "" {
		// A repeated key must not queue it again once its task is in the
		// queue: a coalesced task loses its id when asynq merges it, so the
		// id alone cannot refuse a second one.
		if err := p.store.SetEnqueued(ctx, id); err != nil {
			return "", err
		}
	}
	return id, nil
}

// resume handles a repeated idempotency key: the same message gets its
// first id back, and is enqueued only if the first call was cut short
// before its task reached the queue.
func (p *Producer) resume(ctx context.Context, id, fp string, rec *outcome.Outcome, enqueue func(ctx context.Context, id string) error) (string, error) {
	prev, err := p.store.Fingerprint(ctx, id)
	switch {
	case errors.Is(err, outcome.ErrNotFound):
		// The first call reserved the key and stopped before recording.
	case err != nil:
		return "", err
	case prev != fp:
		return "", ErrIdempotencyConflict
	}
	rec.ID = id
	if _, err := p.store.Create(ctx, rec, fp); err != nil {
		return "", err
	}
	o, err := p.store.Get(ctx, id)
	if err != nil {
		return "", err
	}
	if o.Status != outcome.StatusQueued {
		// A worker has taken it: it is in the queue or done.
		return id, nil
	}
	if done, err := p.store.Enqueued(ctx, id); err != nil || done {
		return id, err
	}
	// Queued and not marked enqueued: the first call stopped before (or
	// just after) enqueueing it; a task still in asynq makes this a TaskID
	// conflict, nothing added.
	if err := enqueue(ctx, id); err != nil {
		return "", err
	}
	return id, p.store.SetEnqueued(ctx, id)
}

func (p *Producer) enqueue(ctx context.Context, payload *MessageSendPayload, sendAt time.Time, prio Priority, group string) error {
	queue, _ := prio.Queue() // Validate refused any other
	opts := []asynq.Option{asynq.Queue(queue), asynq.MaxRetry(p.maxRetry)}
	if at, ok := p.processAt(sendAt); ok {
		opts = append(opts, asynq.ProcessAt(at))
	}
	if group != "" {
		opts = append(opts, asynq.Group(group))
	}
	task, err := NewMessageSendTask(payload, opts...)
	if err != nil {
		return err
	}
	_, err = p.client.EnqueueContext(ctx, task)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("producer: enqueueing message %s: %w", payload.ID, err)
	}
	return nil
}

// Status returns what became of message id, or ErrNotFound.
func (p *Producer) Status(ctx context.Context, id string) (*Outcome, error) {
	return p.store.Get(ctx, id)
}

// Ping reports whether Redis answers.
func (p *Producer) Ping() error { return p.client.Ping() }

// Close releases the producer. It does not close Config.Redis.
func (p *Producer) Close() error { return nil }

func newID() (string, error) {
	u, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("producer: making a message id: %w", err)
	}
	return u.String(), nil
}

func fingerprint(p *MessageSendPayload, sendAt time.Time) (string, error) {
	b, err := json.Marshal(struct {
		P      *MessageSendPayload `json:"p"`
		SendAt int64               `json:"s"`
	}{p, sendAt.UnixMilli()})
	if err != nil {
		return "", fmt.Errorf("producer: encoding message: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16]), nil
}
