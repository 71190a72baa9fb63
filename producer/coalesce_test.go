package producer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/producer"
	"github.com/hibiken/asynq"
)

func TestCoalesceGroups(t *testing.T) {
	users := func(n int) []string {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("u%d", i)
		}
		return ids
	}
	tests := []struct {
		name      string
		msg       producer.Message
		wantGroup bool
		wantQueue string
	}{
		{name: "coalesce to users", msg: producer.Message{UserIDs: []string{"u1", "u2"}, Coalesce: true},
			wantGroup: true},
		{name: "coalesce to 100 users after dedupe", msg: producer.Message{UserIDs: append(users(100), "u0"), Coalesce: true},
			wantGroup: true},
		{name: "coalesce on the critical lane", msg: producer.Message{UserIDs: []string{"u1"}, Coalesce: true,
			Priority: producer.PriorityCritical}, wantGroup: true, wantQueue: producer.QueueCritical},
		{name: "app coalesces by default", msg: producer.Message{App: "ops", UserIDs: []string{"u1"}},
			wantGroup: true},
		{name: "send_at in the past", msg: producer.Message{UserIDs: []string{"u1"}, Coalesce: true,
			SendAt: time.Now().Add(-time.Minute)}, wantGroup: true},
		{name: "not asked", msg: producer.Message{UserIDs: []string{"u1"}}},
		{name: "with dept_id_list", msg: producer.Message{UserIDs: []string{"u1"}, DeptIDs: []string{"7"}, Coalesce: true}},
		{name: "dept_id_list only", msg: producer.Message{DeptIDs: []string{"7"}, Coalesce: true}},
		{name: "to_all_user", msg: producer.Message{ToAllUser: true, Coalesce: true}},
		{name: "send_at in the future", msg: producer.Message{UserIDs: []string{"u1"}, Coalesce: true,
			SendAt: time.Now().Add(time.Hour)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, insp, _ := setup(t, producer.Config{CoalesceApps: []string{"ops"}})
			m := tt.msg
			if m.App == "" {
				m.App = "hr"
			}
			m.Msg = dingtalk.TextMessage("hi")
			a, err := p.Enqueue(context.Background(), &m)
			if err != nil {
				t.Fatalf("Enqueue: %v", err)
			}
			queue := tt.wantQueue
			if queue == "" {
				queue = producer.QueueDefault
			}
			info, err := insp.GetTaskInfo(queue, a.ID)
			if err != nil {
				t.Fatalf("task %s not in %s: %v", a.ID, queue, err)
			}
			if info.ID != a.ID || info.Type != producer.TypeMessageSend || info.MaxRetry != producer.DefaultMaxRetry {
				t.Errorf("task %s %s max retry %d, want the message's own task", info.ID, info.Type, info.MaxRetry)
			}
			qi, err := insp.GetQueueInfo(queue)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.wantGroup {
				if info.Group != "" || info.State == asynq.TaskStateAggregating || qi.Aggregating != 0 || a.Coalesced {
					t.Errorf("task in group %q, %v, %d aggregating, coalesced %v; want no group",
						info.Group, info.State, qi.Aggregating, a.Coalesced)
				}
				return
			}
			if info.Group == "" || info.State != asynq.TaskStateAggregating || qi.Aggregating != 1 || qi.Groups != 1 || !a.Coalesced {
				t.Fatalf("task in group %q, %v, queue %d aggregating in %d groups, coalesced %v; want one grouped task",
					info.Group, info.State, qi.Aggregating, qi.Groups, a.Coalesced)
			}
			got, err := insp.ListAggregatingTasks(queue, info.Group)
			if err != nil || len(got) != 1 || got[0].ID != a.ID {
				t.Errorf("ListAggregatingTasks(%s) = %v, %v; want the message's task", info.Group, got, err)
			}
		})
	}
}

func TestCoalesceGroupKey(t *testing.T) {
	p, insp, _ := setup(t, producer.Config{})
	ctx := context.Background()
	group := func(app, text string) string {
		t.Helper()
		id, err := p.Send(ctx, &producer.Message{App: app, UserIDs: []string{"u1"}, Msg: dingtalk.TextMessage(text), Coalesce: true})
		if err != nil {
			t.Fatal(err)
		}
		info, err := insp.GetTaskInfo(producer.QueueDefault, id)
		if err != nil {
			t.Fatal(err)
		}
		return info.Group
	}
	a := group("hr", "pay day")
	if b := group("hr", "pay day"); b != a {
		t.Errorf("same app and content: groups %q and %q, want one", a, b)
	}
	if b := group("hr", "pay day!"); b == a {
		t.Errorf("other content: same group %q", a)
	}
	if b := group("ops", "pay day"); b == a {
		t.Errorf("other app: same group %q", a)
	}
	if want := "hr:"; len(a) != len(want)+32 || a[:len(want)] != want {
		t.Errorf("group %q, want hr: and 32 hex digits", a)
	}
}

func TestCoalesceIdempotencyKey(t *testing.T) {
	p, insp, mr := setup(t, producer.Config{})
	ctx := context.Background()
	m := &producer.Message{App: "hr", UserIDs: []string{"u1"}, Msg: dingtalk.TextMessage("x"), Coalesce: true,
		IdempotencyKey: "k1"}
	id, err := p.Send(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := p.Send(ctx, m); err != nil || again != id {
		t.Fatalf("repeat: %q %v, want %q", again, err, id)
	}
	qi, err := insp.GetQueueInfo(producer.QueueDefault)
	if err != nil || qi.Aggregating != 1 {
		t.Fatalf("aggregating tasks: %+v %v, want 1", qi, err)
	}
	// The first task is lost: the retry enqueues it again, in its group.
	if err := insp.DeleteTask(producer.QueueDefault, id); err != nil {
		t.Fatal(err)
	}
	mr.HDel("dingq:msg:{"+id+"}", "enqueued") // it died before marking it enqueued
	if again, err := p.Send(ctx, m); err != nil || again != id {
		t.Fatalf("retry: %q %v, want %q", again, err, id)
	}
	info, err := insp.GetTaskInfo(producer.QueueDefault, id)
	if err != nil || info.State != asynq.TaskStateAggregating {
		t.Errorf("task after retry: %+v %v, want aggregating", info, err)
	}
}
