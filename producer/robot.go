package producer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/internal/outcome"
	"github.com/hibiken/asynq"
)

// TypeRobotSend sends one message through a custom group robot into its
// group chat. (An enterprise robot's one-to-one messages go out as
// TypeBroadcastBatch tasks whose BatchPayload.Robot is set.)
const TypeRobotSend = "dingtalk:robot:send"

// KindRobot is the kind of a custom group robot message's record.
const KindRobot = outcome.KindRobot

// ForbiddenFlowControlled is the forbidden code (outcome's recipients
// with result "forbidden") of the users an enterprise robot's batch send
// held back for flow control twice: once, and again in the re-send.
const ForbiddenFlowControlled = "flow_controlled"

// Robot is what a producer knows of a configured robot (Config.Robots).
type Robot struct {
	// App is the app an enterprise robot belongs to: it sends one to one,
	// to users (RobotMessage.UserIDs). Empty for a custom group robot,
	// which sends into its group chat (RobotMessage.Msg).
	App string
}

// Group reports whether r is a custom group robot.
func (r Robot) Group() bool { return r.App == "" }

// RobotSendPayload is the payload of a TypeRobotSend task. The robot's
// webhooks and secrets come from the worker's configuration, never from
// the task.
type RobotSendPayload struct {
	// ID is the message id the outcome is recorded under; also the task id
	// and, unless the message gives its own, its msgUuid.
	ID    string                `json:"id"`
	Robot string                `json:"robot"`
	Msg   dingtalk.RobotMessage `json:"msg"`
}

// NewRobotSendTask returns the task for p, with the message id as its
// task id.
func NewRobotSendTask(p *RobotSendPayload, opts ...asynq.Option) (*asynq.Task, error) {
	return newMessageTask(TypeRobotSend, "robot message", p.ID, p, opts)
}

// DecodeRobotSend decodes a TypeRobotSend task's payload.
func DecodeRobotSend(t *asynq.Task) (*RobotSendPayload, error) {
	p, err := decodePayload[RobotSendPayload](t.Type(), t.Payload())
	if err != nil {
		return nil, err
	}
	if p.ID == "" || p.Robot == "" {
		return nil, fmt.Errorf("producer: %s payload without id or robot", t.Type())
	}
	return p, nil
}

// RobotMessage is a message a robot sends, by the robot's configured name:
// a custom group robot's message into its group chat (Msg), or an
// enterprise robot's message to users one to one (UserIDs, MsgKey and
// MsgParam). It is also the JSON body of dingq's POST /v1/robot-messages.
// DingTalk's own field names are kept for DingTalk's parts.
type RobotMessage struct {
	// Robot names a configured robot (dingtalk.robots[].name).
	Robot string `json:"robot"`
	// Msg is a custom group robot's message: text, link, markdown,
	// actionCard or feedCard, with its @mentions. Its msgUuid, if empty,
	// is the message id, so a retried send is not a second message.
	Msg *dingtalk.RobotMessage `json:"msg,omitempty"`
	// UserIDs are the users an enterprise robot messages one to one; they
	// go out 20 to a call, as the batches of a broadcast.
	UserIDs []string `json:"userIds,omitempty"`
	// MsgKey ("sampleText", "sampleMarkdown"…) and MsgParam (a JSON
	// object, or a string holding one, as DingTalk takes it) are an
	// enterprise robot's message.
	MsgKey   string          `json:"msgKey,omitempty"`
	MsgParam json.RawMessage `json:"msgParam,omitempty"`
	// IdempotencyKey, SendAt and Priority work as in Message; an
	// idempotency key is unique per robot.
	IdempotencyKey string    `json:"idempotency_key,omitempty"`
	SendAt         time.Time `json:"send_at,omitzero"`
	Priority       Priority  `json:"priority,omitempty"`
}

// oneToOne reports whether m is an enterprise robot's message by its
// shape.
func (m *RobotMessage) oneToOne() bool {
	p := bytes.TrimSpace(m.MsgParam)
	return len(m.UserIDs) > 0 || m.MsgKey != "" || (len(p) > 0 && !bytes.Equal(p, []byte("null")))
}

// template returns m's enterprise robot message.
func (m *RobotMessage) template() *dingtalk.RobotTemplate {
	return &dingtalk.RobotTemplate{MsgKey: m.MsgKey, MsgParam: m.MsgParam}
}

// Validate reports the first problem in m as a *dingtalk.ValidationError
// naming the field ("robot", "msg.text.content", "userIds",
// "msgParam.content"…). It does not know which robots are configured;
// SendRobot checks that.
func (m *RobotMessage) Validate() error {
	switch {
	case m.Robot == "":
		return &dingtalk.ValidationError{Field: "robot", Reason: "required: the name of a configured robot"}
	case !appNameRE.MatchString(m.Robot):
		return &dingtalk.ValidationError{Field: "robot", Reason: fmt.Sprintf("unknown robot %q: robot names are 1-64 of a-z 0-9 _ -", m.Robot)}
	case m.Msg != nil && m.oneToOne():
		return &dingtalk.ValidationError{Field: "msg", Reason: "give msg (a group robot's message) or userIds, msgKey and msgParam (an enterprise robot's), not both"}
	case m.Msg == nil && !m.oneToOne():
		return &dingtalk.ValidationError{Field: "msg", Reason: "required: msg for a custom group robot, or userIds, msgKey and msgParam for an enterprise robot"}
	}
	if m.Msg != nil {
		if err := m.Msg.Validate(); err != nil {
			var ve *dingtalk.ValidationError
			if errors.As(err, &ve) {
				return &dingtalk.ValidationError{Field: "msg." + ve.Field, Reason: ve.Reason}
			}
			return err
		}
	} else {
		if len(m.UserIDs) == 0 {
			return &dingtalk.ValidationError{Field: "userIds", Reason: "required: the users an enterprise robot messages"}
		}
		if len(m.UserIDs) > MaxRecipientsLimit {
			return &dingtalk.ValidationError{Field: "userIds", Reason: fmt.Sprintf("%d user ids, at most %d in one message", len(m.UserIDs), MaxRecipientsLimit)}
		}
		if err := dingtalk.ValidateIDs("userIds", m.UserIDs); err != nil {
			return err
		}
		if err := m.template().Validate(); err != nil {
			return err
		}
	}
	return validateOptions(m.Priority, m.IdempotencyKey)
}

// robotScope is the scope of a robot's idempotency keys, apart from the
// apps'.
func robotScope(robot string) string { return "robot." + robot }

// SendRobot validates m, records it and enqueues it, and returns what it
// accepted, without waiting for DingTalk; the robot must be one of
// Config.Robots, and of the kind m's shape says. A custom group robot's
// message is one task; its record has Kind KindRobot, Robot set and no
// App. An enterprise robot's message is a broadcast (Robot and App set) in
// batches of 20 users, one batchSend call each, whose record counts, per
// recipient, those DingTalk messaged (delivered), did not know (invalid) or
// held back for flow control (forbidden, code "flow_controlled", after
// one re-send). Duplicate user ids are sent once.
func (p *Producer) SendRobot(ctx context.Context, m *RobotMessage, opts ...EnqueueOption) (*Accepted, error) {
	var o enqueueOptions
	for _, opt := range opts {
		opt(&o)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	r, ok := p.robots[m.Robot]
	switch {
	case !ok:
		return nil, &dingtalk.ValidationError{Field: "robot", Reason: fmt.Sprintf("unknown robot %q", m.Robot)}
	case r.Group() && m.oneToOne():
		return nil, &dingtalk.ValidationError{Field: "userIds", Reason: fmt.Sprintf("robot %q is a custom group robot: give msg, it sends into its group", m.Robot)}
	case !r.Group() && m.Msg != nil:
		return nil, &dingtalk.ValidationError{Field: "msg", Reason: fmt.Sprintf("robot %q is an enterprise robot: give userIds, msgKey and msgParam", m.Robot)}
	}
	if r.Group() {
		return p.sendGroupRobot(ctx, m)
	}
	if n := len(m.UserIDs); n > p.maxRecipients {
		return nil, &dingtalk.ValidationError{Field: "userIds",
			Reason: fmt.Sprintf("%d user ids, at most %d in one message", n, p.maxRecipients)}
	}
	users, dups := dedupe(m.UserIDs)
	f := fanOut{shared: BatchPayload{App: r.App, Robot: m.Robot, RobotMsg: m.template(), Priority: m.Priority},
		sendAt: m.SendAt, idemScope: robotScope(m.Robot), idemKey: m.IdempotencyKey}
	return p.fanOut(ctx, f, batchPlan{users: users, perBatch: dingtalk.MaxRobotBatchUsers}, dups, o)
}

func (p *Producer) sendGroupRobot(ctx context.Context, m *RobotMessage) (*Accepted, error) {
	payload := &RobotSendPayload{Robot: m.Robot, Msg: *m.Msg}
	var fp string
	if m.IdempotencyKey != "" {
		b, err := json.Marshal(struct {
			P      *RobotSendPayload `json:"p"`
			SendAt int64             `json:"s"`
		}{payload, m.SendAt.UnixMilli()})
		if err != nil {
			return nil, fmt.Errorf("producer: encoding robot message: %w", err)
		}
		sum := sha256.Sum256(b)
		fp = hex.EncodeToString(sum[:16])
	}
	rec := &outcome.Outcome{Kind: KindRobot, Robot: m.Robot, Recipients: 1, SendAt: m.SendAt}
	id, err := p.acceptOne(ctx, rec, robotScope(m.Robot), m.IdempotencyKey, fp, func(ctx context.Context, id string) error {
		payload.ID = id
		queue, _ := m.Priority.Queue() // Validate refused any other
		opts := []asynq.Option{asynq.Queue(queue), asynq.MaxRetry(p.maxRetry)}
		if at, ok := p.processAt(m.SendAt); ok {
			opts = append(opts, asynq.ProcessAt(at))
		}
		task, err := NewRobotSendTask(payload, opts...)
		if err != nil {
			return err
		}
		_, err = p.client.EnqueueContext(ctx, task)
		if errors.Is(err, asynq.ErrTaskIDConflict) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("producer: enqueueing robot message %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &Accepted{ID: id, Status: StatusQueued, Recipients: 1}, nil
}
