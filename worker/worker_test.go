package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/dingtalk/fake"
	"github.com/dingq/dingq/internal/metrics"
	"github.com/dingq/dingq/producer"
	"github.com/dingq/dingq/worker"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"
)

const (
	appKey    = "dingkeyhr"
	appSecret = "hr-secret-value-42"
	agentID   = 4242
)

type env struct {
	client   *dingtalk.Client
	fake     *fake.Server
	producer *producer.Producer
	rdb      *redis.Client
	insp     *asynq.Inspector
}

type opts struct {
	secret   string
	maxRetry int
	// timeout bounds each DingTalk call; if zero, 2s.
	timeout time.Duration
	// limits, if set, are the fake's rate limits; else it has none.
	limits *fake.Limits
	// rate are the worker's limits of the app.
	rate worker.AppLimits
	// concurrency: if zero, 4.
	concurrency int
	// fake, if set, are the fake's options (Limits above win).
	fake *fake.Options
	// callback, if set, is the worker's callback configuration.
	callback *worker.CallbackConfig
	// metrics, if set, is what the worker measures into.
	metrics *metrics.Metrics
	// robots are the worker's robots; the producer takes them too, and
	// the fake knows their webhooks.
	robots []worker.Robot
	// transport, if set, carries the DingTalk client's calls.
	transport http.RoundTripper
}

func setup(t *testing.T, o opts) *env {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })

	fo := fake.Options{}
	if o.fake != nil {
		fo = *o.fake
	}
	if o.limits != nil {
		fo.Limits = o.limits
	}
	for _, r := range o.robots {
		fo.Robots = append(fo.Robots, r.Webhooks...)
	}
	fk := fake.New([]fake.App{{Key: appKey, Secret: appSecret, AgentID: agentID}}, &fo)
	srv := httptest.NewServer(fk)
	t.Cleanup(srv.Close)

	timeout := o.timeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	copts := []dingtalk.Option{dingtalk.WithBaseURL(srv.URL), dingtalk.WithAPIBaseURL(srv.URL), dingtalk.WithTimeout(timeout)}
	if o.transport != nil {
		copts = append(copts, dingtalk.WithHTTPClient(&http.Client{Transport: o.transport, Timeout: timeout}))
	}
	client, err := dingtalk.NewClient(copts...)
	if err != nil {
		t.Fatal(err)
	}
	secret := o.secret
	if secret == "" {
		secret = appSecret
	}
	w, err := worker.New(worker.Config{
		Redis: rdb,
		Apps: []worker.App{{Name: "hr", AgentID: agentID, RateLimit: o.rate,
			Credentials: dingtalk.Credentials{AppKey: appKey, AppSecret: secret}}},
		Robots:         o.robots,
		Client:         client,
		Concurrency:    max(o.concurrency, 4),
		RetryBaseDelay: 10 * time.Millisecond,
		RetryMaxDelay:  20 * time.Millisecond,
		PollInterval:   20 * time.Millisecond,
		ResultsDelay:   10 * time.Millisecond,
		ResendDelay:    10 * time.Millisecond,
		Callback:       o.callback,
		Metrics:        o.metrics,
		Logger:         zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	robots := map[string]producer.Robot{}
	for _, r := range o.robots {
		robots[r.Name] = producer.Robot{App: r.App}
	}
	p, err := producer.New(producer.Config{Redis: rdb, MaxRetry: o.maxRetry, Robots: robots})
	if err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	return &env{fake: fk, producer: p, rdb: rdb, insp: insp, client: client}
}

func (e *env) send(t *testing.T, m *producer.Message) string {
	t.Helper()
	if m.App == "" {
		m.App = "hr"
	}
	if len(m.UserIDs) == 0 && len(m.DeptIDs) == 0 {
		m.UserIDs = []string{"u1"}
	}
	id, err := e.producer.Send(context.Background(), m)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	return id
}

// wait polls message id until it is terminal, for at most 30 seconds.
func (e *env) wait(t *testing.T, id string) *producer.Outcome {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		o, err := e.producer.Status(context.Background(), id)
		if err != nil {
			t.Fatalf("Status(%s): %v", id, err)
		}
		if o.Status.Terminal() {
			return o
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s still %s after 30s: %+v", id, o.Status, o)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSendEveryMessageType(t *testing.T) {
	e := setup(t, opts{})
	msgs := map[dingtalk.MsgType]dingtalk.Message{
		dingtalk.MsgTypeText:     dingtalk.TextMessage("hello <b> & you"),
		dingtalk.MsgTypeImage:    {MsgType: dingtalk.MsgTypeImage, Image: &dingtalk.Image{MediaID: "@lADOimg"}},
		dingtalk.MsgTypeVoice:    {MsgType: dingtalk.MsgTypeVoice, Voice: &dingtalk.Voice{MediaID: "@lADOvoice", Duration: "10"}},
		dingtalk.MsgTypeFile:     {MsgType: dingtalk.MsgTypeFile, File: &dingtalk.File{MediaID: "@lADOfile"}},
		dingtalk.MsgTypeLink:     dingtalk.LinkMessage("Title", "Body", "https://example.com/a?b=1&c=2", "@lADOpic"),
		dingtalk.MsgTypeMarkdown: dingtalk.MarkdownMessage("Release", "# v2\n* fast"),
		dingtalk.MsgTypeOA: {MsgType: dingtalk.MsgTypeOA, OA: &dingtalk.OA{MessageURL: "https://example.com/oa",
			Head: dingtalk.OAHead{BgColor: "FFBBBBBB", Text: "Approvals"},
			Body: dingtalk.OABody{Title: "Leave", Form: []dingtalk.OAFormItem{{Key: "Who:", Value: "Li"}}}}},
		dingtalk.MsgTypeActionCard: {MsgType: dingtalk.MsgTypeActionCard, ActionCard: &dingtalk.ActionCard{
			Title: "Vote", Markdown: "Pick one", BtnOrientation: "1",
			BtnJSONList: []dingtalk.ActionCardBtn{{Title: "Yes", ActionURL: "https://example.com/y"}, {Title: "No", ActionURL: "https://example.com/n"}}}},
	}
	ids := map[string]dingtalk.MsgType{}
	for typ, m := range msgs {
		ids[e.send(t, &producer.Message{UserIDs: []string{"u1", "u2"}, Msg: m})] = typ
	}
	taskIDs := map[int64]bool{}
	for id, typ := range ids {
		o := e.wait(t, id)
		if o.Status != producer.StatusSent || o.TaskID == 0 || o.Attempts != 1 || o.RequestID == "" {
			t.Errorf("%s: outcome %+v, want sent with a task_id after 1 attempt", typ, o)
		}
		taskIDs[o.TaskID] = true
	}
	sent := e.fake.Sent()
	if len(sent) != len(msgs) || len(taskIDs) != len(msgs) {
		t.Fatalf("fake got %d sends with %d task ids, want %d", len(sent), len(taskIDs), len(msgs))
	}
	for _, s := range sent {
		typ := s.Request.Msg.MsgType
		want := dingtalk.SendRequest{AgentID: agentID, UserIDs: []string{"u1", "u2"}, Msg: msgs[typ]}
		wire := want.Wire()
		var buf strings.Builder
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(wire); err != nil {
			t.Fatal(err)
		}
		if got := string(s.Body); got != strings.TrimSpace(buf.String()) {
			t.Errorf("%s: DingTalk received\n%s\nwant\n%s", typ, got, buf.String())
		}
	}
	if n := e.fake.TokenFetches(appKey); n != 1 {
		t.Errorf("gettoken calls: got %d, want 1 (the worker caches the token)", n)
	}
}

func TestBadSecretFailsAfterOneCall(t *testing.T) {
	e := setup(t, opts{secret: "wrong-secret"})
	id := e.send(t, &producer.Message{Msg: dingtalk.TextMessage("hi")})
	o := e.wait(t, id)
	if o.Status != producer.StatusFailed || o.LastError == nil || o.LastError.Code != 40096 {
		t.Fatalf("outcome %+v, want failed with errcode 40096", o)
	}
	if o.LastError.Class != "permanent" || o.Attempts != 1 {
		t.Errorf("last error %+v after %d attempts, want permanent after 1", o.LastError, o.Attempts)
	}
	if strings.Contains(o.LastError.Message, "wrong-secret") {
		t.Errorf("outcome shows the secret: %q", o.LastError.Message)
	}
	if n := e.fake.TokenFetches(appKey); n != 1 {
		t.Errorf("gettoken calls: got %d, want 1", n)
	}
	if n := len(e.fake.Sent()); n != 0 {
		t.Errorf("sends: got %d, want 0", n)
	}
	// Archived, not retrying.
	if info := e.settledTask(t, id); info.State != asynq.TaskStateArchived {
		t.Errorf("task state: got %v, want archived", info.State)
	}
}

// settledTask returns the task of message id once asynq has moved it out
// of active, or as it is after 5 s: the outcome is written before the
// handler returns, so the task is archived (or retried) a moment later.
func (e *env) settledTask(t *testing.T, id string) *asynq.TaskInfo {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		info, err := e.insp.GetTaskInfo(producer.QueueDefault, id)
		if err != nil {
			t.Fatal(err)
		}
		if info.State != asynq.TaskStateActive || time.Now().After(deadline) {
			return info
		}
	}
}

// sendCalls counts the calls to asyncsend_v2 the fake answered.
func (e *env) sendCalls() int {
	n := 0
	for _, c := range e.fake.Calls() {
		if c.Path == dingtalk.PathAsyncSendV2 {
			n++
		}
	}
	return n
}

func TestRetryPolicy(t *testing.T) {
	tests := []struct {
		name         string
		maxRetry     int
		fault        fake.Fault // on asyncsend_v2
		wantStatus   producer.Status
		wantAttempts int
		wantErrCode  int
		wantClass    string
	}{
		{name: "bad userid is permanent", fault: fake.Fault{Code: 33012, Times: 1},
			wantStatus: producer.StatusFailed, wantAttempts: 1, wantErrCode: 33012, wantClass: "permanent"},
		{name: "bad agent is permanent", fault: fake.Fault{Code: 40056, Times: 1},
			wantStatus: producer.StatusFailed, wantAttempts: 1, wantErrCode: 40056, wantClass: "permanent"},
		{name: "monthly quota is permanent", fault: fake.Fault{Code: 90020, Times: 1},
			wantStatus: producer.StatusFailed, wantAttempts: 1, wantErrCode: 90020, wantClass: "permanent"},
		{name: "no permission is permanent", fault: fake.Fault{Code: 88, SubCode: "60011", Times: 1},
			wantStatus: producer.StatusFailed, wantAttempts: 1, wantErrCode: 88, wantClass: "permanent"},
		{name: "HTTP 500 is retried", fault: fake.Fault{Status: 500, Times: 2},
			wantStatus: producer.StatusSent, wantAttempts: 3, wantClass: "transient"},
		{name: "system busy is retried", fault: fake.Fault{Code: -1, Times: 1},
			wantStatus: producer.StatusSent, wantAttempts: 2, wantErrCode: -1, wantClass: "transient"},
		{name: "retries run out", maxRetry: 1, fault: fake.Fault{Status: 502, Times: 5},
			wantStatus: producer.StatusFailed, wantAttempts: 2, wantClass: "transient"},
		{name: "throttling waits and is not a failure", maxRetry: 1, fault: fake.Fault{Code: 90018, Times: 2},
			wantStatus: producer.StatusSent, wantAttempts: 3, wantErrCode: 90018, wantClass: "throttled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, opts{maxRetry: tt.maxRetry})
			tt.fault.Path = dingtalk.PathAsyncSendV2
			if err := e.fake.AddFault(tt.fault); err != nil {
				t.Fatal(err)
			}
			id := e.send(t, &producer.Message{Msg: dingtalk.TextMessage("hi")})
			o := e.wait(t, id)
			if o.Status != tt.wantStatus || o.Attempts != tt.wantAttempts {
				t.Fatalf("outcome %s after %d attempts, want %s after %d: %+v", o.Status, o.Attempts, tt.wantStatus, tt.wantAttempts, o)
			}
			if got := e.sendCalls(); got != tt.wantAttempts {
				t.Errorf("calls to DingTalk: got %d, want %d", got, tt.wantAttempts)
			}
			if o.LastError == nil || o.LastError.Code != tt.wantErrCode || o.LastError.Class != tt.wantClass {
				t.Errorf("last error %+v, want errcode %d class %s", o.LastError, tt.wantErrCode, tt.wantClass)
			}
			if len(o.History) != tt.wantAttempts {
				t.Fatalf("history has %d attempts, want %d: %+v", len(o.History), tt.wantAttempts, o.History)
			}
			// Every attempt shows its number, when it was and what came of it.
			for i, a := range o.History {
				if a.N != i+1 || a.At.IsZero() || a.Result == "" {
					t.Errorf("history[%d] = %+v, want attempt %d with a time and a result", i, a, i+1)
				}
				last := i == len(o.History)-1
				if !last && (a.Error == nil || a.Error.Code != tt.wantErrCode) {
					t.Errorf("history[%d].Error = %+v, want errcode %d", i, a.Error, tt.wantErrCode)
				}
			}
			if tt.wantStatus == producer.StatusFailed {
				info := e.settledTask(t, id)
				if info.State != asynq.TaskStateArchived || info.LastErr == "" {
					t.Errorf("task %v with last error %q, want archived with the reason", info.State, info.LastErr)
				}
			}
		})
	}
}

// TestFaultsEveryMessageSentOnce: under DingTalk's failures every message
// ends sent, and DingTalk received each exactly once.
func TestFaultsEveryMessageSentOnce(t *testing.T) {
	const messages = 40
	tests := []struct {
		name     string
		fault    fake.Fault
		maxRetry int
		timeout  time.Duration
	}{
		{name: "30% HTTP 500 on every endpoint", fault: fake.Fault{Status: 500, Fraction: 0.3}},
		{name: "timeouts", fault: fake.Fault{Path: dingtalk.PathAsyncSendV2, Hang: true, Times: 10},
			timeout: 300 * time.Millisecond},
		// Throttling is not a failure: one retry allowed is enough.
		{name: "30% 90018", fault: fake.Fault{Path: dingtalk.PathAsyncSendV2, Code: 90018, Fraction: 0.3}, maxRetry: 1},
		{name: "30% system busy", fault: fake.Fault{Path: dingtalk.PathAsyncSendV2, Code: -1, Fraction: 0.3}},
		{name: "slow answers", fault: fake.Fault{Latency: fake.Duration(100 * time.Millisecond), Fraction: 0.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, opts{maxRetry: tt.maxRetry, timeout: tt.timeout})
			if err := e.fake.AddFault(tt.fault); err != nil {
				t.Fatal(err)
			}
			var ids []string
			for i := range messages {
				ids = append(ids, e.send(t, &producer.Message{Msg: dingtalk.TextMessage(fmt.Sprintf("m%d", i))}))
			}
			for _, id := range ids {
				if o := e.wait(t, id); o.Status != producer.StatusSent {
					t.Errorf("message %s: %s, want sent: %+v", id, o.Status, o.LastError)
				}
			}
			seen := map[string]int{}
			for _, s := range e.fake.Sent() {
				seen[s.Request.Msg.Text.Content]++
			}
			for i := range messages {
				if n := seen[fmt.Sprintf("m%d", i)]; n != 1 {
					t.Errorf("m%d: DingTalk received it %d times, want once", i, n)
				}
			}
			if st := e.fake.Stats(); st.Faulted == 0 {
				t.Errorf("no call was faulted: the test tested nothing")
			}
		})
	}
}

func TestRevokedTokenIsRefetchedOnce(t *testing.T) {
	e := setup(t, opts{})
	o := e.wait(t, e.send(t, &producer.Message{Msg: dingtalk.TextMessage("one")}))
	if o.Status != producer.StatusSent {
		t.Fatalf("first message %s", o.Status)
	}
	if !e.fake.Revoke(appKey) {
		t.Fatalf("Revoke: the app had no token")
	}
	o = e.wait(t, e.send(t, &producer.Message{Msg: dingtalk.TextMessage("two")}))
	if o.Status != producer.StatusSent || o.Attempts != 1 {
		t.Fatalf("second message %s after %d attempts, want sent after 1 (token refetched inside the attempt)", o.Status, o.Attempts)
	}
	if n := e.fake.TokenFetches(appKey); n != 2 {
		t.Errorf("gettoken calls: got %d, want 2 (one more after the revocation)", n)
	}
	var refused int
	for _, c := range e.fake.Calls() {
		if c.Path == dingtalk.PathAsyncSendV2 && c.ErrCode == 88 {
			refused++
		}
	}
	if refused != 1 {
		t.Errorf("sends refused for the token: got %d, want 1", refused)
	}
}

func TestUnknownAppFails(t *testing.T) {
	e := setup(t, opts{})
	o := e.wait(t, e.send(t, &producer.Message{App: "payroll", Msg: dingtalk.TextMessage("hi")}))
	if o.Status != producer.StatusFailed || o.LastError == nil || !strings.Contains(o.LastError.Message, `"payroll"`) {
		t.Fatalf("outcome %+v, want failed naming the app", o)
	}
	if n := len(e.fake.Calls()); n != 0 {
		t.Errorf("DingTalk calls: got %d, want 0", n)
	}
}

func TestScheduledSend(t *testing.T) {
	e := setup(t, opts{})
	at := time.Now().Add(300 * time.Millisecond)
	id := e.send(t, &producer.Message{Msg: dingtalk.TextMessage("later"), SendAt: at})
	o := e.wait(t, id)
	if o.Status != producer.StatusSent {
		t.Fatalf("status %s", o.Status)
	}
	sent := e.fake.Sent()
	if len(sent) != 1 || sent[0].Time.Before(at) {
		t.Errorf("sent at %v, want after %v", sent[0].Time, at)
	}
}

func TestDuplicateDeliveryIsNotSentTwice(t *testing.T) {
	e := setup(t, opts{})
	id := e.send(t, &producer.Message{Msg: dingtalk.TextMessage("once")})
	if o := e.wait(t, id); o.Status != producer.StatusSent {
		t.Fatalf("status %s", o.Status)
	}
	// The queue delivers the same task again (at-least-once: a worker died
	// after sending, before acknowledging).
	task, err := producer.NewMessageSendTask(&producer.MessageSendPayload{ID: id, App: "hr",
		UserIDs: []string{"u1"}, Msg: dingtalk.TextMessage("once")})
	if err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClientFromRedisClient(e.rdb)
	if _, err := client.Enqueue(task, asynq.Queue(producer.QueueDefault)); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		q, err := e.insp.GetQueueInfo(producer.QueueDefault)
		if err != nil {
			t.Fatal(err)
		}
		if q.Pending == 0 && q.Active == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task still queued: %+v", q)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(e.fake.Sent()); n != 1 {
		t.Errorf("DingTalk got %d sends, want 1", n)
	}
	o, _ := e.producer.Status(context.Background(), id)
	if o.Attempts != 1 {
		t.Errorf("attempts: got %d, want 1", o.Attempts)
	}
}

func TestConfigValidate(t *testing.T) {
	client, _ := dingtalk.NewClient()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	good := worker.App{Name: "hr", AgentID: 1, Credentials: dingtalk.Credentials{AppKey: "k", AppSecret: "s"}}
	tests := []struct {
		name string
		cfg  worker.Config
		want string
	}{
		{name: "no redis", cfg: worker.Config{Client: client, Apps: []worker.App{good}}, want: "Redis"},
		{name: "no client", cfg: worker.Config{Redis: rdb, Apps: []worker.App{good}}, want: "Client"},
		{name: "no apps", cfg: worker.Config{Redis: rdb, Client: client}, want: "Apps"},
		{name: "app twice", cfg: worker.Config{Redis: rdb, Client: client, Apps: []worker.App{good, good}}, want: "used twice"},
		{name: "no agent", cfg: worker.Config{Redis: rdb, Client: client, Apps: []worker.App{{Name: "a", Credentials: good.Credentials}}}, want: "AgentID"},
		{name: "no secret", cfg: worker.Config{Redis: rdb, Client: client, Apps: []worker.App{{Name: "a", AgentID: 1, Credentials: dingtalk.Credentials{AppKey: "k"}}}}, want: "app_secret"},
		{name: "max below base", cfg: worker.Config{Redis: rdb, Client: client, Apps: []worker.App{good}, RetryBaseDelay: time.Minute, RetryMaxDelay: time.Second}, want: "RetryMaxDelay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := worker.New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one naming %q", err, tt.want)
			}
		})
	}
}

// sendAll queues n text messages and waits until each is final, failing
// the test unless all were sent.
func (e *env) sendAll(t *testing.T, n int) {
	t.Helper()
	var ids []string
	for i := range n {
		ids = append(ids, e.send(t, &producer.Message{Msg: dingtalk.TextMessage(fmt.Sprintf("m%d", i))}))
	}
	for _, id := range ids {
		if o := e.wait(t, id); o.Status != producer.StatusSent {
			t.Fatalf("message %s: %s, want sent: %+v", id, o.Status, o.LastError)
		}
	}
}

// TestRateLimitKeepsInsideDingTalks: 50 deliveries at once against
// DingTalk's 20 calls a second are spread out to fit.
func TestRateLimitKeepsInsideDingTalks(t *testing.T) {
	e := setup(t, opts{limits: &fake.Limits{CallsPerSecond: 20}, concurrency: 50})
	start := time.Now()
	e.sendAll(t, 60)
	// Slots are 1/19 s apart, one slot of slack a second: a call the race
	// detector holds up more than that after its slot may still land in
	// the next second's window. Without the limiter, 50 calls at once
	// would draw 30 throttled answers; the benchmark, without -race, counts
	// zero.
	if st := e.fake.Stats(); st.Throttled > 2 {
		t.Errorf("throttled answers: got %d, want at most 2", st.Throttled)
	}
	// 60 sends at 19 a second need 3 s; without the limiter 50 go at once.
	if took := time.Since(start); took < 2500*time.Millisecond {
		t.Errorf("60 sends took %v: faster than the limit allows", took)
	}
}

// TestRateLimitAdaptsDown: DingTalk allows fewer calls than configured:
// the app's rate drops for the fleet, every message is still sent and none
// fails.
func TestRateLimitAdaptsDown(t *testing.T) {
	e := setup(t, opts{limits: &fake.Limits{CallsPerSecond: 8}, concurrency: 20, maxRetry: 1})
	e.sendAll(t, 40)
	st := e.fake.Stats()
	if st.Throttled == 0 {
		t.Fatalf("no throttled answer: the test tested nothing")
	}
	f, err := e.rdb.HGet(context.Background(), "dingq:{rate}:adapt:hr:"+dingtalk.PathAsyncSendV2, "f").Float64()
	if err != nil || f >= 1 {
		t.Errorf("rate factor after throttling: %v (%v), want below 1", f, err)
	}
	t.Logf("%d throttled answers for 40 messages; rate factor %.2f (%.1f calls/s)", st.Throttled, f, 20*f)
}
