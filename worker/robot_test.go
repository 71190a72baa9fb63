package worker_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/dingtalk/fake"
	"github.com/dingq/dingq/internal/outcome"
	"github.com/dingq/dingq/internal/ratelimit"
	"github.com/dingq/dingq/producer"
	"github.com/dingq/dingq/worker"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

func (e *env) sendRobot(t *testing.T, m *producer.RobotMessage) *producer.Accepted {
	t.Helper()
	acc, err := e.producer.SendRobot(context.Background(), m)
	if err != nil {
		t.Fatalf("SendRobot: %v", err)
	}
	return acc
}

// robotCalls counts the fake's answers to /robot/send by errcode.
func robotCalls(fk *fake.Server) map[int]int {
	n := map[int]int{}
	for _, c := range fk.Calls() {
		if c.Path == dingtalk.PathRobotSend {
			n[c.ErrCode]++
		}
	}
	return n
}

func TestRobotSendSigned(t *testing.T) {
	hook := dingtalk.Robot{Token: "robot-token-1", Secret: "SECrobot-secret-1"}
	e := setup(t, opts{robots: []worker.Robot{{Name: "alerts", Webhooks: []dingtalk.Robot{hook}}}})
	msg := dingtalk.RobotTextMessage("disk full on db-1")
	msg.At = &dingtalk.RobotAt{AtMobiles: []string{"13800000000"}}
	acc := e.sendRobot(t, &producer.RobotMessage{Robot: "alerts", Msg: msg})
	o := e.wait(t, acc.ID)
	if o.Status != producer.StatusSent || o.Attempts != 1 || o.Kind != producer.KindRobot || o.Robot != "alerts" || o.App != "" {
		t.Fatalf("outcome %+v, want sent at the first attempt, kind robot, robot alerts, no app", o)
	}
	sent := e.fake.RobotSent()
	if len(sent) != 1 {
		t.Fatalf("the robot took %d messages, want 1", len(sent))
	}
	m := sent[0].Message
	if sent[0].Robot != hook.Token || m.Text.Content != "disk full on db-1" || m.MsgUUID != acc.ID ||
		m.At == nil || len(m.At.AtMobiles) != 1 {
		t.Errorf("the robot took %+v through %q, want the text with its mention and msgUuid %s", m, sent[0].Robot, acc.ID)
	}
	// A message that names its own msgUuid keeps it.
	msg = dingtalk.RobotTextMessage("second")
	msg.MsgUUID = "caller-uuid-7"
	acc = e.sendRobot(t, &producer.RobotMessage{Robot: "alerts", Msg: msg})
	e.wait(t, acc.ID)
	if sent := e.fake.RobotSent(); len(sent) != 2 || sent[1].Message.MsgUUID != "caller-uuid-7" {
		t.Errorf("second message: %+v, want msgUuid caller-uuid-7", sent)
	}
}

// TestRobotBlockedWebhookRests: a webhook DingTalk blocked (someone else
// sent through it too fast) gets one call of dingq, which then holds it
// for the fleet and sends through the group's other webhook.
func TestRobotBlockedWebhookRests(t *testing.T) {
	a := dingtalk.Robot{Token: "robot-token-a", Secret: "SECrobot-a"}
	b := dingtalk.Robot{Token: "robot-token-b", Secret: "SECrobot-b"}
	e := setup(t, opts{fake: &fake.Options{RobotWindow: time.Second},
		robots: []worker.Robot{{Name: "pair", Webhooks: []dingtalk.Robot{a, b},
			RateLimit: worker.RobotLimit{Messages: 20, Per: time.Second}}}})
	ctx := context.Background()
	// Another sender fills webhook a's window and gets it blocked.
	for i := range dingtalk.RobotMessagesPerMinute + 1 {
		err := e.client.SendRobot(ctx, a, dingtalk.RobotTextMessage(fmt.Sprintf("other %d", i)))
		if (err != nil) != (i == dingtalk.RobotMessagesPerMinute) {
			t.Fatalf("direct send %d: %v", i, err)
		}
	}
	// One by one, until a message that starts with webhook a has hit the
	// block, and five more.
	hit, after := "", 0
	for i := 0; i < 40 && after < 5; i++ {
		acc := e.sendRobot(t, &producer.RobotMessage{Robot: "pair", Msg: dingtalk.RobotTextMessage(fmt.Sprintf("m %d", i))})
		o := e.wait(t, acc.ID)
		if o.Status != producer.StatusSent {
			t.Fatalf("message %d: %s (%+v), want sent", i, o.Status, o.LastError)
		}
		switch {
		case hit != "":
			after++
		case o.Attempts == 2 && o.LastError != nil && o.LastError.Code == 410100:
			hit = acc.ID
		case o.Attempts != 1:
			t.Fatalf("message %d: %d attempts (%+v), want 1, or 2 after the block", i, o.Attempts, o.LastError)
		}
	}
	if hit == "" {
		t.Fatal("no message started with webhook a in 40: the block was never met")
	}
	if calls := robotCalls(e.fake); calls[410100] != 2 {
		t.Errorf("calls answered 410100: got %d, want 2 (the other sender's and dingq's first)", calls[410100])
	}
	for _, s := range e.fake.RobotSent() {
		if s.Robot == a.Token && strings.HasPrefix(s.Message.Text.Content, "m ") {
			t.Errorf("webhook a took %q while blocked", s.Message.Text.Content)
		}
	}
}

func TestRobotUnknownFails(t *testing.T) {
	e := setup(t, opts{})
	task, err := producer.NewRobotSendTask(&producer.RobotSendPayload{ID: "m-ghost", Robot: "ghost",
		Msg: *dingtalk.RobotTextMessage("boo")}, asynq.Queue(producer.QueueDefault))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := asynq.NewClientFromRedisClient(e.rdb).Enqueue(task); err != nil {
		t.Fatal(err)
	}
	var o *producer.Outcome
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got, err := e.producer.Status(context.Background(), "m-ghost")
		if err == nil && got.Status.Terminal() {
			o = got
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("m-ghost not final after 10s: %+v, %v", got, err)
		}
	}
	if o.Status != producer.StatusFailed || o.LastError == nil || !strings.Contains(o.LastError.Message, "unknown robot") ||
		o.LastError.Class != dingtalk.ClassPermanent.String() || o.Attempts != 1 {
		t.Errorf("outcome %+v (%+v), want failed at once: unknown robot", o, o.LastError)
	}
}

// TestRobotOneToOne: an enterprise robot's message to 45 users is three
// batchSend calls with the new host's token, and a token DingTalk refuses
// is fetched again from the new host's endpoint, once.
func TestRobotOneToOne(t *testing.T) {
	e := setup(t, opts{fake: &fake.Options{Results: &fake.Results{Invalid: 0.1}},
		robots: []worker.Robot{{Name: "helpdesk", App: "hr"}}})
	users := make([]string, 45)
	for i := range users {
		users[i] = fmt.Sprintf("u%d", i)
	}
	param := json.RawMessage(`{"title":"Ticket 7","text":"**answered**"}`)
	acc := e.sendRobot(t, &producer.RobotMessage{Robot: "helpdesk", UserIDs: users, MsgKey: "sampleMarkdown", MsgParam: param})
	if acc.Batches != 3 {
		t.Fatalf("batches: got %d, want 3", acc.Batches)
	}
	o := e.until(t, acc.ID, 30*time.Second, "finished", finished)
	invalid := 0
	for _, u := range users {
		if (fake.Results{Invalid: 0.1}).Fate(u) == fake.FateInvalid {
			invalid++
		}
	}
	r := o.Broadcast.Results
	if o.Status != producer.StatusDone || r.Delivered != 45-invalid || r.Invalid != invalid || o.Broadcast.Batches.Sent != 3 {
		t.Errorf("broadcast %s %+v, want done: %d delivered, %d invalid", o.Status, o.Broadcast, 45-invalid, invalid)
	}
	batches := e.fake.RobotBatches()
	if len(batches) != 3 {
		t.Fatalf("batchSend calls: got %d, want 3", len(batches))
	}
	if b := batches[0]; b.RobotCode != appKey || b.MsgKey != "sampleMarkdown" || b.MsgParam != string(param) {
		t.Errorf("batch %+v: want robot code %s (the app key) and the markdown", b, appKey)
	}

	if !e.fake.Revoke(appKey) {
		t.Fatal("Revoke: the app had no token")
	}
	acc = e.sendRobot(t, &producer.RobotMessage{Robot: "helpdesk", UserIDs: users[:5], MsgKey: "sampleText",
		MsgParam: json.RawMessage(`{"content":"again"}`)})
	o = e.until(t, acc.ID, 30*time.Second, "finished", finished)
	if o.Status != producer.StatusDone || o.Broadcast.Batches.Sent != 1 {
		t.Errorf("after the revoke: %s %+v, want done", o.Status, o.Broadcast)
	}
	n := map[string]int{}
	for _, c := range e.fake.Calls() {
		n[c.Path+" "+c.Code]++
	}
	if n[dingtalk.PathAccessTokenV1+" "] != 2 || n[dingtalk.PathRobotBatchSend+" InvalidAuthentication"] != 1 ||
		n[dingtalk.PathGetToken+" "] != 0 {
		t.Errorf("calls %v: want 2 new-host token fetches, one refused batchSend and no legacy gettoken", n)
	}
}

// loseAnswers drops the answers of the first n calls through webhook
// token: DingTalk took them, the worker cannot know.
type loseAnswers struct {
	token string
	n     atomic.Int32
}

func (l *loseAnswers) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && r.URL.Query().Get("access_token") == l.token && l.n.Add(-1) >= 0 {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, errors.New("connection reset by peer")
	}
	return resp, err
}

// TestRobotRetryKeepsItsWebhook: a message that went through a webhook
// whose answer was lost is retried through the same webhook, whose
// msgUuid makes it one message, even when another webhook has a slot
// first.
func TestRobotRetryKeepsItsWebhook(t *testing.T) {
	a := dingtalk.Robot{Token: "robot-token-a"}
	b := dingtalk.Robot{Token: "robot-token-b"}
	lose := &loseAnswers{token: b.Token}
	lose.n.Store(2)
	e := setup(t, opts{transport: lose, maxRetry: 10,
		robots: []worker.Robot{{Name: "pair", Webhooks: []dingtalk.Robot{a, b}}}})
	// Webhook a is busy for a while (other alerts took its slots), so the
	// first attempt goes through b; by the retries a is free again.
	sum := sha256.Sum256([]byte(a.Token))
	busy := ratelimit.Request{App: "robot." + hex.EncodeToString(sum[:8]), API: dingtalk.PathRobotSend,
		Calls: ratelimit.Limit{N: 20, Per: time.Minute}}
	if err := ratelimit.New(e.rdb, outcome.DefaultPrefix).Hold(context.Background(), busy, 2500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	acc := e.sendRobot(t, &producer.RobotMessage{Robot: "pair", Msg: dingtalk.RobotTextMessage("disk full")})
	o := e.wait(t, acc.ID)
	if o.Status != producer.StatusSent || o.Attempts != 3 {
		t.Fatalf("outcome %s after %d attempts (%+v), want sent at the third", o.Status, o.Attempts, o.LastError)
	}
	sent := e.fake.RobotSent()
	if len(sent) != 1 || sent[0].Robot != b.Token {
		for _, s := range sent {
			t.Logf("the group got %q through %s", s.Message.Text.Content, fake.RobotID(s.Robot))
		}
		t.Fatalf("the group got the alert %d times, want once, through b", len(sent))
	}
}

// failEnqueue fails the next left commands that name an asynq task whose
// id ends with suffix, as a Redis error reply retrying cannot cure.
type failEnqueue struct {
	suffix string
	left   atomic.Int32
}

func (h *failEnqueue) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *failEnqueue) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *failEnqueue) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		for _, a := range cmd.Args() {
			if s, ok := a.(string); ok && strings.Contains(s, ":t:") && strings.HasSuffix(s, h.suffix) && h.left.Add(-1) >= 0 {
				err := errors.New("ERR injected: the enqueue of the re-send failed")
				cmd.SetErr(err)
				return err
			}
		}
		return next(ctx, cmd)
	}
}

// TestRobotResendSurvivesALostEnqueue: the flow-controlled users of an
// enterprise robot's batch are sent once more even when the delivery that
// recorded the batch's results failed to queue their re-send: the next
// delivery queues it from what the results kept.
func TestRobotResendSurvivesALostEnqueue(t *testing.T) {
	e := setup(t, opts{fake: &fake.Options{RobotUserLimit: 1, RobotWindow: time.Minute},
		robots: []worker.Robot{{Name: "helpdesk", App: "hr"}}})
	users := []string{"u1", "u2"}
	send := func(text string) *producer.Outcome {
		acc := e.sendRobot(t, &producer.RobotMessage{Robot: "helpdesk", UserIDs: users, MsgKey: "sampleText",
			MsgParam: json.RawMessage(`{"content":"` + text + `"}`)})
		return e.until(t, acc.ID, 20*time.Second, "finished", finished)
	}
	if o := send("first"); o.Broadcast.Results.Delivered != 2 {
		t.Fatalf("first message: %+v, want both delivered", o.Broadcast)
	}
	hook := &failEnqueue{suffix: ":0r"}
	hook.left.Store(1)
	e.rdb.AddHook(hook)
	o := send("second") // both users had their one message of the window
	b := o.Broadcast
	if hook.left.Load() >= 0 {
		t.Fatal("the re-send's enqueue never failed: the test proves nothing")
	}
	if o.Status != producer.StatusDone || b.Batches.Total != 2 || b.Batches.Sent != 2 || b.Recipients.Resent != 2 ||
		b.Results.Forbidden[producer.ForbiddenFlowControlled] != 2 {
		t.Errorf("second message: %s %+v, want done: 2 re-sent, then flow controlled", o.Status, b)
	}
	if n := len(e.fake.RobotBatches()); n != 3 {
		t.Errorf("batchSend calls: got %d, want 3 (first, second, its re-send)", n)
	}
}
