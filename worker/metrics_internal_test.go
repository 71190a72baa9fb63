package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/dingtalk/fake"
	"github.com/dingq/dingq/internal/metrics"
	"github.com/dingq/dingq/internal/metrics/metricstest"
	"github.com/dingq/dingq/internal/outcome"
	"github.com/dingq/dingq/internal/ratelimit"
	"github.com/dingq/dingq/producer"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

var _ net.Error = timeoutError{}

// TestErrcode: the errcode label of each kind of answer, never more than
// a short code.
func TestErrcode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"success", nil, "0"},
		{"errcode", &dingtalk.Error{HTTPStatus: 200, Code: 33012}, "33012"},
		{"errcode wrapped", fmt.Errorf("sending: %w", &dingtalk.Error{Code: 90018}), "90018"},
		{"system busy", &dingtalk.Error{Code: -1}, "-1"},
		{"new host code", &dingtalk.Error{HTTPStatus: 403, ErrorCode: "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"}, "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"},
		{"odd new host code", &dingtalk.Error{HTTPStatus: 400, ErrorCode: "no such {thing}"}, "other"},
		{"ip ban", &dingtalk.Error{HTTPStatus: 200, IPBanned: true}, "ip_banned"},
		{"gateway", &dingtalk.Error{HTTPStatus: 502}, "http_5xx"},
		{"not found", &dingtalk.Error{HTTPStatus: 404}, "http_4xx"},
		{"redirect", &dingtalk.Error{HTTPStatus: 302}, "http_other"},
		{"client timeout", &dingtalk.TransportError{Path: "/x", Err: timeoutError{}}, "timeout"},
		{"deadline", &dingtalk.TransportError{Path: "/x", Err: context.DeadlineExceeded}, "timeout"},
		{"canceled", &dingtalk.TransportError{Path: "/x", Err: context.Canceled}, "canceled"},
		{"connection refused", &dingtalk.TransportError{Path: "/x", Err: errors.New("connection refused")}, "transport"},
		{"invalid request", &dingtalk.ValidationError{Field: "userid_list", Reason: "too many"}, "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errcode(tt.err); got != tt.want {
				t.Errorf("errcode(%v): got %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

// TestLimitsMetrics: a call admitted at once waits 0; one whose slot is
// too far off goes back to the queue; the rate gauge follows the factor
// DingTalk's 90018 lowers.
func TestLimitsMetrics(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	reg := prometheus.NewRegistry()
	l := newLimits(ratelimit.New(rdb, "test"), []App{{Name: "hr", RateLimit: AppLimits{CallsPerSecond: 2}}}, -1,
		20*time.Millisecond, zap.NewNop(), metrics.New(reg))
	ctx := context.Background()
	api := dingtalk.PathAsyncSendV2

	if err := l.admit(ctx, "hr", api, 1); err != nil {
		t.Fatalf("first admit: %v", err)
	}
	var te *throttledError
	if err := l.admit(ctx, "hr", api, 1); !errors.As(err, &te) {
		t.Fatalf("second admit at once: %v, want it handed back to the queue", err)
	}
	rate := func() float64 {
		return metricstest.Value(t, reg, "dingq_limiter_rate", "app", "hr", "api", api)
	}
	if got := rate(); got != 2 {
		t.Errorf("rate before throttling: got %v, want 2", got)
	}
	l.observe(ctx, "hr", api, &dingtalk.Error{HTTPStatus: 200, Code: 90018, Path: api})
	if got := rate(); got < 1.39 || got > 1.41 {
		t.Errorf("rate after a 90018: got %v, want 2×0.7", got)
	}
	tests := []struct {
		metric string
		want   float64
	}{
		{"dingq_limiter_wait_seconds", 1},
		{"dingq_limiter_deferred_total", 1},
	}
	for _, tt := range tests {
		if got := metricstest.Value(t, reg, tt.metric, "app", "hr", "api", api); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.metric, got, tt.want)
		}
	}
}

// testHandlers returns the handlers of a worker that is never started, on
// rdb, sending as app hr to DingTalk at url, and the registry they
// measure into.
func testHandlers(t *testing.T, rdb redis.UniversalClient, url string) (*Handlers, *prometheus.Registry) {
	t.Helper()
	client, err := dingtalk.NewClient(dingtalk.WithBaseURL(url), dingtalk.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	w, err := New(Config{
		Redis: rdb,
		Apps: []App{{Name: "hr", AgentID: testAgentID,
			Credentials: dingtalk.Credentials{AppKey: testAppKey, AppSecret: testAppSecret}}},
		Client:  client,
		Metrics: metrics.New(reg),
		Logger:  zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.handlers.tokens.Close)
	return w.handlers, reg
}

// The app of testHandlers, as the fake DingTalk knows it.
const (
	testAppKey    = "dingkeyhr"
	testAppSecret = "hr-secret-value-42"
	testAgentID   = 4242
)

// testRedis returns a client of a new miniredis.
func testRedis(t *testing.T, hooks ...redis.Hook) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	for _, h := range hooks {
		rdb.AddHook(h)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// scheduled sends a message of app hr to users, due in a minute, so that
// its record waits, queued, for what the test does with it.
func scheduled(t *testing.T, p *producer.Producer, users ...string) string {
	t.Helper()
	id, err := p.Send(context.Background(), &producer.Message{App: "hr", UserIDs: users,
		Msg: dingtalk.TextMessage("later"), SendAt: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// series is one series of a metric and the value it must have.
type series struct {
	metric string
	labels []string
	value  float64
}

// check fails the test for each series of ss reg does not hold.
func check(t *testing.T, reg *prometheus.Registry, what string, ss ...series) {
	t.Helper()
	for _, s := range ss {
		if got := metricstest.Value(t, reg, s.metric, s.labels...); got != s.value {
			t.Errorf("%s: %s%v: got %v, want %v", what, s.metric, s.labels, got, s.value)
		}
	}
}

// TestCanceledCountsOnce: a canceled message counts once, however often
// its task runs, and also when it is found canceled only as a coalesced
// call begins it (canceled after HandleCoalesced looked).
func TestCanceledCountsOnce(t *testing.T) {
	rdb := testRedis(t)
	h, reg := testHandlers(t, rdb, "http://127.0.0.1:1") // DingTalk is never called
	p, err := producer.New(producer.Config{Redis: rdb})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cancel := func(id string) {
		t.Helper()
		if _, err := p.Cancel(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	canceled := func(messages, recipients float64) []series {
		return []series{
			{"dingq_messages_total", []string{"app", "hr", "kind", "message", "status", "canceled"}, messages},
			{"dingq_recipients_total", []string{"app", "hr", "status", "canceled"}, recipients},
		}
	}

	single := scheduled(t, p, "u1", "u2")
	cancel(single)
	task, err := producer.NewMessageSendTask(&producer.MessageSendPayload{ID: single, App: "hr",
		UserIDs: []string{"u1", "u2"}, Msg: dingtalk.TextMessage("later")})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // delivered twice
		if err := h.HandleMessageSend(ctx, task); err != nil {
			t.Fatalf("HandleMessageSend: %v", err)
		}
	}
	check(t, reg, "single message run twice", canceled(1, 2)...)

	coalesced := scheduled(t, p, "u3")
	cancel(coalesced)
	cp := &producer.CoalescedPayload{App: "hr", Msg: dingtalk.TextMessage("later"),
		Messages: []producer.CoalescedMessage{{ID: coalesced, UserIDs: []string{"u3"}}}}
	for range 2 {
		res, n, err := h.sendCall(ctx, cp, packCalls(cp.Messages, dingtalk.MaxUserIDs)[0])
		if res != nil || n != 0 || err != nil {
			t.Fatalf("sendCall of a canceled message: %v %d %v, want nothing sent", res, n, err)
		}
	}
	check(t, reg, "coalesced message canceled before its call", canceled(2, 3)...)
	check(t, reg, "no other", series{"dingq_messages_total", nil, 2})
}

// TestStaleBatchEndCountsOnce: a batch's recipients count once when a
// stalled delivery of its task ends it after another delivery took it
// over (SendingStale), sent it, failed it and counted it.
func TestStaleBatchEndCountsOnce(t *testing.T) {
	fk := fake.New([]fake.App{{Key: testAppKey, Secret: testAppSecret, AgentID: testAgentID}}, nil)
	if err := fk.AddFault(fake.Fault{Path: dingtalk.PathAsyncSendV2, Code: 33012}); err != nil {
		t.Fatal(err)
	}
	var first atomic.Bool
	arrived, release := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == dingtalk.PathAsyncSendV2 && first.CompareAndSwap(false, true) {
			close(arrived) // delivery A's call stalls
			<-release
		}
		fk.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })

	rdb := testRedis(t)
	h, reg := testHandlers(t, rdb, srv.URL)
	p, err := producer.New(producer.Config{Redis: rdb})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, a := enqueueUsers(t, p, 150)
	info, err := asynq.NewInspectorFromRedisClient(rdb).GetTaskInfo(producer.QueueBulk, producer.BatchTaskID(a.ID, "0"))
	if err != nil {
		t.Fatal(err)
	}
	task := asynq.NewTask(producer.TypeBroadcastBatch, info.Payload)

	errA := make(chan error, 1)
	go func() { errA <- h.HandleBatch(ctx, task) }()
	select {
	case <-arrived:
	case err := <-errA:
		t.Fatalf("delivery A ended before its call: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("delivery A did not call DingTalk within 10s")
	}
	// A stalls past SendingStale: delivery B takes the batch over.
	if err := rdb.HSet(ctx, h.store.Keys().Batches(a.ID), "0@", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := h.HandleBatch(ctx, task); !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("delivery B: %v, want the batch failed for good", err)
	}
	rejected := series{"dingq_recipients_total", []string{"app", "hr", "status", "rejected"}, 100}
	check(t, reg, "after delivery B", rejected)
	releaseOnce.Do(func() { close(release) })
	select {
	case err := <-errA:
		if !errors.Is(err, asynq.SkipRetry) {
			t.Fatalf("delivery A: %v, want the batch failed for good", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("delivery A did not end within 10s")
	}
	check(t, reg, "after delivery A", rejected)
	o, err := p.Status(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if b := o.Broadcast; b.Batches.Failed != 1 || b.Recipients.Rejected != 100 {
		t.Errorf("record: %+v, want 1 failed batch of 100", b)
	}
}

// loseReply is a Redis hook that runs the next script call on key and
// then loses its answer, as a connection dropped after Redis ran it
// would: the caller sees an error, and tries again.
type loseReply struct {
	key   atomic.Value // string: armed for this key; "" when not
	fired atomic.Int32
}

func (l *loseReply) arm(key string) { l.key.Store(key) }

func (l *loseReply) DialHook(next redis.DialHook) redis.DialHook { return next }

func (l *loseReply) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (l *loseReply) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		args := cmd.Args()
		if err != nil || (cmd.Name() != "eval" && cmd.Name() != "evalsha") || len(args) < 4 {
			return err
		}
		if key, _ := l.key.Load().(string); key != "" && args[3] == key && l.key.CompareAndSwap(key, "") {
			l.fired.Add(1)
			err = errors.New("read tcp: i/o timeout (the test lost the answer)")
			cmd.SetErr(err)
		}
		return err
	}
}

// TestLostReplyStillCounts: a message made final by a try whose answer
// was lost counts, and so do the results of a batch recorded so, and the
// broadcast they finish.
func TestLostReplyStillCounts(t *testing.T) {
	lose := &loseReply{}
	rdb := testRedis(t, lose)
	h, reg := testHandlers(t, rdb, "http://127.0.0.1:1")
	p, err := producer.New(producer.Config{Redis: rdb})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	id := scheduled(t, p, "u1", "u2")
	if _, err := h.store.Apply(ctx, id, outcome.Transition{To: outcome.StatusSending, NewAttempt: true}); err != nil {
		t.Fatal(err)
	}
	lose.arm(h.store.Keys().Outcome(id))
	tr := outcome.Transition{To: outcome.StatusSent, TaskID: 7, Attempt: &outcome.Attempt{N: 1, Result: outcome.StatusSent}}
	if err := h.record(ctx, counted{app: "hr", kind: kindMessage, recipients: 2}, id, tr); err != nil {
		t.Fatalf("record: %v", err)
	}
	if lose.fired.Load() != 1 {
		t.Fatal("no answer was lost: the test tested nothing")
	}
	check(t, reg, "message sent, its answer lost",
		series{"dingq_messages_total", []string{"app", "hr", "kind", "message", "status", "sent"}, 1},
		series{"dingq_recipients_total", []string{"app", "hr", "status", "sent"}, 2})

	users, a := enqueueUsers(t, p, 150)
	batches := map[string][]string{"0": users[:100], "1": users[100:]}
	for _, b := range []string{"0", "1"} {
		if v, err := h.store.BeginBatch(ctx, a.ID, b, batches[b], nil); err != nil || v != outcome.BatchGo {
			t.Fatalf("BeginBatch(%s): %v %v", b, v, err)
		}
		e := outcome.BatchEnd{To: outcome.StatusSent, TaskID: 9, Recipients: batches[b], Claimant: "test"}
		if _, err := h.store.EndBatch(ctx, a.ID, b, e); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range []string{"0", "1"} {
		if b == "1" {
			lose.arm(h.store.Keys().Outcome(a.ID))
		}
		rp := &producer.ResultsPayload{Batch: producer.BatchPayload{ID: a.ID, Batch: b, App: "hr", UserIDs: batches[b]}, TaskID: 9}
		if err := h.recordResults(ctx, rp, outcome.BatchResults{Read: batches[b]}); err != nil {
			t.Fatalf("recordResults(%s): %v", b, err)
		}
	}
	if lose.fired.Load() != 2 {
		t.Fatal("no answer of RecordResults was lost: the test tested nothing")
	}
	check(t, reg, "results of the last batch recorded, their answer lost",
		series{"dingq_recipients_total", []string{"app", "hr", "status", "read"}, 150},
		series{"dingq_messages_total", []string{"app", "hr", "kind", "broadcast", "status", "done"}, 1})
}

// enqueueUsers queues a broadcast of "hi" to n users u0… of app hr.
func enqueueUsers(t *testing.T, p *producer.Producer, n int) ([]string, *producer.Accepted) {
	t.Helper()
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("u%d", i)
	}
	a, err := p.Enqueue(context.Background(), &producer.Message{App: "hr", UserIDs: users, Msg: dingtalk.TextMessage("hi")})
	if err != nil {
		t.Fatal(err)
	}
	return users, a
}
