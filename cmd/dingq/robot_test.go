package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/producer"
	"github.com/hibiken/asynq"
)

// newRobotEnv is newTestEnv with two robots configured: alerts, a custom
// group robot, and helpdesk, the enterprise robot of app hr.
func newRobotEnv(t *testing.T) *testEnv {
	t.Helper()
	return newTestEnvWith(t, `  robots:
    - name: alerts
      webhooks: [{access_token: test-robot-token, secret: SECtest}]
    - name: helpdesk
      app: hr
`)
}

// pending returns the pending tasks of queue.
func (e *testEnv) pending(queue string) []*asynq.TaskInfo {
	e.t.Helper()
	tasks, err := asynq.NewInspectorFromRedisClient(e.rdb).ListPendingTasks(queue, asynq.PageSize(1000))
	if errors.Is(err, asynq.ErrQueueNotFound) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return tasks
}

// robotTask returns the one TypeRobotSend task of queue, decoded.
func (e *testEnv) robotTask(queue string) (*asynq.TaskInfo, *producer.RobotSendPayload) {
	e.t.Helper()
	tasks := e.pending(queue)
	if len(tasks) != 1 || tasks[0].Type != producer.TypeRobotSend {
		e.t.Fatalf("%d tasks in %s, want one %s", len(tasks), queue, producer.TypeRobotSend)
	}
	p, err := producer.DecodeRobotSend(asynq.NewTask(tasks[0].Type, tasks[0].Payload))
	if err != nil {
		e.t.Fatal(err)
	}
	return tasks[0], p
}

// robotID runs dingq robot send args and returns the id it printed.
func (e *testEnv) robotID(args ...string) (id, stderr string) {
	e.t.Helper()
	out, errs, err := e.run(append([]string{"robot", "send"}, args...)...)
	if err != nil {
		e.t.Fatalf("robot send %q: %v\n%s", args, err, errs)
	}
	id = strings.TrimSpace(out)
	if id == "" || strings.Count(out, "\n") != 1 {
		e.t.Fatalf("robot send %q: stdout %q, want the id alone", args, out)
	}
	return id, errs
}

func TestRobotCmdGroupText(t *testing.T) {
	t.Parallel()
	e := newRobotEnv(t)
	id, errs := e.robotID("--robot", "alerts", "--text", "disk full on db-1",
		"--at-mobile", "13800000000,13900000000", "--at-mobile", "13700000000", "--at-user", "u1")
	if errs != "" {
		t.Errorf("stderr %q, want nothing", errs)
	}
	ti, p := e.robotTask(producer.QueueDefault)
	if ti.ID != id || p.ID != id || p.Robot != "alerts" {
		t.Errorf("task %s: id %s, robot %q; want %s, alerts", ti.ID, p.ID, p.Robot, id)
	}
	want := dingtalk.RobotMessage{MsgType: "text", Text: &dingtalk.RobotTextBody{Content: "disk full on db-1"},
		At: &dingtalk.RobotAt{AtMobiles: []string{"13800000000", "13900000000", "13700000000"}, AtUserIDs: []string{"u1"}}}
	got, _ := json.Marshal(p.Msg)
	if w, _ := json.Marshal(want); string(got) != string(w) {
		t.Errorf("msg %s\nwant %s", got, w)
	}
	out, _, err := e.run("status", id)
	if err != nil || !strings.Contains(out, `"robot": "alerts"`) || !strings.Contains(out, `"status": "queued"`) {
		t.Errorf("status: %v\n%s", err, out)
	}
}

func TestRobotCmdGroupForms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		queue string
		want  string // the task's msg, as JSON
	}{
		{name: "markdown at all", args: []string{"--markdown-title", "Deploy", "--markdown", "### v2 is live", "--at-all", "--priority", "critical"},
			queue: producer.QueueCritical, want: `{"msgtype":"markdown","markdown":{"title":"Deploy","text":"### v2 is live"},"at":{"isAtAll":true}}`},
		{name: "msg", args: []string{"--msg", `{"msgtype":"link","link":{"title":"Report","text":"May","messageUrl":"https://example.com/r"}}`},
			queue: producer.QueueDefault, want: `{"msgtype":"link","link":{"title":"Report","text":"May","messageUrl":"https://example.com/r"}}`},
		{name: "msg-file stdin with at", args: []string{"--msg-file", "-", "--at-user", "u7"},
			stdin: `{"msgtype":"text","text":{"content":"hi @u7"}}`,
			queue: producer.QueueDefault, want: `{"msgtype":"text","text":{"content":"hi @u7"},"at":{"atUserIds":["u7"]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newRobotEnv(t)
			var out strings.Builder
			errs, err := e.runCtx(context.Background(), &out, strings.NewReader(tc.stdin),
				append([]string{"robot", "send", "--robot", "alerts"}, tc.args...)...)
			if err != nil {
				t.Fatalf("%v\n%s", err, errs)
			}
			_, p := e.robotTask(tc.queue)
			if got, _ := json.Marshal(p.Msg); string(got) != tc.want || p.ID != strings.TrimSpace(out.String()) {
				t.Errorf("task %s: msg %s\nwant %s", p.ID, got, tc.want)
			}
		})
	}
}

func TestRobotCmdIdempotency(t *testing.T) {
	t.Parallel()
	e := newRobotEnv(t)
	id1, _ := e.robotID("--robot", "alerts", "--text", "hi", "--idempotency-key", "k1")
	id2, _ := e.robotID("--robot", "alerts", "--text", "hi", "--idempotency-key", "k1")
	if id1 != id2 {
		t.Errorf("the same key gave ids %s and %s", id1, id2)
	}
	if n := len(e.pending(producer.QueueDefault)); n != 1 {
		t.Errorf("%d tasks, want 1", n)
	}
	out, _, err := e.run("robot", "send", "--robot", "alerts", "--text", "other", "--idempotency-key", "k1")
	if err == nil || !strings.Contains(err.Error(), `--idempotency-key "k1" was used for a different message`) || out != "" {
		t.Errorf("another message with the key: %v, stdout %q", err, out)
	}
}

func TestRobotCmdOneToOneBatches(t *testing.T) {
	t.Parallel()
	e := newRobotEnv(t)
	users := make([]string, 45)
	for i := range users {
		users[i] = fmt.Sprintf("u%02d", i)
	}
	// Comma lists, a repeated flag and a duplicate.
	id, errs := e.robotID("--robot", "helpdesk", "--user", strings.Join(users[:30], ","), "--user", strings.Join(users[30:], ","),
		"--user", "u03", "--text", "Your ticket is closed")
	if want := "queued " + id + ": 45 recipients, 1 duplicates removed, 3 batches"; !strings.Contains(errs, want) {
		t.Errorf("stderr %q lacks %q", errs, want)
	}
	if !strings.Contains(errs, "queueing batches") {
		t.Errorf("stderr lacks the progress bar: %q", errs)
	}
	if n := len(e.pending(producer.QueueDefault)); n != 0 {
		t.Errorf("%d tasks in %s, want none", n, producer.QueueDefault)
	}
	tasks := e.pending(producer.QueueBulk)
	if len(tasks) != 3 {
		t.Fatalf("%d tasks in %s, want 3", len(tasks), producer.QueueBulk)
	}
	var got []string
	for _, ti := range tasks {
		bp, err := producer.DecodeBatch(asynq.NewTask(ti.Type, ti.Payload))
		if err != nil {
			t.Fatal(err)
		}
		if ti.Type != producer.TypeBroadcastBatch || bp.ID != id || bp.Robot != "helpdesk" || bp.App != "hr" || bp.RobotMsg == nil ||
			bp.RobotMsg.MsgKey != "sampleText" || string(bp.RobotMsg.MsgParam) != `{"content":"Your ticket is closed"}` {
			t.Errorf("batch %s: %s %+v", ti.ID, ti.Type, bp)
		}
		if len(bp.UserIDs) > dingtalk.MaxRobotBatchUsers {
			t.Errorf("batch %s has %d users", bp.Batch, len(bp.UserIDs))
		}
		got = append(got, bp.UserIDs...)
	}
	slices.Sort(got)
	if !slices.Equal(got, users) {
		t.Errorf("users of the batches %q, want %q", got, users)
	}
}

func TestRobotCmdOneToOneForms(t *testing.T) {
	t.Parallel()
	e := newRobotEnv(t)
	check := func(wantKey, wantParam string, args ...string) {
		t.Helper()
		id, errs := e.robotID(append([]string{"--robot", "helpdesk", "--user", "u1", "--priority", "critical"}, args...)...)
		if want := "queued " + id + ": 1 recipients, 0 duplicates removed, 1 batch"; !strings.Contains(errs, want) {
			t.Errorf("stderr %q lacks %q", errs, want)
		}
		if strings.Contains(errs, "queueing batches") {
			t.Errorf("a progress bar for one batch: %q", errs)
		}
		for _, ti := range e.pending(producer.QueueCritical) {
			bp, err := producer.DecodeBatch(asynq.NewTask(ti.Type, ti.Payload))
			if err != nil {
				t.Fatal(err)
			}
			if bp.ID != id {
				continue
			}
			if bp.RobotMsg.MsgKey != wantKey || string(bp.RobotMsg.MsgParam) != wantParam {
				t.Errorf("%q: %s %s, want %s %s", args, bp.RobotMsg.MsgKey, bp.RobotMsg.MsgParam, wantKey, wantParam)
			}
			return
		}
		t.Errorf("%q: no batch of %s queued", args, id)
	}
	check("sampleMarkdown", `{"text":"**May** is out","title":"Payroll"}`, "--markdown-title", "Payroll", "--markdown", "**May** is out")
	check("sampleLink", `{"title":"R","text":"May","picUrl":"@x","messageUrl":"https://e.com"}`, "--msg-key", "sampleLink",
		"--msg-param", `{"title":"R","text":"May","picUrl":"@x","messageUrl":"https://e.com"}`)
}

func TestRobotCmdRefuses(t *testing.T) {
	t.Parallel()
	e := newRobotEnv(t)
	missing := filepath.Join(e.dir, "nope.json")
	unknown := filepath.Join(e.dir, "unknown.json")
	writeFile(t, unknown, `{"msgtype":"text","text":{"content":"hi","mentions":["u1"]}}`)
	for _, tc := range []struct {
		args []string
		err  []string // substrings of the error
	}{
		{[]string{"--text", "hi"}, []string{"--robot is required"}},
		{[]string{"--robot", "nope", "--text", "hi"}, []string{`--robot: unknown robot "nope"`, "alerts, helpdesk"}},
		{[]string{"--robot", "Bad Name", "--text", "hi"}, []string{`--robot: unknown robot "Bad Name"`}},
		{[]string{"--robot", "alerts"}, []string{"no message: give exactly one of --text"}},
		{[]string{"--robot", "alerts", "--text", "hi", "--markdown", "x"}, []string{"conflicting flags --text and --markdown"}},
		{[]string{"--robot", "alerts", "--msg", `{"msgtype":"text","text":{"content":"hi"}}`, "--msg-file", "-"}, []string{"conflicting flags --msg and --msg-file"}},
		{[]string{"--robot", "helpdesk", "--user", "u1", "--text", "hi", "--msg-key", "sampleText"}, []string{"conflicting flags --text and --msg-key"}},
		{[]string{"--robot", "alerts", "--msg", `{"msgtype":"text","text":{"content":"hi"},"robot":"alerts"}`}, []string{"--msg: ", `unknown field "robot"`}},
		{[]string{"--robot", "alerts", "--msg", `{"msgtype":"text","text":{"content":"hi"}} {}`}, []string{"--msg: ", "more after"}},
		{[]string{"--robot", "alerts", "--msg-file", missing}, []string{"--msg-file: ", "nope.json"}},
		{[]string{"--robot", "alerts", "--msg-file", unknown}, []string{"--msg-file: ", `unknown field "mentions"`}},
		{[]string{"--robot", "helpdesk", "--user", "u1", "--msg-file", "-"}, []string{`--msg-file: robot "helpdesk" is an enterprise robot`}},
		{[]string{"--robot", "alerts", "--msg", `{"msgtype":"link","link":{"title":"R","text":"x"}}`}, []string{"--msg (link.messageUrl): required"}},
		{[]string{"--robot", "alerts", "--msg", `{"msgtype":"link","link":{"title":"R","text":"x","messageUrl":"https://e.com"}}`, "--at-all"},
			[]string{"--at-all: mentions work in text and markdown"}},
		{[]string{"--robot", "alerts", "--msg", `{"msgtype":"text","text":{"content":"hi"},"at":{"isAtAll":true}}`, "--at-user", "u1"},
			[]string{`--at-user: the message of --msg mentions with its own "at"`}},
		{[]string{"--robot", "alerts", "--text", "  "}, []string{"--text: required"}},
		{[]string{"--robot", "alerts", "--markdown-title", "T"}, []string{"--markdown: required"}},
		{[]string{"--robot", "alerts", "--markdown", "x"}, []string{"--markdown-title: required"}},
		{[]string{"--robot", "alerts", "--text", "hi", "--priority", "urgent"}, []string{"--priority: unknown priority"}},
		{[]string{"--robot", "alerts", "--text", "hi", "--send-at", "tomorrow"}, []string{"--send-at: want an RFC 3339 time"}},
		{[]string{"--robot", "alerts", "--text", "hi", "--idempotency-key", "a b"}, []string{"--idempotency-key: "}},
		// Group robot flags on an enterprise robot, and the other way round.
		{[]string{"--robot", "alerts", "--text", "hi", "--user", "u1"}, []string{`--user: robot "alerts" is a custom group robot`}},
		{[]string{"--robot", "alerts", "--msg-key", "sampleText", "--msg-param", `{"content":"hi"}`}, []string{`--msg-key: robot "alerts" is a custom group robot`}},
		{[]string{"--robot", "helpdesk", "--user", "u1", "--msg", `{"msgtype":"text","text":{"content":"hi"}}`},
			[]string{`--msg: robot "helpdesk" is an enterprise robot`}},
		{[]string{"--robot", "helpdesk", "--user", "u1", "--text", "hi", "--at-mobile", "13800000000"},
			[]string{`--at-mobile: robot "helpdesk" is an enterprise robot`}},
		{[]string{"--robot", "helpdesk", "--user", "u1", "--text", "hi", "--at-all"}, []string{`--at-all: robot "helpdesk" is an enterprise robot`}},
		// An enterprise robot's message.
		{[]string{"--robot", "helpdesk", "--text", "hi"}, []string{"--user: required"}},
		{[]string{"--robot", "helpdesk", "--user", "u1,u 2", "--text", "hi"}, []string{"--user: ", `"u 2"`}},
		{[]string{"--robot", "helpdesk", "--user", "u1", "--msg-key", "sampleText"}, []string{"--msg-param: required"}},
		{[]string{"--robot", "helpdesk", "--user", "u1", "--msg-param", `{"content":"hi"}`}, []string{"--msg-key: required: one of"}},
		{[]string{"--robot", "helpdesk", "--user", "u1", "--msg-key", "bogus", "--msg-param", "{}"}, []string{`--msg-key: unknown "bogus"`}},
		{[]string{"--robot", "helpdesk", "--user", "u1", "--msg-key", "sampleMarkdown", "--msg-param", `{"title":"T"}`},
			[]string{"--msg-param (text): required by msgKey sampleMarkdown"}},
		{[]string{"--robot", "helpdesk", "--user", "u1", "--msg-key", "sampleText", "--msg-param", `{content}`}, []string{"--msg-param: not JSON"}},
		{[]string{"--robot", "helpdesk", "--user", "u1", "--markdown", "x"}, []string{"--markdown-title: required by msgKey sampleMarkdown"}},
	} {
		var out strings.Builder
		_, err := e.runCtx(context.Background(), &out, strings.NewReader(`{"msgtype":"text","text":{"content":"hi"}}`),
			append([]string{"robot", "send"}, tc.args...)...)
		if err == nil {
			t.Errorf("%q: no error, want %q", tc.args, tc.err)
		} else {
			for _, want := range tc.err {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%q: error %q, want %q", tc.args, err, want)
				}
			}
		}
		if out.Len() > 0 {
			t.Errorf("%q: stdout %q", tc.args, out.String())
		}
	}
	if keys := e.mr.Keys(); len(keys) > 0 {
		t.Errorf("refused messages wrote to Redis: %q", keys)
	}
}

// startRobotWait runs dingq robot send --wait args in the background and
// returns the message id it printed first, and a channel with the rest of
// stdout, stderr and the error once it ends.
func (e *testEnv) startRobotWait(args ...string) (string, <-chan [3]any) {
	e.t.Helper()
	return e.startWaiting(context.Background(), append([]string{"robot", "send", "--wait"}, args...)...)
}

func waitResult(t *testing.T, done <-chan [3]any) (out, errs string, err error) {
	t.Helper()
	select {
	case r := <-done:
		err, _ = r[2].(error)
		return r[0].(string), r[1].(string), err
	case <-time.After(10 * time.Second):
		t.Fatal("robot send --wait did not end")
	}
	return "", "", nil
}

func TestRobotCmdWaitGroup(t *testing.T) {
	t.Parallel()
	e := newRobotEnv(t)
	id, done := e.startRobotWait("--robot", "alerts", "--text", "hi")
	if _, errs, err := e.run("message", "cancel", id); err != nil {
		t.Fatalf("cancel: %v %s", err, errs)
	}
	out, errs, err := waitResult(t, done)
	var ee exitError
	if !errors.As(err, &ee) || ee != 2 {
		t.Fatalf("error %v, want exit status 2\n%s", err, errs)
	}
	var o producer.Outcome
	mustJSON(t, out, &o)
	if o.ID != id || o.Status != producer.StatusCanceled || o.Robot != "alerts" {
		t.Errorf("printed %s", out)
	}
	if !strings.Contains(errs, "canceled (attempts 0)") {
		t.Errorf("stderr lacks the progress: %q", errs)
	}

	// A timeout stops the waiting with an error.
	_, _, err = e.run("robot", "send", "--robot", "alerts", "--text", "again", "--wait", "--wait-timeout", "300ms")
	if err == nil || !strings.Contains(err.Error(), "still queued after 300ms") {
		t.Errorf("--wait-timeout: %v", err)
	}
}

func TestRobotCmdWaitOneToOne(t *testing.T) {
	t.Parallel()
	e := newRobotEnv(t)
	users := make([]string, 45)
	for i := range users {
		users[i] = fmt.Sprintf("u%02d", i)
	}
	id, done := e.startRobotWait("--robot", "helpdesk", "--user", strings.Join(users, ","), "--text", "hi")
	if _, errs, err := e.run("message", "cancel", id); err != nil {
		t.Fatalf("cancel: %v %s", err, errs)
	}
	e.cancelBatches(id)
	out, errs, err := waitResult(t, done)
	var ee exitError
	if !errors.As(err, &ee) || ee != 2 {
		t.Fatalf("error %v, want exit status 2\n%s", err, errs)
	}
	for _, want := range []string{"broadcast    " + id + "\n", "\nstatus       canceled\n", "\nbatches      3 (sent 0, failed 0, canceled 3)\n",
		"\nrecipients   45 (0 duplicates removed)\n", "\n  canceled   45\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errs, "queued "+id+": 45 recipients, 0 duplicates removed, 3 batches") {
		t.Errorf("stderr lacks the accepted summary:\n%s", errs)
	}
}
