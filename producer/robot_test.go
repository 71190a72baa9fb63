package producer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/producer"
	"github.com/hibiken/asynq"
)

// robotConfig knows two custom group robots (alerts, deploys) and two
// enterprise robots (hrbot of app hr, and ops of app ops: a robot named as
// an app).
func robotConfig() producer.Config {
	return producer.Config{Robots: map[string]producer.Robot{
		"alerts":  {},
		"deploys": {},
		"hrbot":   {App: "hr"},
		"ops":     {App: "ops"},
	}}
}

var allQueues = []string{producer.QueueCritical, producer.QueueDefault, producer.QueueBulk}

// queued returns every task of every lane, pending and scheduled.
func queued(t *testing.T, insp *asynq.Inspector) []*asynq.TaskInfo {
	t.Helper()
	var out []*asynq.TaskInfo
	for _, q := range allQueues {
		for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
			insp.ListPendingTasks, insp.ListScheduledTasks} {
			tasks, err := list(q, asynq.PageSize(1000))
			if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
				t.Fatalf("listing %s: %v", q, err)
			}
			out = append(out, tasks...)
		}
	}
	return out
}

// userIDs returns n user ids u0, u1…
func userIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("u%d", i)
	}
	return ids
}

func sampleText(content string) json.RawMessage {
	return json.RawMessage(`{"content":"` + content + `"}`)
}

func TestSendRobotGroup(t *testing.T) {
	p, insp, _ := setup(t, robotConfig())
	ctx := context.Background()
	msg := dingtalk.RobotTextMessage("disk full on db1")
	msg.At = &dingtalk.RobotAt{AtMobiles: []string{"13800000000"}}
	acc, err := p.SendRobot(ctx, &producer.RobotMessage{Robot: "alerts", Msg: msg})
	if err != nil {
		t.Fatalf("SendRobot: %v", err)
	}
	want := producer.Accepted{ID: acc.ID, Status: producer.StatusQueued, Recipients: 1}
	if acc.ID == "" || *acc != want {
		t.Errorf("Accepted: got %+v, want %+v", *acc, want)
	}

	tasks := queued(t, insp)
	if len(tasks) != 1 {
		t.Fatalf("tasks: got %d, want 1", len(tasks))
	}
	info := tasks[0]
	if info.ID != acc.ID || info.Type != producer.TypeRobotSend || info.Queue != producer.QueueDefault {
		t.Errorf("task: id %q type %q queue %q, want id %q type %q queue %q",
			info.ID, info.Type, info.Queue, acc.ID, producer.TypeRobotSend, producer.QueueDefault)
	}
	if info.MaxRetry != producer.DefaultMaxRetry {
		t.Errorf("task max retry: got %d, want %d", info.MaxRetry, producer.DefaultMaxRetry)
	}
	pl, err := producer.DecodeRobotSend(asynq.NewTask(info.Type, info.Payload))
	if err != nil {
		t.Fatalf("DecodeRobotSend: %v", err)
	}
	if pl.ID != acc.ID || pl.Robot != "alerts" || pl.Msg.MsgType != dingtalk.RobotText ||
		pl.Msg.Text == nil || pl.Msg.Text.Content != "disk full on db1" ||
		pl.Msg.At == nil || !slices.Equal(pl.Msg.At.AtMobiles, []string{"13800000000"}) {
		t.Errorf("payload: got %+v", pl)
	}
	// No webhook, token or secret travels in the task.
	for _, s := range []string{"access_token", "secret", "webhook"} {
		if strings.Contains(strings.ToLower(string(info.Payload)), s) {
			t.Errorf("payload %s: holds %q", info.Payload, s)
		}
	}

	o, err := p.Status(ctx, acc.ID)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if o.Kind != "robot" || o.Robot != "alerts" || o.App != "" ||
		o.Broadcast != nil || o.Recipients != 1 || o.Status != producer.StatusQueued {
		t.Errorf("outcome: got kind %q robot %q app %q broadcast %v recipients %d status %q, "+
			"want kind robot, robot alerts, no app, no broadcast, 1 recipient, queued",
			o.Kind, o.Robot, o.App, o.Broadcast, o.Recipients, o.Status)
	}
}

func TestSendRobotEnterprise(t *testing.T) {
	tests := []struct {
		name        string
		users       []string
		wantUsers   []string // distinct, in order
		wantDups    int
		wantBatches int
	}{
		{name: "one user", users: []string{"u1"}, wantUsers: []string{"u1"}, wantBatches: 1},
		{name: "20 users, one batch", users: userIDs(20), wantUsers: userIDs(20), wantBatches: 1},
		{name: "21 users, two batches", users: userIDs(21), wantUsers: userIDs(21), wantBatches: 2},
		{name: "45 users, three batches", users: userIDs(45), wantUsers: userIDs(45), wantBatches: 3},
		{name: "40 users and 5 repeats, two batches", users: append(userIDs(40), "u3", "u0", "u39", "u3", "u3"),
			wantUsers: userIDs(40), wantDups: 5, wantBatches: 2},
		{name: "repeats only", users: []string{"u1", "u1", "u1"}, wantUsers: []string{"u1"}, wantDups: 2, wantBatches: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, insp, _ := setup(t, robotConfig())
			ctx := context.Background()
			m := &producer.RobotMessage{Robot: "hrbot", UserIDs: tt.users, MsgKey: "sampleText", MsgParam: sampleText("pay day")}
			acc, err := p.SendRobot(ctx, m)
			if err != nil {
				t.Fatalf("SendRobot: %v", err)
			}
			want := producer.Accepted{ID: acc.ID, Status: producer.StatusQueued, Recipients: len(tt.wantUsers),
				Duplicates: tt.wantDups, Batches: tt.wantBatches}
			if acc.ID == "" || *acc != want {
				t.Errorf("Accepted: got %+v, want %+v", *acc, want)
			}

			tasks := queued(t, insp)
			if len(tasks) != tt.wantBatches {
				t.Fatalf("tasks: got %d, want %d", len(tasks), tt.wantBatches)
			}
			batches := map[string][]string{}
			for _, info := range tasks {
				if info.Type != producer.TypeBroadcastBatch || info.Queue != producer.QueueBulk {
					t.Errorf("task %s: type %q queue %q, want %q on %q", info.ID, info.Type, info.Queue,
						producer.TypeBroadcastBatch, producer.QueueBulk)
				}
				bp, err := producer.DecodeBatch(asynq.NewTask(info.Type, info.Payload))
				if err != nil {
					t.Fatalf("DecodeBatch: %v", err)
				}
				if info.ID != producer.BatchTaskID(acc.ID, bp.Batch) {
					t.Errorf("task id: got %q, want %q", info.ID, producer.BatchTaskID(acc.ID, bp.Batch))
				}
				if bp.ID != acc.ID || bp.App != "hr" || bp.Robot != "hrbot" || len(bp.DeptIDs) != 0 {
					t.Errorf("batch %s: id %q app %q robot %q depts %v, want id %q app hr robot hrbot no depts",
						bp.Batch, bp.ID, bp.App, bp.Robot, bp.DeptIDs, acc.ID)
				}
				if bp.RobotMsg == nil || bp.RobotMsg.MsgKey != "sampleText" ||
					string(bp.RobotMsg.MsgParam) != `{"content":"pay day"}` {
					t.Errorf("batch %s: robot message %+v, want sampleText {\"content\":\"pay day\"}", bp.Batch, bp.RobotMsg)
				}
				if n := len(bp.UserIDs); n == 0 || n > dingtalk.MaxRobotBatchUsers {
					t.Errorf("batch %s: %d users, want 1 to %d", bp.Batch, n, dingtalk.MaxRobotBatchUsers)
				}
				if _, dup := batches[bp.Batch]; dup {
					t.Errorf("batch %s queued twice", bp.Batch)
				}
				batches[bp.Batch] = bp.UserIDs
			}
			var got []string
			for i := range tt.wantBatches {
				got = append(got, batches[fmt.Sprint(i)]...)
			}
			if !slices.Equal(got, tt.wantUsers) {
				t.Errorf("users of batches 0…%d: got %v, want %v", tt.wantBatches-1, got, tt.wantUsers)
			}

			o, err := p.Status(ctx, acc.ID)
			if err != nil {
				t.Fatalf("Status: %v", err)
			}
			if o.Broadcast == nil {
				t.Fatalf("outcome %+v: no broadcast, want one", o)
			}
			if o.Robot != "hrbot" || o.App != "hr" || o.Recipients != len(tt.wantUsers) || o.Status != producer.StatusQueued {
				t.Errorf("outcome: robot %q app %q recipients %d status %q, want robot hrbot app hr recipients %d queued",
					o.Robot, o.App, o.Recipients, o.Status, len(tt.wantUsers))
			}
			b := o.Broadcast
			if b.Batches.Total != tt.wantBatches || b.Batches.Queued != tt.wantBatches ||
				b.Recipients.Total != len(tt.wantUsers) || b.Recipients.Duplicates != tt.wantDups {
				t.Errorf("broadcast: batches %+v recipients %+v, want %d batches queued, %d recipients, %d duplicates",
					b.Batches, b.Recipients, tt.wantBatches, len(tt.wantUsers), tt.wantDups)
			}
		})
	}
}

func TestSendRobotLanes(t *testing.T) {
	tests := []struct {
		name      string
		msg       producer.RobotMessage
		wantQueue string
	}{
		{name: "group, no priority", msg: producer.RobotMessage{Robot: "alerts", Msg: dingtalk.RobotTextMessage("x")},
			wantQueue: producer.QueueDefault},
		{name: "group, critical", msg: producer.RobotMessage{Robot: "alerts", Msg: dingtalk.RobotTextMessage("x"),
			Priority: producer.PriorityCritical}, wantQueue: producer.QueueCritical},
		{name: "group, bulk", msg: producer.RobotMessage{Robot: "alerts", Msg: dingtalk.RobotTextMessage("x"),
			Priority: producer.PriorityBulk}, wantQueue: producer.QueueBulk},
		{name: "enterprise, no priority", msg: producer.RobotMessage{Robot: "hrbot", UserIDs: []string{"u1"},
			MsgKey: "sampleText", MsgParam: sampleText("x")}, wantQueue: producer.QueueBulk},
		{name: "enterprise, critical", msg: producer.RobotMessage{Robot: "hrbot", UserIDs: userIDs(30),
			MsgKey: "sampleText", MsgParam: sampleText("x"), Priority: producer.PriorityCritical}, wantQueue: producer.QueueCritical},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, insp, _ := setup(t, robotConfig())
			acc, err := p.SendRobot(context.Background(), &tt.msg)
			if err != nil {
				t.Fatalf("SendRobot: %v", err)
			}
			tasks := queued(t, insp)
			if want := max(acc.Batches, 1); len(tasks) != want {
				t.Fatalf("tasks: got %d, want %d", len(tasks), want)
			}
			for _, info := range tasks {
				if info.Queue != tt.wantQueue {
					t.Errorf("task %s: queue %q, want %q", info.ID, info.Queue, tt.wantQueue)
				}
			}
		})
	}
}

func TestSendRobotSendAt(t *testing.T) {
	at := time.Now().Add(time.Hour).Add(300 * time.Millisecond)
	tests := []struct {
		name string
		msg  producer.RobotMessage
	}{
		{name: "group", msg: producer.RobotMessage{Robot: "alerts", Msg: dingtalk.RobotTextMessage("later"), SendAt: at}},
		{name: "enterprise", msg: producer.RobotMessage{Robot: "hrbot", UserIDs: userIDs(25), MsgKey: "sampleText",
			MsgParam: sampleText("later"), SendAt: at}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, insp, _ := setup(t, robotConfig())
			acc, err := p.SendRobot(context.Background(), &tt.msg)
			if err != nil {
				t.Fatalf("SendRobot: %v", err)
			}
			tasks := queued(t, insp)
			if len(tasks) == 0 {
				t.Fatal("no task queued")
			}
			for _, info := range tasks {
				if info.State != asynq.TaskStateScheduled || info.NextProcessAt.Before(at) {
					t.Errorf("task %s: %v at %v, want scheduled no earlier than %v", info.ID, info.State, info.NextProcessAt, at)
				}
			}
			o, err := p.Status(context.Background(), acc.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !o.SendAt.Equal(at.Truncate(time.Millisecond)) {
				t.Errorf("outcome send_at: got %v, want %v", o.SendAt, at)
			}
		})
	}
}

func TestSendRobotRefusesBadInput(t *testing.T) {
	text := dingtalk.RobotTextMessage("x")
	tests := []struct {
		name  string
		msg   producer.RobotMessage
		field string
	}{
		{name: "no robot", msg: producer.RobotMessage{Msg: text}, field: "robot"},
		{name: "robot name upper case", msg: producer.RobotMessage{Robot: "Alerts", Msg: text}, field: "robot"},
		{name: "robot name with colon", msg: producer.RobotMessage{Robot: "alerts:x", Msg: text}, field: "robot"},
		{name: "unknown robot", msg: producer.RobotMessage{Robot: "nope", Msg: text}, field: "robot"},
		{name: "an app is not a robot", msg: producer.RobotMessage{Robot: "hr", UserIDs: []string{"u1"},
			MsgKey: "sampleText", MsgParam: sampleText("x")}, field: "robot"},
		{name: "neither form", msg: producer.RobotMessage{Robot: "alerts"}, field: "msg"},
		{name: "both forms", msg: producer.RobotMessage{Robot: "alerts", Msg: text, UserIDs: []string{"u1"},
			MsgKey: "sampleText", MsgParam: sampleText("x")}, field: "msg"},
		{name: "msg and msgKey", msg: producer.RobotMessage{Robot: "alerts", Msg: text, MsgKey: "sampleText"}, field: "msg"},
		{name: "userIds for a group robot", msg: producer.RobotMessage{Robot: "alerts", UserIDs: []string{"u1"},
			MsgKey: "sampleText", MsgParam: sampleText("x")}, field: "userIds"},
		{name: "msg for an enterprise robot", msg: producer.RobotMessage{Robot: "hrbot", Msg: text}, field: "msg"},
		{name: "enterprise without userIds", msg: producer.RobotMessage{Robot: "hrbot", MsgKey: "sampleText",
			MsgParam: sampleText("x")}, field: "userIds"},
		{name: "group text empty", msg: producer.RobotMessage{Robot: "alerts", Msg: dingtalk.RobotTextMessage(" ")},
			field: "msg.text.content"},
		{name: "group msgtype unknown", msg: producer.RobotMessage{Robot: "alerts",
			Msg: &dingtalk.RobotMessage{MsgType: "oa"}}, field: "msg.msgtype"},
		{name: "group markdown without title", msg: producer.RobotMessage{Robot: "alerts",
			Msg: dingtalk.RobotMarkdownMessage("", "# x")}, field: "msg.markdown.title"},
		{name: "msgKey missing", msg: producer.RobotMessage{Robot: "hrbot", UserIDs: []string{"u1"},
			MsgParam: sampleText("x")}, field: "msgKey"},
		{name: "msgKey unknown", msg: producer.RobotMessage{Robot: "hrbot", UserIDs: []string{"u1"},
			MsgKey: "sampleSMS", MsgParam: sampleText("x")}, field: "msgKey"},
		{name: "msgParam missing", msg: producer.RobotMessage{Robot: "hrbot", UserIDs: []string{"u1"},
			MsgKey: "sampleText"}, field: "msgParam"},
		{name: "msgParam an array", msg: producer.RobotMessage{Robot: "hrbot", UserIDs: []string{"u1"},
			MsgKey: "sampleText", MsgParam: json.RawMessage(`[1]`)}, field: "msgParam"},
		{name: "msgParam without content", msg: producer.RobotMessage{Robot: "hrbot", UserIDs: []string{"u1"},
			MsgKey: "sampleText", MsgParam: json.RawMessage(`{"text":"x"}`)}, field: "msgParam.content"},
		{name: "msgParam string without title", msg: producer.RobotMessage{Robot: "hrbot", UserIDs: []string{"u1"},
			MsgKey: "sampleMarkdown", MsgParam: json.RawMessage(`"{\"text\":\"# x\"}"`)}, field: "msgParam.title"},
		{name: "user id with comma", msg: producer.RobotMessage{Robot: "hrbot", UserIDs: []string{"u1", "u2,u3"},
			MsgKey: "sampleText", MsgParam: sampleText("x")}, field: "userIds[1]"},
		{name: "user id empty", msg: producer.RobotMessage{Robot: "hrbot", UserIDs: []string{""},
			MsgKey: "sampleText", MsgParam: sampleText("x")}, field: "userIds[0]"},
		{name: "more users than Config.MaxRecipients", msg: producer.RobotMessage{Robot: "hrbot", UserIDs: userIDs(31),
			MsgKey: "sampleText", MsgParam: sampleText("x")}, field: "userIds"},
		{name: "group, unknown priority", msg: producer.RobotMessage{Robot: "alerts", Msg: text, Priority: "urgent"},
			field: "priority"},
		{name: "enterprise, unknown priority", msg: producer.RobotMessage{Robot: "hrbot", UserIDs: []string{"u1"},
			MsgKey: "sampleText", MsgParam: sampleText("x"), Priority: "urgent"}, field: "priority"},
		{name: "idempotency key with a space", msg: producer.RobotMessage{Robot: "alerts", Msg: text,
			IdempotencyKey: "a b"}, field: "idempotency_key"},
		{name: "idempotency key too long", msg: producer.RobotMessage{Robot: "hrbot", UserIDs: []string{"u1"},
			MsgKey: "sampleText", MsgParam: sampleText("x"), IdempotencyKey: strings.Repeat("k", 256)}, field: "idempotency_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := robotConfig()
			cfg.MaxRecipients = 30
			p, _, mr := setup(t, cfg)
			acc, err := p.SendRobot(context.Background(), &tt.msg)
			var ve *dingtalk.ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field {
				t.Errorf("SendRobot: got %+v, %v, want a ValidationError naming %s", acc, err, tt.field)
			}
			if keys := mr.Keys(); len(keys) != 0 {
				t.Errorf("redis keys written: %v, want none", keys)
			}
		})
	}
}

// TestRobotMessageValidate: Validate knows no robots, only the message's
// shape.
func TestRobotMessageValidate(t *testing.T) {
	tests := []struct {
		name  string
		msg   producer.RobotMessage
		field string // "" for valid
	}{
		{name: "group text", msg: producer.RobotMessage{Robot: "any", Msg: dingtalk.RobotTextMessage("x")}},
		{name: "group feed card", msg: producer.RobotMessage{Robot: "any", Msg: &dingtalk.RobotMessage{MsgType: dingtalk.RobotFeedCard,
			FeedCard: &dingtalk.RobotFeedBody{Links: []dingtalk.RobotFeedLink{{Title: "t", MessageURL: "https://e.com", PicURL: "https://e.com/p.png"}}}}}},
		{name: "enterprise sampleText", msg: producer.RobotMessage{Robot: "any", UserIDs: []string{"u1"},
			MsgKey: "sampleText", MsgParam: sampleText("x")}},
		{name: "enterprise msgParam as a string", msg: producer.RobotMessage{Robot: "any", UserIDs: []string{"u1"},
			MsgKey: "sampleMarkdown", MsgParam: json.RawMessage(`"{\"title\":\"t\",\"text\":\"# x\"}"`)}},
		{name: "feed card link without picURL", msg: producer.RobotMessage{Robot: "any", Msg: &dingtalk.RobotMessage{MsgType: dingtalk.RobotFeedCard,
			FeedCard: &dingtalk.RobotFeedBody{Links: []dingtalk.RobotFeedLink{{Title: "t", MessageURL: "https://e.com"}}}}},
			field: "msg.feedCard.links[0].picURL"},
		{name: "at in a link", msg: producer.RobotMessage{Robot: "any", Msg: &dingtalk.RobotMessage{MsgType: dingtalk.RobotLink,
			Link: &dingtalk.RobotLinkBody{Title: "t", Text: "x", MessageURL: "https://e.com"}, At: &dingtalk.RobotAt{IsAtAll: true}}},
			field: "msg.at"},
		// A JSON null is no value (as userIds null is no list): not an
		// enterprise robot's msgParam beside a group robot's msg.
		{name: "group text, msgParam null", msg: producer.RobotMessage{Robot: "any", Msg: dingtalk.RobotTextMessage("x"),
			MsgParam: json.RawMessage(`null`)}},
		{name: "robot name 65 characters", msg: producer.RobotMessage{Robot: strings.Repeat("a", 65), Msg: dingtalk.RobotTextMessage("x")},
			field: "robot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.msg.Validate()
			if tt.field == "" {
				if err != nil {
					t.Errorf("Validate: got %v, want nil", err)
				}
				return
			}
			var ve *dingtalk.ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field {
				t.Errorf("Validate: got %v, want a ValidationError naming %s", err, tt.field)
			}
		})
	}
}

// TestRobotMessageJSON: the body of POST /v1/robot-messages keeps
// DingTalk's names for DingTalk's parts.
func TestRobotMessageJSON(t *testing.T) {
	const body = `{"robot":"hrbot","userIds":["u1","u2"],"msgKey":"sampleText","msgParam":{"content":"hi"},` +
		`"idempotency_key":"k1","send_at":"2099-01-01T00:00:00Z","priority":"critical"}`
	var m producer.RobotMessage
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decoding: %v", err)
	}
	if m.Robot != "hrbot" || !slices.Equal(m.UserIDs, []string{"u1", "u2"}) || m.MsgKey != "sampleText" ||
		string(m.MsgParam) != `{"content":"hi"}` || m.IdempotencyKey != "k1" || m.Priority != producer.PriorityCritical ||
		!m.SendAt.Equal(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)) || m.Msg != nil {
		t.Errorf("decoded %+v", m)
	}
	b, err := json.Marshal(&producer.RobotMessage{Robot: "alerts", Msg: dingtalk.RobotTextMessage("x")})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"robot":"alerts","msg":{"msgtype":"text","text":{"content":"x"}}}`; string(b) != want {
		t.Errorf("encoded %s, want %s", b, want)
	}
}

func TestSendRobotIdempotency(t *testing.T) {
	ctx := context.Background()
	group := func(content string) *producer.RobotMessage {
		return &producer.RobotMessage{Robot: "alerts", Msg: dingtalk.RobotTextMessage(content), IdempotencyKey: "incident-7"}
	}
	oto := func(users []string, content string) *producer.RobotMessage {
		return &producer.RobotMessage{Robot: "hrbot", UserIDs: users, MsgKey: "sampleText", MsgParam: sampleText(content),
			IdempotencyKey: "payroll-11"}
	}

	t.Run("group robot, same message", func(t *testing.T) {
		p, insp, _ := setup(t, robotConfig())
		first, err := p.SendRobot(ctx, group("down"))
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			again, err := p.SendRobot(ctx, group("down"))
			if err != nil || again.ID != first.ID {
				t.Fatalf("repeat: %+v %v, want id %q", again, err, first.ID)
			}
		}
		if n := len(queued(t, insp)); n != 1 {
			t.Errorf("tasks: got %d, want 1", n)
		}
	})
	t.Run("group robot, other message", func(t *testing.T) {
		p, insp, _ := setup(t, robotConfig())
		if _, err := p.SendRobot(ctx, group("down")); err != nil {
			t.Fatal(err)
		}
		if acc, err := p.SendRobot(ctx, group("up again")); !errors.Is(err, producer.ErrIdempotencyConflict) {
			t.Errorf("same key, other text: %+v %v, want ErrIdempotencyConflict", acc, err)
		}
		later := group("down")
		later.SendAt = time.Now().Add(time.Hour)
		if acc, err := p.SendRobot(ctx, later); !errors.Is(err, producer.ErrIdempotencyConflict) {
			t.Errorf("same key, other send_at: %+v %v, want ErrIdempotencyConflict", acc, err)
		}
		if n := len(queued(t, insp)); n != 1 {
			t.Errorf("tasks: got %d, want 1", n)
		}
	})
	t.Run("group robot, task lost before it was marked enqueued", func(t *testing.T) {
		p, insp, mr := setup(t, robotConfig())
		first, err := p.SendRobot(ctx, group("down"))
		if err != nil {
			t.Fatal(err)
		}
		if err := insp.DeleteTask(producer.QueueDefault, first.ID); err != nil {
			t.Fatal(err)
		}
		mr.HDel("dingq:msg:{"+first.ID+"}", "enqueued")
		again, err := p.SendRobot(ctx, group("down"))
		if err != nil || again.ID != first.ID {
			t.Fatalf("retry: %+v %v", again, err)
		}
		if _, err := insp.GetTaskInfo(producer.QueueDefault, first.ID); err != nil {
			t.Errorf("task not queued again: %v", err)
		}
	})
	t.Run("enterprise robot, same message", func(t *testing.T) {
		p, insp, _ := setup(t, robotConfig())
		first, err := p.SendRobot(ctx, oto(userIDs(45), "pay day"))
		if err != nil {
			t.Fatal(err)
		}
		again, err := p.SendRobot(ctx, oto(userIDs(45), "pay day"))
		if err != nil || *again != *first {
			t.Fatalf("repeat: %+v %v, want %+v", again, err, first)
		}
		if n := len(queued(t, insp)); n != 3 {
			t.Errorf("tasks: got %d, want 3", n)
		}
	})
	t.Run("enterprise robot, other message", func(t *testing.T) {
		p, insp, _ := setup(t, robotConfig())
		if _, err := p.SendRobot(ctx, oto(userIDs(45), "pay day")); err != nil {
			t.Fatal(err)
		}
		for name, m := range map[string]*producer.RobotMessage{
			"other text":  oto(userIDs(45), "no pay day"),
			"other users": oto(userIDs(46), "pay day"),
		} {
			if acc, err := p.SendRobot(ctx, m); !errors.Is(err, producer.ErrIdempotencyConflict) {
				t.Errorf("same key, %s: %+v %v, want ErrIdempotencyConflict", name, acc, err)
			}
		}
		if n := len(queued(t, insp)); n != 3 {
			t.Errorf("tasks: got %d, want 3", n)
		}
	})
	t.Run("keys are per robot and apart from the apps'", func(t *testing.T) {
		p, insp, _ := setup(t, robotConfig())
		ids := map[string]string{}
		add := func(what, id string, err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			for w, other := range ids {
				if other == id {
					t.Errorf("%s got the id of %s (%s): the same key collided", what, w, id)
				}
			}
			ids[what] = id
		}
		const key = "k-1"
		a, err := p.SendRobot(ctx, &producer.RobotMessage{Robot: "alerts", Msg: dingtalk.RobotTextMessage("x"), IdempotencyKey: key})
		add("robot alerts", a.ID, err)
		a, err = p.SendRobot(ctx, &producer.RobotMessage{Robot: "deploys", Msg: dingtalk.RobotTextMessage("y"), IdempotencyKey: key})
		add("robot deploys", a.ID, err)
		a, err = p.SendRobot(ctx, &producer.RobotMessage{Robot: "ops", UserIDs: []string{"u1"}, MsgKey: "sampleText",
			MsgParam: sampleText("z"), IdempotencyKey: key})
		add("robot ops", a.ID, err)
		id, err := p.Send(ctx, &producer.Message{App: "ops", UserIDs: []string{"u1"}, Msg: dingtalk.TextMessage("w"), IdempotencyKey: key})
		add("app ops", id, err)
		id, err = p.Send(ctx, &producer.Message{App: "alerts", UserIDs: []string{"u1"}, Msg: dingtalk.TextMessage("v"), IdempotencyKey: key})
		add("app alerts", id, err)
		if n := len(queued(t, insp)); n != 5 {
			t.Errorf("tasks: got %d, want 5", n)
		}
		// And each still answers its own repeat.
		again, err := p.SendRobot(ctx, &producer.RobotMessage{Robot: "ops", UserIDs: []string{"u1"}, MsgKey: "sampleText",
			MsgParam: sampleText("z"), IdempotencyKey: key})
		if err != nil || again.ID != ids["robot ops"] {
			t.Errorf("repeat on robot ops: %+v %v, want id %s", again, err, ids["robot ops"])
		}
	})
}

// TestSendRobotLeavesNoRecordWhenEnqueueFails: as Send, a group robot's
// message whose task cannot be queued leaves no record saying queued.
func TestSendRobotLeavesNoRecordWhenEnqueueFails(t *testing.T) {
	p, _, mr := setup(t, robotConfig())
	if err := mr.Set("asynq:{"+producer.QueueDefault+"}:pending", "broken"); err != nil {
		t.Fatal(err)
	}
	acc, err := p.SendRobot(context.Background(), &producer.RobotMessage{Robot: "alerts", Msg: dingtalk.RobotTextMessage("x")})
	if err == nil {
		t.Fatalf("SendRobot with the queue broken: %+v, want an error", acc)
	}
	for _, k := range mr.Keys() {
		if strings.HasPrefix(k, "dingq:") {
			t.Errorf("SendRobot failed (%v) and left %s", err, k)
		}
	}
}

func TestRecallRobot(t *testing.T) {
	p, insp, _ := setup(t, robotConfig())
	ctx := context.Background()
	g, err := p.SendRobot(ctx, &producer.RobotMessage{Robot: "alerts", Msg: dingtalk.RobotTextMessage("x")})
	if err != nil {
		t.Fatal(err)
	}
	e, err := p.SendRobot(ctx, &producer.RobotMessage{Robot: "hrbot", UserIDs: userIDs(25), MsgKey: "sampleText",
		MsgParam: sampleText("x")})
	if err != nil {
		t.Fatal(err)
	}
	before := len(queued(t, insp))
	for name, id := range map[string]string{"group": g.ID, "enterprise": e.ID} {
		if o, err := p.Recall(ctx, id); !errors.Is(err, producer.ErrRobotRecall) {
			t.Errorf("Recall of the %s robot's message: %+v %v, want ErrRobotRecall", name, o, err)
		}
	}
	if after := len(queued(t, insp)); after != before {
		t.Errorf("tasks: %d after Recall, want %d", after, before)
	}
}

// TestSendRobotConfigIsCopied: New keeps its own copy of Config.Robots.
func TestSendRobotConfigIsCopied(t *testing.T) {
	cfg := robotConfig()
	p, _, _ := setup(t, cfg)
	delete(cfg.Robots, "alerts")
	cfg.Robots["hrbot"] = producer.Robot{}
	ctx := context.Background()
	if _, err := p.SendRobot(ctx, &producer.RobotMessage{Robot: "alerts", Msg: dingtalk.RobotTextMessage("x")}); err != nil {
		t.Errorf("alerts after the caller's map changed: %v", err)
	}
	if _, err := p.SendRobot(ctx, &producer.RobotMessage{Robot: "hrbot", UserIDs: []string{"u1"}, MsgKey: "sampleText",
		MsgParam: sampleText("x")}); err != nil {
		t.Errorf("hrbot after the caller's map changed: %v", err)
	}
}

// TestRobotMessageActions: a group robot's message is a single message (it
// cancels, it does not pause); an enterprise robot's is a broadcast, whose
// cancel is counted under its app.
func TestRobotMessageActions(t *testing.T) {
	p, insp, _ := setup(t, robotConfig())
	ctx := context.Background()
	g, err := p.SendRobot(ctx, &producer.RobotMessage{Robot: "alerts", Msg: dingtalk.RobotTextMessage("x")})
	if err != nil {
		t.Fatal(err)
	}
	if o, err := p.Pause(ctx, g.ID); !errors.Is(err, producer.ErrNotBroadcast) {
		t.Errorf("Pause of a group robot's message: %+v %v, want ErrNotBroadcast", o, err)
	}
	if o, err := p.Cancel(ctx, g.ID); err != nil || o.Status != producer.StatusCanceled || o.Robot != "alerts" {
		t.Errorf("Cancel of a group robot's message: %+v %v, want it canceled", o, err)
	}

	e, err := p.SendRobot(ctx, &producer.RobotMessage{Robot: "hrbot", UserIDs: userIDs(25), MsgKey: "sampleText",
		MsgParam: sampleText("x")})
	if err != nil {
		t.Fatal(err)
	}
	if o, err := p.Pause(ctx, e.ID); err != nil || o.Status != producer.StatusPaused {
		t.Errorf("Pause of an enterprise robot's message: %+v %v, want it paused", o, err)
	}
	o, err := p.Cancel(ctx, e.ID)
	if err != nil || o.Status != producer.StatusCanceled || o.Robot != "hrbot" || o.App != "hr" {
		t.Fatalf("Cancel of an enterprise robot's message: %+v %v, want it canceled", o, err)
	}
	var counts []producer.BroadcastCanceledPayload
	for _, ti := range queued(t, insp) {
		if ti.Type == producer.TypeBroadcastCanceled {
			c, err := producer.DecodeBroadcastCanceled(asynq.NewTask(ti.Type, ti.Payload))
			if err != nil {
				t.Fatal(err)
			}
			counts = append(counts, *c)
		}
	}
	if want := []producer.BroadcastCanceledPayload{{ID: e.ID, App: "hr"}}; !slices.Equal(counts, want) {
		t.Errorf("count tasks: got %+v, want %+v", counts, want)
	}
}

// TestSendRobotProgress: WithProgress follows an enterprise robot's
// batches as they are queued.
func TestSendRobotProgress(t *testing.T) {
	p, _, _ := setup(t, robotConfig())
	var mu sync.Mutex
	var done []int
	total := 0
	acc, err := p.SendRobot(context.Background(), &producer.RobotMessage{Robot: "hrbot", UserIDs: userIDs(95),
		MsgKey: "sampleText", MsgParam: sampleText("x")}, producer.WithProgress(func(d, n int) {
		mu.Lock()
		defer mu.Unlock()
		done = append(done, d)
		total = n
	}))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(done)
	if acc.Batches != 5 || total != 5 || !slices.Equal(done, []int{1, 2, 3, 4, 5}) {
		t.Errorf("batches %d, progress %v of %d, want 1…5 of 5", acc.Batches, done, total)
	}
}
