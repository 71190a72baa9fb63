package main

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk/fake"
	"github.com/dingq/dingq/producer"
	"github.com/dingq/dingq/worker"
)

// forwardSink is the backend app the worker forwards events to: it checks
// each request's signature and counts the events by their content.
type forwardSink struct {
	mu       sync.Mutex
	secret   string
	got      map[string]int
	badSig   int
	requests int
}

func (s *forwardSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ts := r.Header.Get("X-Dingq-Timestamp")
	want := "sha256=" + worker.SignForward(s.secret, ts, body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if !hmac.Equal([]byte(r.Header.Get("X-Dingq-Signature")), []byte(want)) {
		s.badSig++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	s.got[string(body)]++
}

func (s *forwardSink) distinct() (n, dups, bad int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.got {
		if c > 1 {
			dups += c - 1
		}
	}
	return len(s.got), dups, s.badSig
}

// waitOutcome polls record id until it is final.
func (fl *fleet) waitOutcome(id string, timeout time.Duration) *producer.Outcome {
	fl.t.Helper()
	out := fl.wait([]string{id}, timeout)
	return out[id]
}

// TestFleetCallbacks: register the callback with the fake (which checks the
// URL with check_url, as DingTalk does), push 1,000 events, 100 of them
// twice: the forward URL gets exactly 1,000 decrypted events, each once,
// each signed; the Redis Stream has them too.
func TestFleetCallbacks(t *testing.T) {
	t.Parallel()
	sink, apiAddr, extra := callbackSetup(t, "dingq-test:events", "user_add_org", "user_leave_org")
	fl := startFleetWith(t, fleetOpts{workers: 3, concurrency: 20, fakeArgs: []string{"--no-limits"},
		extraYAML: extra, apiAddr: apiAddr}, hrApp)
	fl.startAPI()

	id, err := fl.producer.EnqueueCallbackAdmin(context.Background(), "hr", "register")
	if err != nil {
		t.Fatal(err)
	}
	if o := fl.waitOutcome(id, 30*time.Second); o.Status != producer.StatusSent {
		t.Fatalf("register: %s %+v", o.Status, o.LastError)
	}
	// Registering again: DingTalk says the callback exists (71006), permanent.
	id, _ = fl.producer.EnqueueCallbackAdmin(context.Background(), "hr", "register")
	if o := fl.waitOutcome(id, 30*time.Second); o.Status != producer.StatusFailed || o.LastError == nil || o.LastError.Code != 71006 {
		t.Errorf("second register: %s %+v, want failed with 71006", o.Status, o.LastError)
	}
	id, _ = fl.producer.EnqueueCallbackAdmin(context.Background(), "hr", "get")
	o := fl.waitOutcome(id, 30*time.Second)
	if o.Status != producer.StatusSent || !strings.Contains(string(o.Result), "/v1/callbacks/dingtalk") ||
		strings.Contains(string(o.Result), "cbtoken42") || strings.Contains(string(o.Result), cbAESKey) {
		t.Errorf("get: %s %s, want the url and tags without secrets", o.Status, o.Result)
	}

	once := make([]json.RawMessage, 0, 900)
	twice := make([]json.RawMessage, 0, 100)
	for i := range 1000 {
		ev := json.RawMessage(fmt.Sprintf(`{"EventType":"user_add_org","UserId":["u%d"],"CorpId":%q,"TimeStamp":"%d"}`, i, hrApp.key, 1763888400000+i))
		if i < 100 {
			twice = append(twice, ev)
		} else {
			once = append(once, ev)
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	push := func(events []json.RawMessage, times int) {
		defer wg.Done()
		body, _ := json.Marshal(map[string]any{"app": hrApp.key, "events": events, "times": times})
		resp, err := http.Post(fl.fakeURL+fake.PathAdminPush, "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Error(err)
			return
		}
		defer resp.Body.Close()
		var r struct{ Pushed, Failed int }
		_ = json.NewDecoder(resp.Body).Decode(&r)
		if resp.StatusCode != http.StatusOK || r.Failed != 0 || r.Pushed != len(events)*times {
			t.Errorf("push of %d events ×%d: %d %+v", len(events), times, resp.StatusCode, r)
		}
	}
	wg.Add(2)
	go push(once, 1)
	go push(twice, 2)
	wg.Wait()
	t.Logf("1,100 pushes answered in %s", time.Since(start).Round(time.Millisecond))

	deadline := time.Now().Add(60 * time.Second)
	for {
		n, _, _ := sink.distinct()
		if n >= 1000 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // anything more would come now
	n, dups, bad := sink.distinct()
	t.Logf("forwarded: %d distinct events, %d duplicates, %d bad signatures, after %s", n, dups, bad, time.Since(start).Round(time.Millisecond))
	if n != 1000 || dups != 0 || bad != 0 {
		t.Errorf("forward URL got %d distinct events, %d duplicates, %d bad signatures; want 1000, 0, 0", n, dups, bad)
	}
	for _, ev := range append(once, twice...) {
		if sink.got[string(ev)] != 1 {
			t.Fatalf("event %s forwarded %d times", ev, sink.got[string(ev)])
		}
	}
	if l, err := fl.rdb.XLen(context.Background(), "dingq-test:events").Result(); err != nil || l != 1000 {
		t.Errorf("stream entries: %d %v, want 1000", l, err)
	}
}

// TestFleetSessions: create → get → close → close again through the API,
// each with its recorded outcome.
func TestFleetSessions(t *testing.T) {
	t.Parallel()
	fl := startFleetWith(t, fleetOpts{workers: 1, concurrency: 5, fakeArgs: []string{"--no-limits"}}, hrApp)
	api := fl.startAPI()
	do := func(body string) *producer.Outcome {
		t.Helper()
		status, resp := api.do(http.MethodPost, "/v1/sessions", body)
		var acc struct{ ID, Status string }
		mustJSON(t, resp, &acc)
		if status != http.StatusAccepted || acc.ID == "" {
			t.Fatalf("POST /v1/sessions %s: %d %s", body, status, resp)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			status, resp := api.do(http.MethodGet, "/v1/sessions/"+acc.ID, "")
			var o producer.Outcome
			mustJSON(t, resp, &o)
			if status != http.StatusOK {
				t.Fatalf("GET /v1/sessions/%s: %d %s", acc.ID, status, resp)
			}
			if o.Status.Terminal() {
				return &o
			}
			if time.Now().After(deadline) {
				t.Fatalf("session task %s still %s", acc.ID, o.Status)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	o := do(`{"app":"hr","action":"create","userid":"manager1","session_id":"s-1","chatid":"chat42"}`)
	if o.Status != producer.StatusSent || !strings.Contains(string(o.Result), `"session_id":"s-1"`) || o.Kind != "session.create" {
		t.Fatalf("create: %+v %s", o, o.Result)
	}
	o = do(`{"app":"hr","action":"get","userid":"manager1"}`)
	if o.Status != producer.StatusSent || !strings.Contains(string(o.Result), `"session"`) {
		t.Fatalf("get: %+v %s", o, o.Result)
	}
	o = do(`{"app":"hr","action":"close","session_id":"s-1","userid":"manager1"}`)
	if o.Status != producer.StatusSent || string(o.Result) != `{"success":true}` {
		t.Fatalf("close: %+v %s", o, o.Result)
	}
	o = do(`{"app":"hr","action":"close","session_id":"s-1","userid":"manager1"}`)
	if o.Status != producer.StatusFailed || o.LastError == nil || o.LastError.Code != 400002 || o.Attempts != 1 {
		t.Fatalf("close again: %s %+v after %d attempts, want failed with 400002 after 1", o.Status, o.LastError, o.Attempts)
	}
	t.Logf("close again: %s, errcode %d %q", o.Status, o.LastError.Code, o.LastError.Message)
	if status, resp := api.do(http.MethodPost, "/v1/sessions", `{"app":"hr","action":"open"}`); status != http.StatusBadRequest || !strings.Contains(resp, `"field":"action"`) {
		t.Errorf("bad action: %d %s", status, resp)
	}
	if status, resp := api.do(http.MethodPost, "/v1/sessions", `{"app":"hr","action":"close"}`); status != http.StatusBadRequest || !strings.Contains(resp, `"field":"session_id"`) {
		t.Errorf("close without session_id: %d %s", status, resp)
	}
}

// cbAESKey is the callback AES key of the fleet tests.
const cbAESKey = "4g5j64qlyl3zvetqxz5jiocdr586fn2zvjpa8zls3ij"

// callbackSetup starts a forward sink and returns it, the address the
// fleet's api must listen on, and the callback section of the fleet's
// config: receiver on, registration of tags, forwarding to the sink and to
// stream.
func callbackSetup(t *testing.T, stream string, tags ...string) (*forwardSink, string, string) {
	t.Helper()
	sink := &forwardSink{secret: "forward-secret-0123456789", got: map[string]int{}}
	fwd := httptest.NewServer(sink)
	t.Cleanup(fwd.Close)
	apiAddr := freeAddr(t)
	return sink, apiAddr, fmt.Sprintf(`callback:
  token: cbtoken42
  aes_key: %s
  owner_key: %s
  url: http://%s/v1/callbacks/dingtalk
  tags: [%s]
  forward_url: %s
  forward_secret: %s
  stream: %s
  failed_pull_interval: 0s
`, cbAESKey, hrApp.key, apiAddr, strings.Join(tags, ", "), fwd.URL, sink.secret, stream)
}
