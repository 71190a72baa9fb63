package producer

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/hibiken/asynq"
)

// Task types, namespaced so dingq's tasks stand apart in a shared Redis.
const (
	// TypeMessageSend sends one work notification (asyncsend_v2).
	TypeMessageSend = "dingtalk:message:send"
	// TypeCoalescedSend sends several coalesced messages of one app and
	// content in as few asyncsend_v2 calls as it can. Workers make it from
	// the TypeMessageSend tasks of a group; producers never enqueue it.
	TypeCoalescedSend = "dingtalk:message:coalesced"
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
	return newMessageTask(TypeMessageSend, "message", p.ID, p, opts)
}

// newMessageTask returns a task of typ for one message (what, in errors)
// whose task id is the message's id, with payload p.
func newMessageTask(typ, what, id string, p any, opts []asynq.Option) (*asynq.Task, error) {
	if id == "" {
		return nil, fmt.Errorf("producer: %s send task without an id", what)
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("producer: encoding %s %s: %w", what, id, err)
	}
	opts = append([]asynq.Option{asynq.TaskID(id)}, opts...)
	return asynq.NewTask(typ, b, opts...), nil
}

// decodePayload decodes the JSON payload b of a task of type typ.
func decodePayload[T any](typ string, b []byte) (*T, error) {
	var p T
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("producer: decoding %s payload: %w", typ, err)
	}
	return &p, nil
}

// DecodeMessageSend decodes a TypeMessageSend task's payload.
func DecodeMessageSend(t *asynq.Task) (*MessageSendPayload, error) {
	p, err := decodePayload[MessageSendPayload](t.Type(), t.Payload())
	if err != nil {
		return nil, err
	}
	if p.ID == "" || p.App == "" {
		return nil, fmt.Errorf("producer: %s payload without id or app", t.Type())
	}
	return p, nil
}

// CoalescedPayload is the payload of a TypeCoalescedSend task: messages
// of one app with the same content, merged from the TypeMessageSend tasks
// of a group.
type CoalescedPayload struct {
	App string           `json:"app"`
	Msg dingtalk.Message `json:"msg"`
	// Messages are the merged messages, each with its own outcome.
	Messages []CoalescedMessage `json:"messages"`
}

// CoalescedMessage is one message of a CoalescedPayload.
type CoalescedMessage struct {
	// ID is the message id its outcome is recorded under.
	ID      string   `json:"id"`
	UserIDs []string `json:"userid_list"`
}

// NewCoalescedTask returns the task for p. It has no task id of its own:
// the ids that matter are its messages'.
func NewCoalescedTask(p *CoalescedPayload, opts ...asynq.Option) (*asynq.Task, error) {
	if len(p.Messages) == 0 {
		return nil, fmt.Errorf("producer: coalesced task without messages")
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("producer: encoding %d coalesced messages: %w", len(p.Messages), err)
	}
	return asynq.NewTask(TypeCoalescedSend, b, opts...), nil
}

// DecodeCoalesced decodes a TypeCoalescedSend task's payload.
func DecodeCoalesced(t *asynq.Task) (*CoalescedPayload, error) {
	p, err := decodePayload[CoalescedPayload](t.Type(), t.Payload())
	if err != nil {
		return nil, err
	}
	if p.App == "" || len(p.Messages) == 0 {
		return nil, fmt.Errorf("producer: %s payload without app or messages", t.Type())
	}
	for _, m := range p.Messages {
		if m.ID == "" || len(m.UserIDs) == 0 {
			return nil, fmt.Errorf("producer: %s payload with a message without id or users", t.Type())
		}
	}
	return p, nil
}

// Task types of broadcasts and of what follows an accepted send.
const (
	// TypeBroadcastBatch sends one batch of a broadcast: at most 100 users
	// or 20 departments in one asyncsend_v2 call.
	TypeBroadcastBatch = "dingtalk:broadcast:batch"
	// TypeSendResults asks DingTalk what became of an accepted batch's
	// recipients (getsendprogress, then getsendresult) and records it.
	TypeSendResults = "dingtalk:broadcast:results"
	// TypeRecall recalls every accepted batch of a message at DingTalk.
	TypeRecall = "dingtalk:message:recall"
	// TypeBroadcastCanceled tells a worker that a broadcast was canceled
	// outside the workers: it counts, for the metrics, the recipients of
	// the batches canceled there (none of its tasks will) and the
	// broadcast, if that finished it.
	TypeBroadcastCanceled = "dingtalk:broadcast:canceled"
)

// BatchPayload is the payload of a TypeBroadcastBatch task.
type BatchPayload struct {
	// ID is the broadcast's message id.
	ID string `json:"id"`
	// Batch names the batch within the broadcast: "0", "1"… and "7r" for
	// the re-send of batch 7's recipients the per-minute limits dropped.
	Batch    string           `json:"batch"`
	App      string           `json:"app"`
	UserIDs  []string         `json:"userid_list,omitempty"`
	DeptIDs  []string         `json:"dept_id_list,omitempty"`
	Msg      dingtalk.Message `json:"msg"`
	Priority Priority         `json:"priority,omitempty"`
	// Resend marks a re-send: its recipients are not sent a third time.
	Resend bool `json:"resend,omitempty"`
	// Robot, for a batch of an enterprise robot's one-to-one message
	// (batchSend, at most 20 users), names the robot; RobotMsg is then the
	// message and Msg is unused. App is the robot's app.
	Robot    string                  `json:"robot,omitempty"`
	RobotMsg *dingtalk.RobotTemplate `json:"robot_msg,omitempty"`
}

// Recipients returns the batch's user ids, then its department ids.
func (p *BatchPayload) Recipients() []string {
	return append(append(make([]string, 0, len(p.UserIDs)+len(p.DeptIDs)), p.UserIDs...), p.DeptIDs...)
}

// BatchTaskID is the asynq task id of a broadcast's batch.
func BatchTaskID(id, batch string) string { return id + ":" + batch }

// NewBatchTask returns the task of a broadcast's batch, on its priority's
// lane (bulk if none).
func NewBatchTask(p *BatchPayload, opts ...asynq.Option) (*asynq.Task, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("producer: encoding batch %s of %s: %w", p.Batch, p.ID, err)
	}
	return newBatchTask(p.ID, p.Batch, p.Priority, b, opts...), nil
}

func newBatchTask(id, batch string, prio Priority, payload []byte, opts ...asynq.Option) *asynq.Task {
	if prio == "" {
		prio = PriorityBulk
	}
	queue, ok := prio.Queue()
	if !ok {
		queue = QueueBulk
	}
	opts = append([]asynq.Option{asynq.TaskID(BatchTaskID(id, batch)), asynq.Queue(queue)}, opts...)
	return asynq.NewTask(TypeBroadcastBatch, payload, opts...)
}

// DecodeBatch decodes a TypeBroadcastBatch task's payload.
func DecodeBatch(t *asynq.Task) (*BatchPayload, error) { return decodeBatch(t.Type(), t.Payload()) }

func decodeBatch(typ string, b []byte) (*BatchPayload, error) {
	p, err := decodePayload[BatchPayload](typ, b)
	if err != nil {
		return nil, err
	}
	if p.ID == "" || p.App == "" || p.Batch == "" {
		return nil, fmt.Errorf("producer: %s payload without id, app or batch", typ)
	}
	return p, nil
}

// ResultsPayload is the payload of a TypeSendResults task.
type ResultsPayload struct {
	// Batch is the accepted batch, with its recipients and message (to
	// re-send those DingTalk dropped for its per-minute limits).
	Batch BatchPayload `json:"batch"`
	// TaskID is DingTalk's task_id of the batch.
	TaskID int64 `json:"task_id"`
	// AcceptedAt is when DingTalk accepted it: results are asked for
	// within 24 hours of it.
	AcceptedAt time.Time `json:"accepted_at"`
}

// NewResultsTask returns the task that collects an accepted batch's
// results, on the bulk lane.
func NewResultsTask(p *ResultsPayload, opts ...asynq.Option) (*asynq.Task, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("producer: encoding results of %s: %w", p.Batch.ID, err)
	}
	opts = append([]asynq.Option{asynq.TaskID("results:" + BatchTaskID(p.Batch.ID, p.Batch.Batch)),
		asynq.Queue(QueueBulk)}, opts...)
	return asynq.NewTask(TypeSendResults, b, opts...), nil
}

// DecodeResults decodes a TypeSendResults task's payload.
func DecodeResults(t *asynq.Task) (*ResultsPayload, error) {
	p, err := decodePayload[ResultsPayload](t.Type(), t.Payload())
	if err != nil {
		return nil, err
	}
	if p.Batch.ID == "" || p.Batch.App == "" || p.TaskID == 0 {
		return nil, fmt.Errorf("producer: %s payload without id, app or task_id", t.Type())
	}
	return p, nil
}

// RecallPayload is the payload of a TypeRecall task.
type RecallPayload struct {
	ID  string `json:"id"`
	App string `json:"app"`
}

// DecodeRecall decodes a TypeRecall task's payload.
func DecodeRecall(t *asynq.Task) (*RecallPayload, error) {
	p, err := decodePayload[RecallPayload](t.Type(), t.Payload())
	if err != nil {
		return nil, err
	}
	if p.ID == "" || p.App == "" {
		return nil, fmt.Errorf("producer: %s payload without id or app", t.Type())
	}
	return p, nil
}

// BroadcastCanceledPayload is the payload of a TypeBroadcastCanceled task.
type BroadcastCanceledPayload struct {
	ID  string `json:"id"`
	App string `json:"app"`
}

// NewBroadcastCanceledTask returns the task that counts what canceling
// broadcast p.ID outside the workers canceled, on the default lane. It
// has no task id: a cancel repeated queues it again, and it counts only
// what nobody counted yet.
func NewBroadcastCanceledTask(p *BroadcastCanceledPayload, opts ...asynq.Option) (*asynq.Task, error) {
	if p.ID == "" || p.App == "" {
		return nil, fmt.Errorf("producer: broadcast canceled task without id or app")
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("producer: encoding the cancel of %s: %w", p.ID, err)
	}
	opts = append([]asynq.Option{asynq.Queue(QueueDefault)}, opts...)
	return asynq.NewTask(TypeBroadcastCanceled, b, opts...), nil
}

// DecodeBroadcastCanceled decodes a TypeBroadcastCanceled task's payload.
func DecodeBroadcastCanceled(t *asynq.Task) (*BroadcastCanceledPayload, error) {
	p, err := decodePayload[BroadcastCanceledPayload](t.Type(), t.Payload())
	if err != nil {
		return nil, err
	}
	if p.ID == "" || p.App == "" {
		return nil, fmt.Errorf("producer: %s payload without id or app", t.Type())
	}
	return p, nil
}
