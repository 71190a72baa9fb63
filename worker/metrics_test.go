package worker_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/dingtalk/fake"
	"github.com/dingq/dingq/internal/metrics"
	"github.com/dingq/dingq/internal/metrics/metricstest"
	"github.com/dingq/dingq/producer"
	"github.com/dingq/dingq/worker"
	"github.com/prometheus/client_golang/prometheus"
)

// want is one series of a metric and the value it must reach.
type want struct {
	metric string
	labels []string
	value  float64
}

// waitMetrics polls reg until every series of ws has its value, and fails
// the test for those that do not within 10 seconds: the worker counts a
// final status just after it wrote it, where the test may look first.
func waitMetrics(t *testing.T, reg *prometheus.Registry, ws ...want) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var wrong []want
		for _, w := range ws {
			if metricstest.Value(t, reg, w.metric, w.labels...) != w.value {
				wrong = append(wrong, w)
			}
		}
		if len(wrong) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, w := range wrong {
				t.Errorf("%s%v: got %v, want %v", w.metric, w.labels,
					metricstest.Value(t, reg, w.metric, w.labels...), w.value)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMetricsSendAndFailure: a sent message counts a successful call,
// its token fetch, its wait for a rate slot, a sent message and its
// recipients; one DingTalk refuses with 33012 counts that errcode, a
// failed message and its recipients as rejected; a session task counts
// under its own kind.
func TestMetricsSendAndFailure(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := setup(t, opts{metrics: metrics.New(reg)})
	api := dingtalk.PathAsyncSendV2

	if o := e.wait(t, e.send(t, &producer.Message{UserIDs: []string{"u1", "u2"}, Msg: dingtalk.TextMessage("hi")})); o.Status != producer.StatusSent {
		t.Fatalf("first message: %s %+v", o.Status, o.LastError)
	}
	if err := e.fake.AddFault(fake.Fault{Path: api, Code: 33012, Times: 1}); err != nil {
		t.Fatal(err)
	}
	if o := e.wait(t, e.send(t, &producer.Message{UserIDs: []string{"nobody"}, Msg: dingtalk.TextMessage("hi")})); o.Status != producer.StatusFailed {
		t.Fatalf("second message: %s, want failed", o.Status)
	}
	sid, err := e.producer.EnqueueSession(context.Background(), &producer.Session{App: "hr", Action: producer.SessionCreate,
		UserID: "u1", SessionID: "s-1", ChatID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if o := e.wait(t, sid); o.Status != producer.StatusSent {
		t.Fatalf("session: %s %+v", o.Status, o.LastError)
	}

	waitMetrics(t, reg,
		want{"dingq_dingtalk_calls_total", []string{"app", "hr", "api", api, "errcode", "0"}, 1},
		want{"dingq_dingtalk_calls_total", []string{"app", "hr", "api", api, "errcode", "33012"}, 1},
		want{"dingq_dingtalk_call_duration_seconds", []string{"app", "hr", "api", api}, 2},
		want{"dingq_messages_total", []string{"app", "hr", "kind", "message", "status", "sent"}, 1},
		want{"dingq_messages_total", []string{"app", "hr", "kind", "message", "status", "failed"}, 1},
		want{"dingq_messages_total", []string{"app", "hr", "kind", "session", "status", "sent"}, 1},
		want{"dingq_recipients_total", []string{"app", "hr", "status", "sent"}, 2},
		want{"dingq_recipients_total", []string{"app", "hr", "status", "rejected"}, 1},
		want{"dingq_token_fetches_total", []string{"app", "hr", "result", "ok"}, 1},
		want{"dingq_token_cache_hits_total", []string{"app", "hr", "layer", metrics.LayerMemory}, 2},
		want{"dingq_limiter_wait_seconds", []string{"app", "hr", "api", api}, 2},
		want{"dingq_limiter_rate", []string{"app", "hr", "api", api}, worker.DefaultCallsPerSecond},
	)
}

// TestMetricsBroadcast: a broadcast's recipients are counted by what
// getsendresult said of them, and the broadcast once, done.
func TestMetricsBroadcast(t *testing.T) {
	res := fake.Results{Invalid: 0.1, ForbiddenDaily: 0.05, Failed: 0.05, Read: 0.5}
	reg := prometheus.NewRegistry()
	e := setup(t, opts{concurrency: 8, fake: &fake.Options{Results: &res},
		rate: worker.AppLimits{RecipientsPerMinute: -1}, metrics: metrics.New(reg)})
	a := e.broadcast(t, "all hands", users("u", 300))
	o := e.until(t, a.ID, 20*time.Second, "finished", finished)
	r := o.Broadcast.Results
	recipients := func(status string, n int) want {
		return want{"dingq_recipients_total", []string{"app", "hr", "status", status}, float64(n)}
	}
	waitMetrics(t, reg,
		want{"dingq_messages_total", []string{"app", "hr", "kind", "broadcast", "status", "done"}, 1},
		want{"dingq_messages_total", nil, 1},
		recipients("invalid", r.Invalid), recipients("forbidden", r.ForbiddenTotal()), recipients("failed", r.Failed),
		recipients("read", r.Read), recipients("unread", r.Unread), recipients("unknown", 0),
		want{"dingq_recipients_total", nil, 300},
		want{"dingq_dingtalk_calls_total", []string{"api", dingtalk.PathAsyncSendV2, "errcode", "0"}, 3},
		want{"dingq_dingtalk_calls_total", []string{"api", dingtalk.PathGetSendResult, "errcode", "0"}, 3},
	)
	if r.Read == 0 || r.Invalid == 0 {
		t.Errorf("results %+v: the test tested little", r)
	}
}

// TestMetricsCanceled: a scheduled message canceled before it is due
// counts once, canceled, when a worker takes its task.
func TestMetricsCanceled(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := setup(t, opts{metrics: metrics.New(reg)})
	id, err := e.producer.Send(context.Background(), &producer.Message{App: "hr", UserIDs: []string{"u1", "u2", "u3"},
		Msg: dingtalk.TextMessage("soon"), SendAt: time.Now().Add(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.producer.Cancel(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	waitMetrics(t, reg,
		want{"dingq_messages_total", []string{"app", "hr", "kind", "message", "status", "canceled"}, 1},
		want{"dingq_recipients_total", []string{"app", "hr", "status", "canceled"}, 3},
	)
	if n := metricstest.Value(t, reg, "dingq_dingtalk_calls_total"); n != 0 {
		t.Errorf("calls to DingTalk for a canceled message: %v", n)
	}
}

// TestMetricsCallbackSinks: an event counts once per sink that took it,
// and each failed forward as an error.
func TestMetricsCallbackSinks(t *testing.T) {
	var attempts atomic.Int32
	fwd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if attempts.Add(1) == 1 {
			http.Error(w, "deploying", http.StatusBadGateway)
		}
	}))
	t.Cleanup(fwd.Close)
	reg := prometheus.NewRegistry()
	e := setup(t, opts{metrics: metrics.New(reg), callback: &worker.CallbackConfig{ForwardURL: fwd.URL,
		ForwardSecret: "forward-secret-0123", StreamKey: "events", StreamMaxLen: 100}})
	if _, _, err := e.producer.EnqueueEvent(context.Background(), "", []byte(`{"EventType":"user_add_org"}`)); err != nil {
		t.Fatal(err)
	}
	waitMetrics(t, reg,
		want{"dingq_callback_events_forwarded_total", []string{"sink", metrics.SinkForward, "result", "error"}, 1},
		want{"dingq_callback_events_forwarded_total", []string{"sink", metrics.SinkForward, "result", "ok"}, 1},
		want{"dingq_callback_events_forwarded_total", []string{"sink", metrics.SinkStream, "result", "ok"}, 1},
	)
}

// TestMetricsCoalescedCanceledOnce: a coalesced message canceled before
// its group is sent counts once, canceled, though the coalesced task runs
// three times (DingTalk is busy twice).
func TestMetricsCoalescedCanceledOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := setup(t, opts{metrics: metrics.New(reg)})
	if err := e.fake.AddFault(fake.Fault{Path: dingtalk.PathAsyncSendV2, Code: -1, Times: 2}); err != nil {
		t.Fatal(err)
	}
	burst()
	ids := e.sendMany(t, 3, "coalesced", "c")
	if _, err := e.producer.Cancel(context.Background(), ids[1]); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{ids[0], ids[2]} {
		if o := e.wait(t, id); o.Status != producer.StatusSent || o.Attempts != 3 {
			t.Fatalf("message %s: %s after %d attempts, want sent after 3", id, o.Status, o.Attempts)
		}
	}
	// Each run of the task looks at the canceled message before it sends:
	// once the others are counted sent, every run has looked.
	waitMetrics(t, reg,
		want{"dingq_messages_total", []string{"app", "hr", "kind", "message", "status", "sent"}, 2},
		want{"dingq_recipients_total", []string{"app", "hr", "status", "sent"}, 2},
	)
	for _, w := range []want{
		{"dingq_messages_total", []string{"app", "hr", "kind", "message", "status", "canceled"}, 1},
		{"dingq_recipients_total", []string{"app", "hr", "status", "canceled"}, 1},
		{"dingq_messages_total", nil, 3},
	} {
		if got := metricstest.Value(t, reg, w.metric, w.labels...); got != w.value {
			t.Errorf("%s%v: got %v, want %v", w.metric, w.labels, got, w.value)
		}
	}
	if n := e.sendCalls(); n != 3 {
		t.Errorf("asyncsend_v2 calls: %d, want 3 (two busy, one sent)", n)
	}
}

// TestMetricsPausedBroadcastCanceled: the batches of a paused broadcast
// that Cancel cancels itself, where no worker sees them, count once, as
// does the broadcast; the recipients of the batches sent before the pause
// count once, by their results.
func TestMetricsPausedBroadcastCanceled(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := setup(t, opts{metrics: metrics.New(reg), rate: worker.AppLimits{CallsPerSecond: -1, RecipientsPerMinute: -1}})
	// Slow sends, so the pause finds batches still queued.
	if err := e.fake.AddFault(fake.Fault{Path: dingtalk.PathAsyncSendV2, Latency: fake.Duration(100 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a := e.broadcast(t, "pause me", users("u", 2000))
	e.until(t, a.ID, 10*time.Second, "sending", func(o *producer.Outcome) bool { return o.Broadcast.Batches.Sent > 0 })
	if _, err := e.producer.Pause(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	o := e.until(t, a.ID, 10*time.Second, "settled while paused", func(o *producer.Outcome) bool {
		b := o.Broadcast
		return b.Batches.Queued == 0 && b.Batches.Sending == 0 && b.Results.PendingBatches == 0
	})
	if b := o.Broadcast.Batches; b.Sent == 0 || b.Paused == 0 {
		t.Fatalf("batches %+v: want some sent and some paused", b)
	}
	if _, err := e.producer.Cancel(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	o = e.until(t, a.ID, 10*time.Second, "finished", finished)
	if o.Status != producer.StatusCanceled || o.Broadcast.Recipients.Canceled == 0 {
		t.Fatalf("broadcast %s %+v, want canceled with canceled recipients", o.Status, o.Broadcast.Recipients)
	}
	waitMetrics(t, reg,
		want{"dingq_messages_total", []string{"app", "hr", "kind", "broadcast", "status", "canceled"}, 1},
		want{"dingq_messages_total", nil, 1},
		want{"dingq_recipients_total", []string{"app", "hr", "status", "canceled"}, float64(o.Broadcast.Recipients.Canceled)},
		want{"dingq_recipients_total", nil, 2000},
	)
}

// TestMetricsUnknownApp: messages and broadcasts of an app the worker is
// not configured for (a producer without a list of apps takes any name)
// count as app "unknown", never under the name they came with.
func TestMetricsUnknownApp(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := setup(t, opts{metrics: metrics.New(reg)})
	const typo = "hr-typo"
	if o := e.wait(t, e.send(t, &producer.Message{App: typo, UserIDs: []string{"u1"}, Msg: dingtalk.TextMessage("hi")})); o.Status != producer.StatusFailed {
		t.Fatalf("message: %s, want failed", o.Status)
	}
	a, err := e.producer.Enqueue(context.Background(), &producer.Message{App: typo, UserIDs: users("u", 150),
		Msg: dingtalk.TextMessage("hi")})
	if err != nil {
		t.Fatal(err)
	}
	e.until(t, a.ID, 10*time.Second, "finished", finished)
	waitMetrics(t, reg,
		want{"dingq_messages_total", []string{"app", metrics.AppUnknown, "kind", "message", "status", "failed"}, 1},
		want{"dingq_messages_total", []string{"app", metrics.AppUnknown, "kind", "broadcast", "status", "done"}, 1},
		want{"dingq_recipients_total", []string{"app", metrics.AppUnknown, "status", "rejected"}, 151},
	)
	for _, m := range []string{"dingq_messages_total", "dingq_recipients_total"} {
		if n := metricstest.Value(t, reg, m, "app", typo); n != 0 {
			t.Errorf("%s{app=%q}: %v, want no such series", m, typo, n)
		}
	}
}
