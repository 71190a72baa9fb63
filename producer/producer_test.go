package producer_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/producer"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

func setup(t *testing.T, cfg producer.Config) (*producer.Producer, *asynq.Inspector, *miniredis.Miniredis) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	cfg.Redis = rdb
	p, err := producer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p, asynq.NewInspectorFromRedisClient(rdb), mr
}

func size(t *testing.T, insp *asynq.Inspector) int {
	t.Helper()
	q, err := insp.GetQueueInfo(producer.QueueDefault)
	if err != nil {
		return 0
	}
	return q.Size
}

func TestSendRecordsAndEnqueues(t *testing.T) {
	p, insp, _ := setup(t, producer.Config{})
	ctx := context.Background()
	id, err := p.Send(ctx, &producer.Message{App: "hr", UserIDs: []string{"u1", "u2"}, DeptIDs: []string{"7"},
		Msg: dingtalk.TextMessage("hi")})
	if err != nil {
		t.Fatal(err)
	}
	o, err := p.Status(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != producer.StatusQueued || o.App != "hr" || o.Recipients != 3 || o.Attempts != 0 {
		t.Errorf("outcome %+v", o)
	}
	info, err := insp.GetTaskInfo(producer.QueueDefault, id)
	if err != nil {
		t.Fatalf("task %s not in the queue: %v", id, err)
	}
	p2, err := producer.DecodeMessageSend(asynq.NewTask(info.Type, info.Payload))
	if err != nil {
		t.Fatal(err)
	}
	if info.Type != producer.TypeMessageSend || p2.ID != id || p2.App != "hr" || len(p2.UserIDs) != 2 || p2.Msg.Text.Content != "hi" {
		t.Errorf("task %s %+v", info.Type, p2)
	}
	if info.MaxRetry != producer.DefaultMaxRetry {
		t.Errorf("max retry: got %d, want %d", info.MaxRetry, producer.DefaultMaxRetry)
	}
}

// TestSendLeavesNoRecordWhenEnqueueFails: the record and the task are
// written side by side; when the task cannot be queued, Send fails and
// takes the record back, so no message says queued that is not.
func TestSendLeavesNoRecordWhenEnqueueFails(t *testing.T) {
	p, _, mr := setup(t, producer.Config{})
	// asynq's list of pending tasks, made a string: its enqueue fails.
	if err := mr.Set("asynq:{"+producer.QueueDefault+"}:pending", "broken"); err != nil {
		t.Fatal(err)
	}
	before := len(mr.Keys())
	_, err := p.Send(context.Background(), &producer.Message{App: "hr", UserIDs: []string{"u1"}, Msg: dingtalk.TextMessage("hi")})
	if err == nil {
		t.Fatal("Send succeeded with the queue broken")
	}
	var records []string
	for _, k := range mr.Keys() {
		if strings.HasPrefix(k, "dingq:") {
			records = append(records, k)
		}
	}
	if len(records) > 0 {
		t.Errorf("Send failed (%v) and left %v (%d keys before, %d after)", err, records, before, len(mr.Keys()))
	}
}

func TestSendRefusesBadInput(t *testing.T) {
	p, insp, _ := setup(t, producer.Config{Apps: []string{"hr"}})
	tests := []struct {
		name  string
		msg   producer.Message
		field string
	}{
		{name: "no app", msg: producer.Message{UserIDs: []string{"u1"}, Msg: dingtalk.TextMessage("x")}, field: "app"},
		{name: "unknown app", msg: producer.Message{App: "ops", UserIDs: []string{"u1"}, Msg: dingtalk.TextMessage("x")}, field: "app"},
		{name: "app with colon", msg: producer.Message{App: "hr:x", UserIDs: []string{"u1"}, Msg: dingtalk.TextMessage("x")}, field: "app"},
		{name: "no recipients", msg: producer.Message{App: "hr", Msg: dingtalk.TextMessage("x")}, field: "userid_list"},
		{name: "empty text", msg: producer.Message{App: "hr", UserIDs: []string{"u1"}, Msg: dingtalk.TextMessage("")}, field: "msg.text.content"},
		{name: "bad idempotency key", msg: producer.Message{App: "hr", UserIDs: []string{"u1"}, Msg: dingtalk.TextMessage("x"), IdempotencyKey: "a b"}, field: "idempotency_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.Send(context.Background(), &tt.msg)
			var ve *dingtalk.ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field {
				t.Errorf("error %v, want a ValidationError naming %s", err, tt.field)
			}
		})
	}
	if n := size(t, insp); n != 0 {
		t.Errorf("tasks enqueued: %d, want 0", n)
	}
}

func TestIdempotencyKey(t *testing.T) {
	p, insp, _ := setup(t, producer.Config{})
	ctx := context.Background()
	m := &producer.Message{App: "hr", UserIDs: []string{"u1"}, Msg: dingtalk.TextMessage("pay day"), IdempotencyKey: "payroll-2026-11"}
	first, err := p.Send(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		again, err := p.Send(ctx, m)
		if err != nil || again != first {
			t.Fatalf("repeat: id %q err %v, want %q", again, err, first)
		}
	}
	if n := size(t, insp); n != 1 {
		t.Errorf("tasks: got %d, want 1", n)
	}
	other := *m
	other.Msg = dingtalk.TextMessage("something else")
	if _, err := p.Send(ctx, &other); !errors.Is(err, producer.ErrIdempotencyConflict) {
		t.Errorf("same key, other message: %v, want ErrIdempotencyConflict", err)
	}
	otherApp := *m
	otherApp.App = "ops"
	if id, err := p.Send(ctx, &otherApp); err != nil || id == first {
		t.Errorf("same key, other app: id %q err %v, want a new id", id, err)
	}
}

func TestIdempotentRetryAfterEnqueueFailed(t *testing.T) {
	p, insp, mr := setup(t, producer.Config{})
	ctx := context.Background()
	m := &producer.Message{App: "hr", UserIDs: []string{"u1"}, Msg: dingtalk.TextMessage("x"), IdempotencyKey: "k1"}
	id, err := p.Send(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	// The first Send's task is lost (as if the process died before
	// enqueueing it): a retry with the same key must enqueue it.
	if err := insp.DeleteTask(producer.QueueDefault, id); err != nil {
		t.Fatal(err)
	}
	mr.HDel("dingq:msg:{"+id+"}", "enqueued") // it died before marking it enqueued
	again, err := p.Send(ctx, m)
	if err != nil || again != id {
		t.Fatalf("retry: %q %v", again, err)
	}
	if _, err := insp.GetTaskInfo(producer.QueueDefault, id); err != nil {
		t.Errorf("task not enqueued again: %v", err)
	}
	// Redis down: Send fails with an error, not a panic or a false id.
	mr.Close()
	if _, err := p.Send(ctx, &producer.Message{App: "hr", UserIDs: []string{"u1"}, Msg: dingtalk.TextMessage("y")}); err == nil {
		t.Error("Send with Redis down: no error")
	}
}

func TestSendAtSchedules(t *testing.T) {
	p, insp, _ := setup(t, producer.Config{})
	at := time.Now().Add(time.Hour).Add(300 * time.Millisecond)
	id, err := p.Send(context.Background(), &producer.Message{App: "hr", UserIDs: []string{"u1"}, Msg: dingtalk.TextMessage("x"), SendAt: at})
	if err != nil {
		t.Fatal(err)
	}
	info, err := insp.GetTaskInfo(producer.QueueDefault, id)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != asynq.TaskStateScheduled || info.NextProcessAt.Before(at) {
		t.Errorf("task %v at %v, want scheduled no earlier than %v", info.State, info.NextProcessAt, at)
	}
	o, _ := p.Status(context.Background(), id)
	if !o.SendAt.Equal(at.Truncate(time.Millisecond)) {
		t.Errorf("outcome send_at %v, want %v", o.SendAt, at)
	}
}

func TestStatusUnknown(t *testing.T) {
	p, _, _ := setup(t, producer.Config{})
	if _, err := p.Status(context.Background(), "nope"); !errors.Is(err, producer.ErrNotFound) {
		t.Errorf("got %v, want ErrNotFound", err)
	}
}

func TestPriorityQueues(t *testing.T) {
	tests := []struct {
		priority  producer.Priority
		wantQueue string
	}{
		{priority: "", wantQueue: producer.QueueDefault},
		{priority: producer.PriorityDefault, wantQueue: producer.QueueDefault},
		{priority: producer.PriorityCritical, wantQueue: producer.QueueCritical},
		{priority: producer.PriorityBulk, wantQueue: producer.QueueBulk},
	}
	for _, tt := range tests {
		t.Run(string(tt.priority), func(t *testing.T) {
			p, insp, _ := setup(t, producer.Config{})
			id, err := p.Send(context.Background(), &producer.Message{App: "hr", UserIDs: []string{"u1"},
				Msg: dingtalk.TextMessage("hi"), Priority: tt.priority})
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			info, err := insp.GetTaskInfo(tt.wantQueue, id)
			if err != nil {
				t.Fatalf("task %s not in %s: %v", id, tt.wantQueue, err)
			}
			if info.Queue != tt.wantQueue {
				t.Errorf("queue: got %v, want %v", info.Queue, tt.wantQueue)
			}
		})
	}
}

func TestUnknownPriority(t *testing.T) {
	m := &producer.Message{App: "hr", UserIDs: []string{"u1"}, Msg: dingtalk.TextMessage("hi"), Priority: "urgent"}
	err := m.Validate()
	var ve *dingtalk.ValidationError
	if !errors.As(err, &ve) || ve.Field != "priority" {
		t.Errorf("Validate: got %v, want a ValidationError naming priority", err)
	}
}

// TestIdempotentRepeatAfterTaskLeftQueue: once its task was queued, a
// repeated key queues nothing more, even when the task has left asynq
// (a coalesced task is deleted when asynq merges it), so the message
// cannot be sent twice.
func TestIdempotentRepeatAfterTaskLeftQueue(t *testing.T) {
	p, insp, _ := setup(t, producer.Config{})
	ctx := context.Background()
	m := &producer.Message{App: "hr", UserIDs: []string{"u1"}, Msg: dingtalk.TextMessage("x"), IdempotencyKey: "k2"}
	id, err := p.Send(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := insp.DeleteTask(producer.QueueDefault, id); err != nil {
		t.Fatal(err)
	}
	if again, err := p.Send(ctx, m); err != nil || again != id {
		t.Fatalf("repeat: %q %v", again, err)
	}
	if _, err := insp.GetTaskInfo(producer.QueueDefault, id); !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Errorf("repeat queued the message again: %v", err)
	}
}

// TestEnqueueEventOnce: an event is queued once while its task is kept,
// and again once its task was archived (its sinks gave up).
func TestEnqueueEventOnce(t *testing.T) {
	p, insp, _ := setup(t, producer.Config{})
	ctx := context.Background()
	ev := []byte(`{"EventType":"user_add_org","UserId":["u1"]}`)
	id, dup, err := p.EnqueueEvent(ctx, "", ev)
	if err != nil || dup {
		t.Fatalf("first: %v %v", dup, err)
	}
	if _, dup, err := p.EnqueueEvent(ctx, "", ev); err != nil || !dup {
		t.Fatalf("again: dup %v %v, want a duplicate", dup, err)
	}
	if err := insp.ArchiveTask(producer.QueueCritical, id); err != nil {
		t.Fatal(err)
	}
	if again, dup, err := p.EnqueueEvent(ctx, "", ev); err != nil || dup || again != id {
		t.Fatalf("after archiving: %q dup %v %v, want queued again", again, dup, err)
	}
	if info, err := insp.GetTaskInfo(producer.QueueCritical, id); err != nil || info.State != asynq.TaskStatePending {
		t.Errorf("task after re-queueing: %+v %v, want pending", info, err)
	}
}
