package callback_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/internal/callback"
	"github.com/redis/go-redis/v9"
)

const (
	token  = "tok123456"
	aesKey = "4g5j64qlyl3zvetqxz5jiocdr586fn2zvjpa8zls3ij"
	owner  = "dingcorp42"
)

var now = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

type sink struct {
	mu     sync.Mutex
	events [][]byte
	seen   map[string]bool
	fail   bool
}

func (s *sink) enqueue(_ context.Context, _ string, event []byte) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return "", false, fmt.Errorf("redis is down")
	}
	if s.seen[string(event)] {
		return "x", true, nil
	}
	s.seen[string(event)] = true
	s.events = append(s.events, event)
	return "x", false, nil
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

type env struct {
	srv    *httptest.Server
	crypto *dingtalk.CallbackCrypto
	sink   *sink
	mr     *miniredis.Miniredis
}

func setup(t testing.TB) *env {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	c, err := dingtalk.NewCallbackCrypto(token, aesKey, owner)
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{seen: map[string]bool{}}
	r, err := callback.New(callback.Config{Crypto: c, Redis: rdb, Enqueue: s.enqueue, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &env{srv: srv, crypto: c, sink: s, mr: mr}
}

// push sends event sealed by c (the env's crypto if nil) with nonce.
func (e *env) push(t testing.TB, c *dingtalk.CallbackCrypto, event, nonce string) (int, []byte) {
	t.Helper()
	if c == nil {
		c = e.crypto
	}
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	enc, sig, err := c.Seal([]byte(event), ts, nonce)
	if err != nil {
		t.Fatal(err)
	}
	return e.raw(t, url.Values{"signature": {sig}, "timestamp": {ts}, "nonce": {nonce}}, `{"encrypt":"`+enc+`"}`)
}

func (e *env) raw(t testing.TB, q url.Values, body string) (int, []byte) {
	t.Helper()
	resp, err := http.Post(e.srv.URL+"?"+q.Encode(), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes()
}

// isSuccess reports whether body is DingTalk's encrypted "success".
func (e *env) isSuccess(body []byte) bool {
	var r dingtalk.CallbackResponse
	if json.Unmarshal(body, &r) != nil {
		return false
	}
	msg, err := e.crypto.Open(r.MsgSignature, r.TimeStamp, r.Nonce, r.Encrypt)
	return err == nil && string(msg) == "success"
}

func TestReceiverTakesAnEventOnce(t *testing.T) {
	e := setup(t)
	ev := `{"EventType":"user_add_org","UserId":["u1"],"CorpId":"dingcorp42","TimeStamp":"1"}`
	status, body := e.push(t, nil, ev, "n1")
	if status != http.StatusOK || !e.isSuccess(body) {
		t.Fatalf("push: %d %s, want 200 and an encrypted success", status, body)
	}
	// DingTalk's re-push: same event, new nonce: answered success, queued once.
	status, body = e.push(t, nil, ev, "n2")
	if status != http.StatusOK || !e.isSuccess(body) {
		t.Fatalf("re-push: %d %s", status, body)
	}
	if n := e.sink.count(); n != 1 {
		t.Errorf("events queued: %d, want 1", n)
	}
	// check_url is answered, not queued.
	if status, body := e.push(t, nil, `{"EventType":"check_url"}`, "n3"); status != http.StatusOK || !e.isSuccess(body) {
		t.Errorf("check_url: %d %s", status, body)
	}
	if n := e.sink.count(); n != 1 {
		t.Errorf("events queued after check_url: %d, want 1", n)
	}
	// The msg_signature / timeStamp spelling.
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	enc, sig, _ := e.crypto.Seal([]byte(`{"EventType":"user_leave_org","UserId":["u2"]}`), ts, "n4")
	status, body = e.raw(t, url.Values{"msg_signature": {sig}, "timeStamp": {ts}, "nonce": {"n4"}}, `{"encrypt":"`+enc+`"}`)
	if status != http.StatusOK || !e.isSuccess(body) || e.sink.count() != 2 {
		t.Errorf("msg_signature spelling: %d %s, %d events", status, body, e.sink.count())
	}
}

func TestReceiverRefuses(t *testing.T) {
	e := setup(t)
	other, _ := dingtalk.NewCallbackCrypto(token, aesKey, "another-corp")
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	enc, sig, _ := e.crypto.Seal([]byte(`{"EventType":"user_add_org"}`), ts, "ok-nonce")
	stale := strconv.FormatInt(now.Add(-10*time.Minute).UnixMilli(), 10)
	encStale, sigStale, _ := e.crypto.Seal([]byte(`{"EventType":"user_add_org"}`), stale, "stale")
	notJSON, sigNotJSON, _ := e.crypto.Seal([]byte(`not json`), ts, "nj")
	// Timestamps that would saturate a time.Duration.
	huge, neg := "9223372036854775807", "-9223372036854775808"
	encHuge, sigHuge, _ := e.crypto.Seal([]byte(`{"EventType":"user_add_org"}`), huge, "huge")
	encNeg, sigNeg, _ := e.crypto.Seal([]byte(`{"EventType":"user_add_org"}`), neg, "neg")
	// CBC without a MAC is malleable in its early blocks (the signature,
	// over the ciphertext, is what guards them): tamper with the last
	// block, where the padding and the owner key are.
	tampered := []byte(enc)
	tampered[len(tampered)-6] ^= 1
	sigTampered := e.crypto.Signature(ts, "tamp", string(tampered))
	q := func(sig, ts, nonce string) url.Values {
		return url.Values{"signature": {sig}, "timestamp": {ts}, "nonce": {nonce}}
	}
	tests := []struct {
		name   string
		q      url.Values
		body   string
		status int
	}{
		{"no query", url.Values{}, `{"encrypt":"` + enc + `"}`, 400},
		{"no nonce", q(sig, ts, ""), `{"encrypt":"` + enc + `"}`, 400},
		{"stale timestamp", q(sigStale, stale, "stale"), `{"encrypt":"` + encStale + `"}`, 400},
		{"timestamp not a number", q(sig, "soon", "ok-nonce"), `{"encrypt":"` + enc + `"}`, 400},
		{"timestamp far in the future", q(sigHuge, huge, "huge"), `{"encrypt":"` + encHuge + `"}`, 400},
		{"timestamp far in the past", q(sigNeg, neg, "neg"), `{"encrypt":"` + encNeg + `"}`, 400},
		{"body not JSON", q(sig, ts, "ok-nonce"), `encrypt=` + enc, 400},
		{"body without encrypt", q(sig, ts, "ok-nonce"), `{}`, 400},
		{"body too large", q(sig, ts, "ok-nonce"), `{"encrypt":"` + strings.Repeat("A", 70000) + `"}`, 413},
		{"wrong signature", q(strings.Repeat("0", 40), ts, "ok-nonce"), `{"encrypt":"` + enc + `"}`, 403},
		{"signature of another nonce", q(sig, ts, "other"), `{"encrypt":"` + enc + `"}`, 403},
		{"tampered ciphertext, re-signed", q(sigTampered, ts, "tamp"), `{"encrypt":"` + string(tampered) + `"}`, -1},
		{"decrypted event not JSON", q(sigNotJSON, ts, "nj"), `{"encrypt":"` + notJSON + `"}`, 400},
	}
	for _, tt := range tests {
		status, body := e.raw(t, tt.q, tt.body)
		if (status != tt.status && !(tt.status == -1 && (status == 400 || status == 403))) || !bytes.Contains(body, []byte(`"error"`)) {
			t.Errorf("%s: %d %s, want %d with an error", tt.name, status, body, tt.status)
		}
	}
	// Another owner key's event: 403.
	if status, _ := e.push(t, other, `{"EventType":"user_add_org"}`, "owner"); status != http.StatusForbidden {
		t.Errorf("other owner key: %d, want 403", status)
	}
	// GET: 405.
	resp, err := http.Get(e.srv.URL)
	if err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %v %v, want 405", resp, err)
	}
	if n := e.sink.count(); n != 0 {
		t.Fatalf("%d events queued by refused requests", n)
	}
	// A replayed nonce: the first is taken, the copy refused.
	if status, _ := e.push(t, nil, `{"EventType":"user_add_org","n":1}`, "once"); status != 200 {
		t.Fatalf("first: %d", status)
	}
	if status, _ := e.push(t, nil, `{"EventType":"user_add_org","n":2}`, "once"); status != http.StatusConflict {
		t.Errorf("replayed nonce: %d, want 409", status)
	}
	// Queue down: 503, and the nonce is free for DingTalk's next push.
	e.sink.fail = true
	if status, _ := e.push(t, nil, `{"EventType":"user_add_org","n":3}`, "later"); status != http.StatusServiceUnavailable {
		t.Errorf("queue down: %d, want 503", status)
	}
	e.sink.fail = false
	if status, _ := e.push(t, nil, `{"EventType":"user_add_org","n":3}`, "later"); status != 200 {
		t.Errorf("after the queue is back, same nonce: %d, want 200", status)
	}
	if n := e.sink.count(); n != 2 {
		t.Errorf("events queued: %d, want 2", n)
	}
}

// TestReceiverUnderAttack: 10,000 malformed, tampered or replayed requests
// queue nothing, and the receiver still takes a valid push.
func TestReceiverUnderAttack(t *testing.T) {
	e := setup(t)
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	enc, sig, _ := e.crypto.Seal([]byte(`{"EventType":"user_add_org","UserId":["v"]}`), ts, "valid")
	if status, _ := e.raw(t, url.Values{"signature": {sig}, "timestamp": {ts}, "nonce": {"valid"}}, `{"encrypt":"`+enc+`"}`); status != 200 {
		t.Fatalf("valid push: %d", status)
	}
	const n = 10000
	var wg sync.WaitGroup
	reqs := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range reqs {
				q := url.Values{"signature": {sig}, "timestamp": {ts}, "nonce": {"valid"}}
				body := []byte(`{"encrypt":"` + enc + `"}`)
				switch i % 5 {
				case 0: // the valid push again, as is: answered, not queued again
				case 1: // a flipped character in the ciphertext
					b := []byte(enc)
					b[i%len(b)] ^= byte(1 + i%7)
					body = []byte(`{"encrypt":"` + string(b) + `"}`)
				case 2: // a wrong signature
					q.Set("signature", fmt.Sprintf("%040x", i))
					q.Set("nonce", fmt.Sprint("n", i))
				case 3: // garbage body
					body = []byte(strings.Repeat("{", i%50))
				case 4: // a stale timestamp, correctly signed
					old := strconv.FormatInt(now.Add(-time.Hour).UnixMilli(), 10)
					q.Set("timestamp", old)
					q.Set("signature", e.crypto.Signature(old, "valid", enc))
				}
				resp, err := http.Post(e.srv.URL+"?"+q.Encode(), "application/json", bytes.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if i%5 == 0 {
					if resp.StatusCode != http.StatusOK {
						t.Errorf("request %d (the same push again): %d, want 200", i, resp.StatusCode)
					}
				} else if resp.StatusCode < 400 || resp.StatusCode >= 500 {
					t.Errorf("request %d (kind %d): %d, want 4xx", i, i%5, resp.StatusCode)
				}
			}
		})
	}
	for i := range n {
		reqs <- i
	}
	close(reqs)
	wg.Wait()
	if c := e.sink.count(); c != 1 {
		t.Fatalf("events queued: %d, want the 1 valid one", c)
	}
	if status, body := e.push(t, nil, `{"EventType":"user_add_org","UserId":["after"]}`, "after"); status != 200 || !e.isSuccess(body) {
		t.Errorf("valid push after the attack: %d %s", status, body)
	}
}

func FuzzReceiver(f *testing.F) {
	f.Add("sig", "1763888400000", "nonce", `{"encrypt":"abc"}`)
	f.Add("", "", "", ``)
	f.Add(strings.Repeat("a", 40), "x", "n", `{"encrypt":"`+strings.Repeat("A", 64)+`"}`)
	e := setup(f)
	f.Fuzz(func(t *testing.T, sig, ts, nonce, body string) {
		q := url.Values{"signature": {sig}, "timestamp": {ts}, "nonce": {nonce}}
		req := httptest.NewRequest(http.MethodPost, "/?"+q.Encode(), strings.NewReader(body))
		w := httptest.NewRecorder()
		e.srv.Config.Handler.ServeHTTP(w, req)
		if w.Code < 400 || w.Code >= 500 {
			t.Fatalf("%d for a request nobody signed", w.Code)
		}
		if e.sink.count() != 0 {
			t.Fatal("an unsigned request was queued")
		}
	})
}
