package worker_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/dingtalk/fake"
	"github.com/dingq/dingq/producer"
	"github.com/dingq/dingq/worker"
)

// noRecipientLimit lets the tests send hundreds of recipients at once.
var noRecipientLimit = worker.AppLimits{RecipientsPerMinute: -1}

// burst waits, if the current second is nearly over, for the next one.
// asynq stamps a grouped task with the second it joined its group and
// merges a group once its newest task is a whole window old: a burst that
// runs into the next second could be split when a check falls between.
func burst() {
	if now := time.Now(); now.Nanosecond() > int(800*time.Millisecond) {
		time.Sleep(time.Until(now.Truncate(time.Second).Add(time.Second)))
	}
}

// sendMany sends n coalescing messages with text, to one user each, named
// prefix0, prefix1…, and returns their ids.
func (e *env) sendMany(t *testing.T, n int, text, prefix string) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = e.send(t, &producer.Message{UserIDs: []string{fmt.Sprintf("%s%d", prefix, i)},
			Msg: dingtalk.TextMessage(text), Coalesce: true})
	}
	return ids
}

// sendUsers returns the user lists of the asyncsend_v2 calls the fake
// accepted, each sorted, by text.
func (e *env) sendUsers() map[string][][]string {
	calls := map[string][][]string{}
	for _, s := range e.fake.Sent() {
		users := strings.Split(s.Request.UserIDList, ",")
		slices.Sort(users)
		text := s.Request.Msg.Text.Content
		calls[text] = append(calls[text], users)
	}
	return calls
}

func TestCoalesceMergesIntoOneCall(t *testing.T) {
	e := setup(t, opts{rate: noRecipientLimit})
	burst()
	ids := e.sendMany(t, 60, "standup in 5 minutes", "u")

	var taskID int64
	for _, id := range ids {
		o := e.wait(t, id)
		if o.Status != producer.StatusSent || o.TaskID == 0 || o.Attempts != 1 || o.RequestID == "" {
			t.Fatalf("message %s: %+v, want sent with a task_id after 1 attempt", id, o)
		}
		if taskID == 0 {
			taskID = o.TaskID
		}
		if o.TaskID != taskID {
			t.Errorf("message %s: DingTalk task %d, want %d as the others", id, o.TaskID, taskID)
		}
	}
	sent := e.fake.Sent()
	if len(sent) != 1 || e.sendCalls() != 1 {
		t.Fatalf("asyncsend_v2 calls: %d (%d accepted), want 1", e.sendCalls(), len(sent))
	}
	users := strings.Split(sent[0].Request.UserIDList, ",")
	slices.Sort(users)
	users = slices.Compact(users)
	if len(users) != 60 || sent[0].TaskID != taskID || sent[0].Request.AgentID != agentID {
		t.Errorf("call to %d distinct users, task %d, agent %d; want 60, %d, %d",
			len(users), sent[0].TaskID, sent[0].Request.AgentID, taskID, agentID)
	}
}

func TestCoalescePacksCalls(t *testing.T) {
	e := setup(t, opts{rate: noRecipientLimit})
	// A producer whose app coalesces without being asked.
	byApp, err := producer.New(producer.Config{Redis: e.rdb, CoalesceApps: []string{"hr"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	burst()
	ids := e.sendMany(t, 150, "many", "m")
	ids = append(ids, e.sendMany(t, 3, "text a", "a")...)
	ids = append(ids, e.sendMany(t, 2, "text b", "b")...)
	// Not asked to coalesce: sent on its own.
	ids = append(ids, e.send(t, &producer.Message{UserIDs: []string{"a0"}, Msg: dingtalk.TextMessage("text a")}))
	// Users shared by messages are sent to once per call.
	for _, u := range [][]string{{"o1", "o2"}, {"o2", "o3"}, {"o3"}} {
		id, err := byApp.Send(ctx, &producer.Message{App: "hr", UserIDs: u, Msg: dingtalk.TextMessage("by app")})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	tasks := map[int64]int{}
	for _, id := range ids {
		o := e.wait(t, id)
		if o.Status != producer.StatusSent || o.Attempts != 1 {
			t.Fatalf("message %s: %+v, want sent after 1 attempt", id, o)
		}
		tasks[o.TaskID]++
	}

	calls := e.sendUsers()
	if n := e.sendCalls(); n != 6 || len(tasks) != 6 {
		t.Errorf("asyncsend_v2 calls: %d, messages under %d task ids; want 6", n, len(tasks))
	}
	many := calls["many"]
	slices.SortFunc(many, func(a, b []string) int { return len(b) - len(a) })
	if len(many) != 2 || len(many[0]) != 100 || len(many[1]) != 50 ||
		len(slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(many[0]), many[1]...))))) != 150 {
		t.Errorf("150 messages to one user each went out in calls to %v users, want 100 and 50, each user once",
			lens(many))
	}
	a := calls["text a"]
	slices.SortFunc(a, func(x, y []string) int { return len(y) - len(x) })
	if want := [][]string{{"a0", "a1", "a2"}, {"a0"}}; !equalCalls(a, want) {
		t.Errorf("text a calls: %v, want %v (merged, then the message that did not ask alone)", a, want)
	}
	if want := [][]string{{"b0", "b1"}}; !equalCalls(calls["text b"], want) {
		t.Errorf("text b calls: %v, want %v", calls["text b"], want)
	}
	if want := [][]string{{"o1", "o2", "o3"}}; !equalCalls(calls["by app"], want) {
		t.Errorf("app's calls: %v, want %v", calls["by app"], want)
	}
}

func lens(calls [][]string) []int {
	n := make([]int, len(calls))
	for i, c := range calls {
		n[i] = len(c)
	}
	return n
}

func equalCalls(a, b [][]string) bool {
	return slices.EqualFunc(a, b, func(x, y []string) bool { return slices.Equal(x, y) })
}

func TestCoalescePermanentErrorFailsEachMessage(t *testing.T) {
	e := setup(t, opts{rate: noRecipientLimit})
	if err := e.fake.AddFault(fake.Fault{Path: dingtalk.PathAsyncSendV2, Code: 33012, Times: 1}); err != nil {
		t.Fatal(err)
	}
	burst()
	ids := e.sendMany(t, 5, "fails", "u")
	for _, id := range ids {
		o := e.wait(t, id)
		if o.Status != producer.StatusFailed || o.LastError == nil || o.LastError.Code != 33012 ||
			o.LastError.Class != "permanent" || o.Attempts != 1 {
			t.Errorf("message %s: %+v (last error %+v), want failed with permanent 33012 after 1 attempt", id, o, o.LastError)
		}
	}
	if n := e.sendCalls(); n != 1 {
		t.Errorf("asyncsend_v2 calls: %d, want the 1 merged call", n)
	}
}

func TestCoalesceRetriesTransientError(t *testing.T) {
	e := setup(t, opts{rate: noRecipientLimit})
	if err := e.fake.AddFault(fake.Fault{Path: dingtalk.PathAsyncSendV2, Code: -1, Times: 1}); err != nil {
		t.Fatal(err)
	}
	burst()
	ids := e.sendMany(t, 5, "busy", "u")
	var taskID int64
	for _, id := range ids {
		o := e.wait(t, id)
		if o.Status != producer.StatusSent || o.Attempts != 2 || o.LastError == nil || o.LastError.Code != -1 {
			t.Errorf("message %s: %+v, want sent after 2 attempts, the first -1", id, o)
		}
		if taskID != 0 && o.TaskID != taskID {
			t.Errorf("message %s: DingTalk task %d, want %d as the others", id, o.TaskID, taskID)
		}
		taskID = o.TaskID
	}
	if n, s := e.sendCalls(), len(e.fake.Sent()); n != 2 || s != 1 {
		t.Errorf("asyncsend_v2 calls: %d, %d accepted; want 2 and 1", n, s)
	}
}

func TestCoalesceSkipsCanceled(t *testing.T) {
	e := setup(t, opts{rate: noRecipientLimit})
	burst()
	ids := e.sendMany(t, 3, "skip one", "u")
	if _, err := e.producer.Cancel(context.Background(), ids[1]); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		o := e.wait(t, id)
		want := producer.StatusSent
		if i == 1 {
			want = producer.StatusCanceled
		}
		if o.Status != want {
			t.Errorf("message %d: %s, want %s", i, o.Status, want)
		}
	}
	if want := [][]string{{"u0", "u2"}}; !equalCalls(e.sendUsers()["skip one"], want) {
		t.Errorf("calls: %v, want %v", e.sendUsers()["skip one"], want)
	}
}
