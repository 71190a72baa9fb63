package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/dingtalk/fake"
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

// fault answers the next calls to path with a canned body, then lets the
// fake answer.
type fault struct {
	mu    sync.Mutex
	path  string
	n     int
	body  string
	code  int
	calls int
}

func (f *fault) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		hit := r.URL.Path == f.path && f.n > 0
		if r.URL.Path == f.path {
			f.calls++
		}
		if hit {
			f.n--
		}
		f.mu.Unlock()
		if !hit {
			next.ServeHTTP(w, r)
			return
		}
		w.WriteHeader(f.code)
		_, _ = w.Write([]byte(f.body))
	})
}

func (f *fault) set(path string, n, code int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.path, f.n, f.code, f.body = path, n, code, body
}

func (f *fault) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

type env struct {
	fake     *fake.Server
	fault    *fault
	producer *producer.Producer
	rdb      *redis.Client
	insp     *asynq.Inspector
}

type opts struct {
	secret   string
	maxRetry int
}

func setup(t *testing.T, o opts) *env {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })

	fk := fake.New([]fake.App{{Key: appKey, Secret: appSecret, AgentID: agentID}}, nil)
	ft := &fault{}
	srv := httptest.NewServer(ft.wrap(fk))
	t.Cleanup(srv.Close)

	client, err := dingtalk.NewClient(dingtalk.WithBaseURL(srv.URL), dingtalk.WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	secret := o.secret
	if secret == "" {
		secret = appSecret
	}
	w, err := worker.New(worker.Config{
		Redis:          rdb,
		Apps:           []worker.App{{Name: "hr", AgentID: agentID, Credentials: dingtalk.Credentials{AppKey: appKey, AppSecret: secret}}},
		Client:         client,
		Concurrency:    4,
		RetryBaseDelay: 10 * time.Millisecond,
		RetryMaxDelay:  20 * time.Millisecond,
		PollInterval:   20 * time.Millisecond,
		Logger:         zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	p, err := producer.New(producer.Config{Redis: rdb, MaxRetry: o.maxRetry})
	if err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	return &env{fake: fk, fault: ft, producer: p, rdb: rdb, insp: insp}
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

// wait polls message id until it is terminal, for at most 10 seconds.
func (e *env) wait(t *testing.T, id string) *producer.Outcome {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		o, err := e.producer.Status(context.Background(), id)
		if err != nil {
			t.Fatalf("Status(%s): %v", id, err)
		}
		if o.Status.Terminal() {
			return o
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s still %s after 10s: %+v", id, o.Status, o)
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
	info, err := e.insp.GetTaskInfo(producer.QueueDefault, id)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != asynq.TaskStateArchived {
		t.Errorf("task state: got %v, want archived", info.State)
	}
}

func TestRetryPolicy(t *testing.T) {
	tests := []struct {
		name         string
		maxRetry     int
		n, code      int
		body         string
		wantStatus   producer.Status
		wantAttempts int
		wantErrCode  int
		wantClass    string
	}{
		{name: "bad userid is permanent", n: 1, code: 200, body: `{"errcode":33012,"errmsg":"无效的USERID"}`,
			wantStatus: producer.StatusFailed, wantAttempts: 1, wantErrCode: 33012, wantClass: "permanent"},
		{name: "HTTP 500 is retried", n: 2, code: 500, body: `<html>oops</html>`,
			wantStatus: producer.StatusSent, wantAttempts: 3, wantClass: "transient"},
		{name: "system busy is retried", n: 1, code: 200, body: `{"errcode":-1,"errmsg":"系统繁忙"}`,
			wantStatus: producer.StatusSent, wantAttempts: 2, wantErrCode: -1, wantClass: "transient"},
		{name: "malformed answer is retried", n: 1, code: 200, body: `{"errcode":0,`,
			wantStatus: producer.StatusSent, wantAttempts: 2, wantClass: "transient"},
		{name: "retries run out", maxRetry: 1, n: 5, code: 502, body: `bad gateway`,
			wantStatus: producer.StatusFailed, wantAttempts: 2, wantClass: "transient"},
		{name: "throttling waits and is not a failure", maxRetry: 1, n: 2, code: 200, body: `{"errcode":90018,"errmsg":"too fast"}`,
			wantStatus: producer.StatusSent, wantAttempts: 3, wantErrCode: 90018, wantClass: "throttled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, opts{maxRetry: tt.maxRetry})
			e.fault.set(dingtalk.PathAsyncSendV2, tt.n, tt.code, tt.body)
			id := e.send(t, &producer.Message{Msg: dingtalk.TextMessage("hi")})
			o := e.wait(t, id)
			if o.Status != tt.wantStatus || o.Attempts != tt.wantAttempts {
				t.Fatalf("outcome %s after %d attempts, want %s after %d: %+v", o.Status, o.Attempts, tt.wantStatus, tt.wantAttempts, o)
			}
			if got := e.fault.callCount(); got != tt.wantAttempts {
				t.Errorf("calls to DingTalk: got %d, want %d", got, tt.wantAttempts)
			}
			if o.LastError == nil || o.LastError.Code != tt.wantErrCode || o.LastError.Class != tt.wantClass {
				t.Errorf("last error %+v, want errcode %d class %s", o.LastError, tt.wantErrCode, tt.wantClass)
			}
			if len(o.History) != tt.wantAttempts {
				t.Errorf("history has %d attempts, want %d: %+v", len(o.History), tt.wantAttempts, o.History)
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
	e.fake.Reset() // forgets every token: the worker's cached one is now refused
	o = e.wait(t, e.send(t, &producer.Message{Msg: dingtalk.TextMessage("two")}))
	if o.Status != producer.StatusSent || o.Attempts != 1 {
		t.Fatalf("second message %s after %d attempts, want sent after 1 (token refetched inside the attempt)", o.Status, o.Attempts)
	}
	if n := e.fake.TokenFetches(appKey); n != 1 {
		t.Errorf("gettoken calls since the revocation: got %d, want 1", n)
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
