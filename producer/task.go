package producer

import (
	"encoding/json"
	"fmt"

	"github.com/dingq/dingq/dingtalk"
	"github.com/hibiken/asynq"
)

// Task types, namespaced so dingq's tasks stand apart in a shared Redis.
const (
	// TypeMessageSend sends one work notification (asyncsend_v2).
	TypeMessageSend = "dingtalk:message:send"
)

// Queues dingq's tasks go to. Workers serve them with the weights in
// worker.DefaultQueues, so bulk work cannot starve single messages.
const (
	QueueCritical = "dingq:critical"
	QueueDefault  = "dingq:default"
	QueueBulk     = "dingq:bulk"
)

// MessageSendPayload is the payload of a TypeMessageSend task: one
// asyncsend_v2 call for one app. The agent id and credentials come from the
// worker's configuration of App, never from the task.
type MessageSendPayload struct {
	// ID is the message id the outcome is recorded under; also the task id.
	ID        string           `json:"id"`
	App       string           `json:"app"`
	UserIDs   []string         `json:"userid_list,omitempty"`
	DeptIDs   []string         `json:"dept_id_list,omitempty"`
	ToAllUser bool             `json:"to_all_user,omitempty"`
	Msg       dingtalk.Message `json:"msg"`
}

// NewMessageSendTask returns the task for p. The task's id is the message
// id, so asynq refuses a second task for the same message while the first
// one exists.
func NewMessageSendTask(p *MessageSendPayload, opts ...asynq.Option) (*asynq.Task, error) {
	if p.ID == "" {
		return nil, fmt.Errorf("producer: message send task without an id")
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("producer: encoding message %s: %w", p.ID, err)
	}
	opts = append([]asynq.Option{asynq.TaskID(p.ID)}, opts...)
	return asynq.NewTask(TypeMessageSend, b, opts...), nil
}

// DecodeMessageSend decodes a TypeMessageSend task's payload.
func DecodeMessageSend(t *asynq.Task) (*MessageSendPayload, error) {
	var p MessageSendPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return nil, fmt.Errorf("producer: decoding %s payload: %w", t.Type(), err)
	}
	if p.ID == "" || p.App == "" {
		return nil, fmt.Errorf("producer: %s payload without id or app", t.Type())
	}
	return &p, nil
}
