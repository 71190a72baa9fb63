package worker_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/worker"
)

const cbAESKey = "4g5j64qlyl3zvetqxz5jiocdr586fn2zvjpa8zls3ij"

// TestCallbackEventSinks: an event goes to the forward URL (retried until
// it answers 2xx, each time signed) and to the stream, each once; an
// event type the forward does not take goes to the stream only.
func TestCallbackEventSinks(t *testing.T) {
	var (
		mu       sync.Mutex
		bodies   []string
		attempts atomic.Int32
	)
	fwd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if attempts.Add(1) <= 2 {
			http.Error(w, "deploying", http.StatusBadGateway)
			return
		}
		if r.Header.Get("X-Dingq-Signature") != "sha256="+worker.SignForward("forward-secret-0123", r.Header.Get("X-Dingq-Timestamp"), body) ||
			r.Header.Get("X-Dingq-Event-Type") != "user_add_org" {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		bodies = append(bodies, string(body))
		mu.Unlock()
	}))
	t.Cleanup(fwd.Close)
	e := setup(t, opts{callback: &worker.CallbackConfig{ForwardURL: fwd.URL, ForwardSecret: "forward-secret-0123",
		ForwardEvents: []string{"user_add_org"}, StreamKey: "events", StreamMaxLen: 1000}})
	ctx := context.Background()
	ev := `{"EventType":"user_add_org","UserId":["u1"]}`
	if _, dup, err := e.producer.EnqueueEvent(ctx, "", []byte(ev)); err != nil || dup {
		t.Fatalf("EnqueueEvent: %v %v", dup, err)
	}
	if _, dup, err := e.producer.EnqueueEvent(ctx, "", []byte(ev)); err != nil || !dup {
		t.Fatalf("EnqueueEvent again: dup %v %v, want a duplicate", dup, err)
	}
	if _, _, err := e.producer.EnqueueEvent(ctx, "", []byte(`{"EventType":"chat_disband","ChatId":"c1"}`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, _ := e.rdb.XLen(ctx, "events").Result()
		mu.Lock()
		got := len(bodies)
		mu.Unlock()
		if n == 2 && got == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20s: stream %d entries, forward got %d, want 2 and 1", n, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	n, _ := e.rdb.XLen(ctx, "events").Result()
	if n != 2 || len(bodies) != 1 || bodies[0] != ev || attempts.Load() != 3 {
		t.Errorf("stream %d, forwarded %v after %d attempts; want 2, [the event] after 3", n, bodies, attempts.Load())
	}
}

// TestCallbackFailedPull: events DingTalk failed to push are pulled from
// get_call_back_failed_result and delivered like pushed ones, and the
// failed list is empty after.
func TestCallbackFailedPull(t *testing.T) {
	crypto, err := dingtalk.NewCallbackCrypto("cbtoken42", cbAESKey, appKey)
	if err != nil {
		t.Fatal(err)
	}
	var accept atomic.Bool
	accept.Store(true)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !accept.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		q := r.URL.Query()
		resp, _ := crypto.Success(q.Get("timestamp"), q.Get("nonce"))
		_ = json.NewEncoder(w).Encode(resp)
	}))
	t.Cleanup(rcv.Close)
	e := setup(t, opts{callback: &worker.CallbackConfig{URL: rcv.URL, StreamKey: "events", StreamMaxLen: 1000,
		StreamEvents: []string{"user_add_org"}, FailedPullInterval: 300 * time.Millisecond}})
	ctx := context.Background()
	tok, err := e.client.GetToken(ctx, dingtalk.Credentials{AppKey: appKey, AppSecret: appSecret})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.client.RegisterCallback(ctx, tok.AccessToken, &dingtalk.Callback{Tags: []string{"user_add_org"},
		Token: "cbtoken42", AESKey: cbAESKey, URL: rcv.URL}); err != nil {
		t.Fatalf("RegisterCallback: %v", err)
	}
	accept.Store(false)
	for i := range 5 {
		if err := e.fake.Push(appKey, []byte(`{"EventType":"user_add_org","UserId":["f`+string(rune('0'+i))+`"]}`)); err == nil {
			t.Fatal("push to a receiver that is down: no error")
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, _ := e.rdb.XLen(ctx, "events").Result()
		if n == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream has %d of the 5 failed events after 20s", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// They went out as pushed: typed, unwrapped from DingTalk's list entry.
	entries, _ := e.rdb.XRange(ctx, "events", "-", "+").Result()
	for _, en := range entries {
		if en.Values["type"] != "user_add_org" || !strings.HasPrefix(en.Values["event"].(string), `{"EventType":"user_add_org"`) {
			t.Errorf("stream entry %v, want the event as pushed", en.Values)
		}
	}
	failed, err := e.client.GetCallbackFailed(ctx, tok.AccessToken)
	if err != nil || len(failed.Events) != 0 {
		t.Errorf("failed list after the pull: %+v %v, want empty", failed, err)
	}
}
