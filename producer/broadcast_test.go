package producer_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/producer"
	"github.com/hibiken/asynq"
)

// TestCancelQueuesCount: canceling a broadcast queues the task that
// counts, in a worker, what Cancel canceled itself (the batches a pause
// set aside); canceling it again queues it again. Canceling a single
// message queues none: its own task counts it.
func TestCancelQueuesCount(t *testing.T) {
	p, insp, _ := setup(t, producer.Config{})
	ctx := context.Background()
	counts := func() []producer.BroadcastCanceledPayload {
		t.Helper()
		tasks, err := insp.ListPendingTasks(producer.QueueDefault)
		if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
			t.Fatal(err)
		}
		var out []producer.BroadcastCanceledPayload
		for _, ti := range tasks {
			if ti.Type != producer.TypeBroadcastCanceled {
				continue
			}
			c, err := producer.DecodeBroadcastCanceled(asynq.NewTask(ti.Type, ti.Payload))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, *c)
		}
		return out
	}

	id, err := p.Send(ctx, &producer.Message{App: "hr", UserIDs: []string{"u1"}, Msg: dingtalk.TextMessage("later"),
		SendAt: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Cancel(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got := counts(); len(got) != 0 {
		t.Errorf("after canceling a single message: %v, want no count task", got)
	}

	users := make([]string, 150)
	for i := range users {
		users[i] = fmt.Sprintf("u%d", i)
	}
	a, err := p.Enqueue(ctx, &producer.Message{App: "hr", UserIDs: users, Msg: dingtalk.TextMessage("hi")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Pause(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	want := producer.BroadcastCanceledPayload{ID: a.ID, App: "hr"}
	for i := range 2 {
		if _, err := p.Cancel(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		got := counts()
		if len(got) != i+1 || got[i] != want {
			t.Errorf("after cancel %d: %v, want %d tasks of %v", i+1, got, i+1, want)
		}
	}
}
