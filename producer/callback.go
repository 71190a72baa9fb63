package producer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/internal/outcome"
	"github.com/hibiken/asynq"
)

// Task types of callbacks and sessions.
const (
	// TypeCallbackEvent delivers one event DingTalk pushed to the sinks.
	TypeCallbackEvent = "dingtalk:callback:event"
	// TypeCallbackAdmin registers, updates, reads or deletes an app's
	// callback at DingTalk.
	TypeCallbackAdmin = "dingtalk:callback:admin"
	// TypeCallbackFailed pulls the events DingTalk failed to push
	// (get_call_back_failed_result) into the same path as pushed ones.
	TypeCallbackFailed = "dingtalk:callback:failed"
	// TypeSession gets, creates or closes a session (seed 001).
	TypeSession = "dingtalk:session"
)

// EventRetention is how long a received event's task is kept after it
// was handled, so that DingTalk's re-pushes of it within that time are
// recognised and handled once.
const EventRetention = 24 * time.Hour

// CallbackEventPayload is the payload of a TypeCallbackEvent task.
type CallbackEventPayload struct {
	// Receiver names the callback receiver that took it ("" for the
	// default one).
	Receiver string `json:"receiver,omitempty"`
	// Type is the event's EventType.
	Type string `json:"type"`
	// Event is the decrypted event, as DingTalk sent it.
	Event      json.RawMessage `json:"event"`
	ReceivedAt time.Time       `json:"received_at"`
}

// EventType reads an event's type: its EventType (legacy) or eventType
// field; "" if it has none.
func EventType(event []byte) string {
	var e struct {
		Legacy string `json:"EventType"`
		Type   string `json:"eventType"`
	}
	if json.Unmarshal(event, &e) != nil {
		return ""
	}
	if e.Legacy != "" {
		return e.Legacy
	}
	return e.Type
}

// EnqueueEvent queues an event a callback receiver decrypted, once: the
// task's id is a hash of the receiver and the event, kept
// EventRetention after it is handled, so an event DingTalk pushes again
// is not queued twice (dup true). An event whose earlier task was
// archived (its sinks failed until its retries ran out) is queued again.
// It returns once the task is in Redis.
func (p *Producer) EnqueueEvent(ctx context.Context, receiver string, event []byte) (id string, dup bool, err error) {
	return p.EnqueueEventOfType(ctx, receiver, EventType(event), event)
}

// EnqueueEventOfType is EnqueueEvent for an event whose type is known
// apart from it (get_call_back_failed_result names it beside the event).
func (p *Producer) EnqueueEventOfType(ctx context.Context, receiver, typ string, event []byte) (id string, dup bool, err error) {
	sum := sha256.Sum256(append([]byte(receiver+"\x00"), event...))
	id = "event:" + hex.EncodeToString(sum[:16])
	b, err := json.Marshal(CallbackEventPayload{Receiver: receiver, Type: typ, Event: event, ReceivedAt: p.now().UTC()})
	if err != nil {
		return "", false, fmt.Errorf("producer: encoding an event: %w", err)
	}
	t := asynq.NewTask(TypeCallbackEvent, b, asynq.TaskID(id), asynq.Queue(QueueCritical),
		asynq.MaxRetry(p.maxRetry), asynq.Retention(EventRetention))
	for try := 0; ; try++ {
		_, err = p.client.EnqueueContext(ctx, t)
		if !errors.Is(err, asynq.ErrTaskIDConflict) {
			break
		}
		info, ierr := p.inspector.GetTaskInfo(QueueCritical, id)
		if ierr != nil || info.State != asynq.TaskStateArchived || try > 0 {
			return id, true, nil // pending, running, or handled: the same event
		}
		// Archived: the sinks gave up on it; this push gets another go.
		if derr := p.inspector.DeleteTask(QueueCritical, id); derr != nil {
			return "", false, fmt.Errorf("producer: re-queueing an archived event: %w", derr)
		}
	}
	if err != nil {
		return "", false, fmt.Errorf("producer: enqueueing an event: %w", err)
	}
	return id, false, nil
}

// Session is a session task of seed 001: get an app user's session,
// create one, or close one. It is also the JSON body of POST /v1/sessions.
type Session struct {
	App string `json:"app"`
	// Action is "get" (needs userid), "create" (userid; chatid may be
	// empty; without a session_id DingTalk makes one, and the outcome's
	// result names it) or "close" (session_id).
	Action    string `json:"action"`
	UserID    string `json:"userid,omitempty"`
	SessionID string `json:"session_id,omitempty"`
	ChatID    string `json:"chatid,omitempty"`
}

// Session actions.
const (
	SessionGet    = "get"
	SessionCreate = "create"
	SessionClose  = "close"
)

// Validate reports the first field of s that cannot work.
func (s *Session) Validate() error {
	field := func(name, v string) error {
		if v == "" {
			return &dingtalk.ValidationError{Field: name, Reason: "required for action " + s.Action}
		}
		if len(v) > 128 {
			return &dingtalk.ValidationError{Field: name, Reason: "at most 128 bytes"}
		}
		return nil
	}
	switch {
	case s.App == "":
		return &dingtalk.ValidationError{Field: "app", Reason: "required: the name of a configured app"}
	case !appNameRE.MatchString(s.App):
		return &dingtalk.ValidationError{Field: "app", Reason: fmt.Sprintf("unknown app %q", s.App)}
	}
	switch s.Action {
	case SessionGet:
		return field("userid", s.UserID)
	case SessionCreate:
		return field("userid", s.UserID) // chatid may be empty, as in the seed
	case SessionClose:
		return field("session_id", s.SessionID)
	}
	return &dingtalk.ValidationError{Field: "action", Reason: fmt.Sprintf("unknown action %q: get, create or close", s.Action)}
}

// SessionPayload is the payload of a TypeSession task.
type SessionPayload struct {
	ID string `json:"id"`
	Session
}

// EnqueueSession validates s, records it as queued and queues it; its
// outcome (Status) has what DingTalk answered in Result.
func (p *Producer) EnqueueSession(ctx context.Context, s *Session) (string, error) {
	if err := s.Validate(); err != nil {
		return "", err
	}
	if len(p.apps) > 0 && !slices.Contains(p.apps, s.App) {
		return "", &dingtalk.ValidationError{Field: "app", Reason: fmt.Sprintf("unknown app %q", s.App)}
	}
	return p.enqueueKind(ctx, s.App, "session."+s.Action, TypeSession, func(id string) any {
		return SessionPayload{ID: id, Session: *s}
	})
}

// CallbackAdminPayload is the payload of a TypeCallbackAdmin task. The
// callback's token, aes_key and URL come from the worker's configuration,
// never from the task.
type CallbackAdminPayload struct {
	ID  string `json:"id"`
	App string `json:"app"`
	// Action is "register", "update", "get" or "delete".
	Action string `json:"action"`
}

// Callback actions.
var CallbackActions = []string{"register", "update", "get", "delete"}

// EnqueueCallbackAdmin queues a callback registration task for app; its
// outcome's Result has what DingTalk answered (without the secrets).
func (p *Producer) EnqueueCallbackAdmin(ctx context.Context, app, action string) (string, error) {
	if !slices.Contains(CallbackActions, action) {
		return "", &dingtalk.ValidationError{Field: "action", Reason: fmt.Sprintf("unknown action %q: one of %v", action, CallbackActions)}
	}
	if app == "" || (len(p.apps) > 0 && !slices.Contains(p.apps, app)) {
		return "", &dingtalk.ValidationError{Field: "app", Reason: fmt.Sprintf("unknown app %q", app)}
	}
	return p.enqueueKind(ctx, app, "callback."+action, TypeCallbackAdmin, func(id string) any {
		return CallbackAdminPayload{ID: id, App: app, Action: action}
	})
}

// enqueueKind records a queued task of kind and enqueues it with the
// payload payloadOf makes for its id.
func (p *Producer) enqueueKind(ctx context.Context, app, kind, typ string, payloadOf func(id string) any) (string, error) {
	id, err := newID()
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(payloadOf(id))
	if err != nil {
		return "", fmt.Errorf("producer: encoding %s: %w", kind, err)
	}
	if _, err := p.store.CreateKind(ctx, &outcome.Outcome{ID: id, App: app}, kind); err != nil {
		return "", err
	}
	t := asynq.NewTask(typ, b, asynq.TaskID(id), asynq.Queue(QueueDefault), asynq.MaxRetry(p.maxRetry))
	if _, err := p.client.EnqueueContext(ctx, t); err != nil {
		_ = p.store.Delete(context.WithoutCancel(ctx), id)
		return "", fmt.Errorf("producer: enqueueing %s: %w", kind, err)
	}
	return id, nil
}
