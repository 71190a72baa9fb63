package fake_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/dingtalk/fake"
)

// The callback secrets every test registers with: DingTalk's own sample.
const (
	cbToken  = "123456"
	cbAESKey = "4g5j64qlyl3zvetqxz5jiocdr586fn2zvjpa8zls3ij"
)

// How a receiver answers.
const (
	answerSuccess = "success" // the encrypted JSON answer DingTalk wants
	answerPlain   = "plain"   // "success" as plain text
	answer500     = "500"     // HTTP 500
	answerHang    = "hang"    // never, until the fake gives up
)

// delivery is one post a receiver got.
type delivery struct {
	query url.Values
	plain string // the event, opened; "" if it did not open
	err   error  // why it did not open
}

// receiver is a callback URL: it opens what the fake posts with its own
// crypto, as the app would, and answers as its mode says.
type receiver struct {
	url    string
	crypto *dingtalk.CallbackCrypto

	mu   sync.Mutex
	mode string
	got  []delivery
}

// newReceiver serves a receiver whose crypto uses the test secrets and
// owner, answering in mode.
func newReceiver(t *testing.T, owner, mode string) *receiver {
	t.Helper()
	c, err := dingtalk.NewCallbackCrypto(cbToken, cbAESKey, owner)
	if err != nil {
		t.Fatalf("NewCallbackCrypto: %v", err)
	}
	rc := &receiver{crypto: c, mode: mode}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	rc.url = srv.URL + "/dingtalk/events"
	return rc
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var body struct {
		Encrypt string `json:"encrypt"`
	}
	b, _ := io.ReadAll(r.Body)
	d := delivery{query: q}
	if err := json.Unmarshal(b, &body); err != nil {
		d.err = fmt.Errorf("body %q: %w", b, err)
	} else if plain, err := rc.crypto.Open(q.Get("signature"), q.Get("timestamp"), q.Get("nonce"), body.Encrypt); err != nil {
		d.err = err
	} else {
		d.plain = string(plain)
	}
	rc.mu.Lock()
	rc.got = append(rc.got, d)
	mode := rc.mode
	rc.mu.Unlock()

	switch {
	case mode == answerHang:
		<-r.Context().Done()
	case mode == answerPlain:
		_, _ = io.WriteString(w, "success")
	case mode == answer500 || d.err != nil:
		http.Error(w, "no", http.StatusInternalServerError)
	default:
		ts, nonce := strconv.FormatInt(time.Now().UnixMilli(), 10), "rcvnonce"
		enc, sig, err := rc.crypto.Seal([]byte("success"), ts, nonce)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(dingtalk.CallbackResponse{MsgSignature: sig, TimeStamp: ts, Nonce: nonce, Encrypt: enc})
	}
}

func (rc *receiver) setMode(mode string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.mode = mode
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

// callbackBody is a register/update body for url with the test secrets.
func callbackBody(url string, tags ...string) string {
	if tags == nil {
		tags = []string{"user_add_org", "user_leave_org"}
	}
	b, _ := json.Marshal(dingtalk.Callback{Tags: tags, Token: cbToken, AESKey: cbAESKey, URL: url})
	return string(b)
}

// legacy calls a callback endpoint with tok ("" for none) and returns the
// errcode, the answer decoded into v (if not nil) and its text.
func (e *env) legacy(t *testing.T, method, path, tok, body string, v any) (int, string) {
	t.Helper()
	if tok != "" {
		path += "?access_token=" + url.QueryEscape(tok)
	}
	status, a, text := e.raw(t, method, path, body)
	if status != http.StatusOK {
		t.Fatalf("%s %s: HTTP %d %s", method, path, status, text)
	}
	if strings.Contains(text, "request_id") {
		t.Errorf("%s %s: %s has a request_id, which the legacy host does not add", method, path, text)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(text), v); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, text)
		}
	}
	return a.code(), text
}

func (e *env) register(t *testing.T, tok, body string) (int, string) {
	t.Helper()
	return e.legacy(t, http.MethodPost, dingtalk.PathRegisterCallback, tok, body, nil)
}

// closedURL is the URL of a port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/events"
}

func TestRegisterCallback(t *testing.T) {
	credBoth := dingtalk.Credentials{AppKey: appBoth.Key, AppSecret: appBoth.Secret}
	tests := []struct {
		name     string
		cred     dingtalk.Credentials
		owner    string // the receiver's owner key
		mode     string // how the receiver answers; "" for no receiver
		wantCode int
		wantMsg  string // in errmsg
		wantPost bool   // the receiver got the check_url
	}{
		{name: "app key as owner", cred: credA, owner: appA.Key, mode: answerSuccess, wantPost: true},
		{name: "corp id as owner", cred: credBoth, owner: appBoth.CorpID, mode: answerSuccess, wantPost: true},
		{name: "receiver expects the app key, not the corp id", cred: credBoth, owner: appBoth.Key, mode: answerSuccess,
			wantCode: 71009, wantPost: true},
		{name: "plain success", cred: credA, owner: appA.Key, mode: answerPlain, wantCode: 71009, wantMsg: "not the JSON", wantPost: true},
		{name: "HTTP 500", cred: credA, owner: appA.Key, mode: answer500, wantCode: 71009, wantMsg: "HTTP status 500", wantPost: true},
		{name: "unreachable", cred: credA, wantCode: 71012, wantMsg: "url地址访问异常"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, nil)
			tok := e.token(t, tt.cred)
			var rc *receiver
			u := closedURL(t)
			if tt.mode != "" {
				rc = newReceiver(t, tt.owner, tt.mode)
				u = rc.url
			}
			code, text := e.register(t, tok, callbackBody(u))
			if code != tt.wantCode || !strings.Contains(text, tt.wantMsg) {
				t.Fatalf("register: %s, want errcode %d with %q", text, tt.wantCode, tt.wantMsg)
			}
			if rc != nil {
				got := rc.deliveries()
				if !tt.wantPost || len(got) != 1 {
					t.Fatalf("receiver got %d posts, want 1", len(got))
				}
				d := got[0]
				if tt.wantCode == 0 && (d.err != nil || d.plain != `{"EventType":"check_url"}`) {
					t.Errorf("check_url opened to %q (%v), want {\"EventType\":\"check_url\"}", d.plain, d.err)
				}
				if ts := d.query.Get("timestamp"); ts != strconv.FormatInt(e.clock.Now().UnixMilli(), 10) {
					t.Errorf("timestamp %q, want the fake clock in ms", ts)
				}
				if d.query.Get("signature") == "" || d.query.Get("nonce") == "" {
					t.Errorf("query %v, want signature and nonce", d.query)
				}
			}
			// The answer is not the registration's: get tells.
			wantGet := 71007
			if tt.wantCode == 0 {
				wantGet = 0
			}
			if code, text := e.legacy(t, http.MethodGet, dingtalk.PathGetCallback, tok, "", nil); code != wantGet {
				t.Errorf("get after register: %s, want errcode %d", text, wantGet)
			}
			// The recorded call hides the callback's secrets.
			var reg *fake.Call
			for _, c := range e.fake.Calls() {
				if c.Path == dingtalk.PathRegisterCallback {
					reg = &c
				}
			}
			if reg == nil || reg.ErrCode != tt.wantCode || reg.App != tt.cred.AppKey {
				t.Fatalf("recorded %+v, want the register call with errcode %d", reg, tt.wantCode)
			}
			if b := string(reg.Body); strings.Contains(b, cbAESKey) || strings.Contains(b, `"token":"`+cbToken) || !strings.Contains(b, u) {
				t.Errorf("recorded body %s shows a secret or lost the url", b)
			}
		})
	}
}

func TestRegisterCallbackTimeout(t *testing.T) {
	e := setup(t, nil)
	tok := e.token(t, credA)
	rc := newReceiver(t, appA.Key, answerHang)
	start := time.Now()
	code, text := e.register(t, tok, callbackBody(rc.url))
	took := time.Since(start)
	if code != 71012 {
		t.Fatalf("register with a receiver that never answers: %s, want 71012", text)
	}
	if took < fake.CallbackTimeout || took > fake.CallbackTimeout+5*time.Second {
		t.Errorf("register took %s, want about %s", took, fake.CallbackTimeout)
	}
}

func TestRegisterCallbackDoesNotHoldTheLock(t *testing.T) {
	e := setup(t, nil)
	tok := e.token(t, credA)
	// The receiver calls the fake while the fake waits for its answer.
	var during atomic.Int64
	inner := newReceiver(t, appA.Key, answerSuccess)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		during.Store(int64(len(e.fake.Calls())))
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	if code, text := e.register(t, tok, callbackBody(srv.URL)); code != 0 {
		t.Fatalf("register: %s", text)
	}
	if n := during.Load(); n != 1 { // the gettoken call
		t.Errorf("the fake had %d calls during check_url, want 1", n)
	}
}

func TestRegisterCallbackValidation(t *testing.T) {
	e := setup(t, nil)
	tok := e.token(t, credA)
	rc := newReceiver(t, appA.Key, answerSuccess)
	body := func(tags []string, token, aesKey, u string) string {
		b, _ := json.Marshal(dingtalk.Callback{Tags: tags, Token: token, AESKey: aesKey, URL: u})
		return string(b)
	}
	tags := []string{"user_add_org"}
	tests := []struct {
		name     string
		tok      string
		body     string
		wantCode int
		wantMsg  string
	}{
		{name: "no token", body: callbackBody(rc.url), wantCode: 41001},
		{name: "bad token", tok: "nope", body: callbackBody(rc.url), wantCode: 40014},
		{name: "not JSON", tok: tok, body: "{", wantCode: 400002},
		{name: "no tag", tok: tok, body: body(nil, cbToken, cbAESKey, rc.url), wantCode: 71008},
		{name: "unknown tag", tok: tok, body: body([]string{"user_add_org", "nosuch"}, cbToken, cbAESKey, rc.url), wantCode: 71008, wantMsg: "nosuch"},
		{name: "check_url is no tag", tok: tok, body: body([]string{"check_url"}, cbToken, cbAESKey, rc.url), wantCode: 71008},
		{name: "token too short", tok: tok, body: body(tags, "12345", cbAESKey, rc.url), wantCode: 400002, wantMsg: "token"},
		{name: "token too long", tok: tok, body: body(tags, strings.Repeat("t", 65), cbAESKey, rc.url), wantCode: 400002, wantMsg: "token"},
		{name: "aes_key too short", tok: tok, body: body(tags, cbToken, cbAESKey[:42], rc.url), wantCode: 400002, wantMsg: "aes_key"},
		{name: "aes_key not alnum", tok: tok, body: body(tags, cbToken, cbAESKey[:42]+"+", rc.url), wantCode: 400002, wantMsg: "aes_key"},
		{name: "no url", tok: tok, body: body(tags, cbToken, cbAESKey, ""), wantCode: 41010},
		{name: "not http", tok: tok, body: body(tags, cbToken, cbAESKey, "ftp://example.com/x"), wantCode: 71011},
		{name: "relative url", tok: tok, body: body(tags, cbToken, cbAESKey, "/events"), wantCode: 71011},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, text := e.register(t, tt.tok, tt.body)
			if code != tt.wantCode || !strings.Contains(text, tt.wantMsg) {
				t.Errorf("register: %s, want errcode %d with %q", text, tt.wantCode, tt.wantMsg)
			}
			if strings.Contains(text, cbAESKey[:20]) {
				t.Errorf("answer %s shows the aes_key", text)
			}
		})
	}
	if n := len(rc.deliveries()); n != 0 {
		t.Errorf("the receiver got %d posts for refused registrations, want none", n)
	}

	// Every tag the fake lists registers.
	if code, text := e.register(t, tok, body(fake.CallbackTags(), cbToken, cbAESKey, rc.url)); code != 0 {
		t.Fatalf("register with every tag: %s", text)
	}
	for _, tag := range []string{"user_add_org", "user_modify_org", "user_leave_org", "org_dept_create", "org_dept_modify",
		"org_dept_remove", "chat_add_member", "chat_remove_member", "chat_disband", "bpms_task_change", "bpms_instance_change"} {
		if !strings.Contains(strings.Join(fake.CallbackTags(), ","), tag) {
			t.Errorf("CallbackTags lacks %s", tag)
		}
	}
	// Twice: 71006, with no check_url.
	before := len(rc.deliveries())
	if code, text := e.register(t, tok, callbackBody(rc.url)); code != 71006 {
		t.Errorf("register twice: %s, want 71006", text)
	}
	if n := len(rc.deliveries()); n != before {
		t.Errorf("the second register posted %d check_url, want none", n-before)
	}
}

// getCallbackAnswer is get_call_back's answer.
type getCallbackAnswer struct {
	ErrCode int      `json:"errcode"`
	Tags    []string `json:"call_back_tag"`
	Token   string   `json:"token"`
	AESKey  string   `json:"aes_key"`
	URL     string   `json:"url"`
}

func TestCallbackUpdateGetDelete(t *testing.T) {
	e := setup(t, nil)
	tok := e.token(t, credA)
	tokB := e.token(t, dingtalk.Credentials{AppKey: appB.Key, AppSecret: appB.Secret})
	first := newReceiver(t, appA.Key, answerSuccess)
	second := newReceiver(t, appA.Key, answerSuccess)
	get := func() (getCallbackAnswer, string) {
		t.Helper()
		var g getCallbackAnswer
		_, text := e.legacy(t, http.MethodGet, dingtalk.PathGetCallback, tok, "", &g)
		return g, text
	}

	// Nothing registered: 71007 everywhere.
	if g, text := get(); g.ErrCode != 71007 || !strings.Contains(text, "回调地址已不存在") {
		t.Errorf("get with none: %s, want 71007", text)
	}
	if code, text := e.legacy(t, http.MethodPost, dingtalk.PathUpdateCallback, tok, callbackBody(first.url), nil); code != 71007 {
		t.Errorf("update with none: %s, want 71007", text)
	}
	if code, text := e.legacy(t, http.MethodGet, dingtalk.PathDeleteCallback, tok, "", nil); code != 71007 {
		t.Errorf("delete with none: %s, want 71007", text)
	}
	if n := len(first.deliveries()); n != 0 {
		t.Fatalf("update with none posted %d check_url", n)
	}

	if code, text := e.register(t, tok, callbackBody(first.url)); code != 0 {
		t.Fatalf("register: %s", text)
	}
	g, text := get()
	if g.ErrCode != 0 || g.URL != first.url || g.Token != cbToken || g.AESKey != cbAESKey ||
		strings.Join(g.Tags, ",") != "user_add_org,user_leave_org" {
		t.Errorf("get: %s, want the registration at the top level", text)
	}
	// One per app: appB has none.
	if code, text := e.legacy(t, http.MethodGet, dingtalk.PathGetCallback, tokB, "", nil); code != 71007 {
		t.Errorf("get for another app: %s, want 71007", text)
	}

	// An update whose check_url fails changes nothing.
	failing := newReceiver(t, appA.Key, answerPlain)
	if code, text := e.legacy(t, http.MethodPost, dingtalk.PathUpdateCallback, tok, callbackBody(failing.url, "chat_disband"), nil); code != 71009 {
		t.Errorf("update to a receiver answering plain text: %s, want 71009", text)
	}
	if g, _ := get(); g.URL != first.url {
		t.Errorf("after a failed update, url %q, want the first", g.URL)
	}
	// A good one moves it, after a check_url to the new URL.
	if code, text := e.legacy(t, http.MethodPost, dingtalk.PathUpdateCallback, tok, callbackBody(second.url, "chat_disband"), nil); code != 0 {
		t.Fatalf("update: %s", text)
	}
	if d := second.deliveries(); len(d) != 1 || d[0].plain != `{"EventType":"check_url"}` {
		t.Errorf("the new URL got %+v, want one check_url", d)
	}
	if g, text := get(); g.URL != second.url || strings.Join(g.Tags, ",") != "chat_disband" {
		t.Errorf("get after update: %s", text)
	}
	if code, text := e.legacy(t, http.MethodPost, dingtalk.PathUpdateCallback, tok, callbackBody(second.url, "nosuch"), nil); code != 71008 {
		t.Errorf("update with a bad tag: %s, want 71008", text)
	}

	// The admin endpoint shows it, without its secrets.
	status, _, adminText := e.raw(t, http.MethodGet, fake.PathAdminCallbacks, "")
	var infos []fake.CallbackInfo
	if err := json.Unmarshal([]byte(adminText), &infos); status != 200 || err != nil {
		t.Fatalf("GET %s: HTTP %d %s (%v)", fake.PathAdminCallbacks, status, adminText, err)
	}
	if len(infos) != 1 || infos[0].App != appA.Key || infos[0].URL != second.url || !infos[0].Registered.Equal(e.clock.Now()) {
		t.Errorf("callbacks = %s, want appA's at the second URL", adminText)
	}
	if strings.Contains(adminText, cbAESKey) || strings.Contains(adminText, `"`+cbToken+`"`) {
		t.Errorf("callbacks %s shows a secret", adminText)
	}

	if code, text := e.legacy(t, http.MethodGet, dingtalk.PathDeleteCallback, tok, "", nil); code != 0 {
		t.Fatalf("delete: %s", text)
	}
	if g, text := get(); g.ErrCode != 71007 {
		t.Errorf("get after delete: %s, want 71007", text)
	}
	if code, text := e.legacy(t, http.MethodGet, dingtalk.PathDeleteCallback, tok, "", nil); code != 71007 {
		t.Errorf("delete twice: %s, want 71007", text)
	}
	// Registering again works, and Reset forgets it.
	if code, text := e.register(t, tok, callbackBody(first.url)); code != 0 {
		t.Fatalf("register after delete: %s", text)
	}
	e.fake.Reset()
	if got := e.fake.Callbacks(); len(got) != 0 {
		t.Errorf("after Reset: %+v, want no callback", got)
	}
}

// pushAnswer is POST /_fake/push's answer.
type pushAnswer struct {
	ErrCode int `json:"errcode"`
	Pushed  int `json:"pushed"`
	Failed  int `json:"failed"`
}

func (e *env) adminPush(t *testing.T, body string) pushAnswer {
	t.Helper()
	status, _, text := e.raw(t, http.MethodPost, fake.PathAdminPush, body)
	var a pushAnswer
	if err := json.Unmarshal([]byte(text), &a); status != http.StatusOK || err != nil {
		t.Fatalf("POST %s: HTTP %d %s", fake.PathAdminPush, status, text)
	}
	return a
}

func TestPush(t *testing.T) {
	e := setup(t, nil)
	tok := e.token(t, credA)
	rc := newReceiver(t, appA.Key, answerSuccess)
	if code, text := e.register(t, tok, callbackBody(rc.url)); code != 0 {
		t.Fatalf("register: %s", text)
	}
	e.clock.Advance(time.Second)
	event := `{"EventType":"user_add_org","TimeStamp":1735787045000,"UserId":["u1","u2"],"CorpId":"dingcorp"}`
	a := e.adminPush(t, `{"app":"`+appA.Key+`","events":[`+event+`],"times":2}`)
	if a.ErrCode != 0 || a.Pushed != 2 || a.Failed != 0 {
		t.Fatalf("push: %+v, want 2 pushed", a)
	}
	got := rc.deliveries()
	if len(got) != 3 {
		t.Fatalf("receiver got %d posts, want check_url and 2 events", len(got))
	}
	one, two := got[1], got[2]
	if one.err != nil || two.err != nil || one.plain != event || two.plain != event {
		t.Errorf("events opened to %q (%v) and %q (%v), want %s twice", one.plain, one.err, two.plain, two.err, event)
	}
	if one.query.Get("nonce") == two.query.Get("nonce") || one.query.Get("signature") == two.query.Get("signature") {
		t.Errorf("the re-push has the same nonce or signature: %v, %v", one.query, two.query)
	}
	if ts := one.query.Get("timestamp"); ts != strconv.FormatInt(e.clock.Now().UnixMilli(), 10) {
		t.Errorf("timestamp %q, want the fake clock in ms", ts)
	}
	if st := e.fake.Stats(); st.Pushed != 2 || st.PushFailed != 0 {
		t.Errorf("stats pushed %d, failed %d; want 2, 0", st.Pushed, st.PushFailed)
	}

	// The Go API, by corp id or key.
	if err := e.fake.Push(appA.Key, []byte(`{"EventType":"chat_disband","ChatId":"c1"}`)); err != nil {
		t.Errorf("Push: %v", err)
	}
	if n := len(rc.deliveries()); n != 4 {
		t.Errorf("receiver got %d posts, want 4", n)
	}
	if err := e.fake.Push("nosuch", []byte(`{}`)); !errors.Is(err, fake.ErrUnknownApp) {
		t.Errorf("Push to an unknown app: %v, want ErrUnknownApp", err)
	}
	if err := e.fake.Push(appBoth.CorpID, []byte(`{}`)); !errors.Is(err, fake.ErrNoCallback) {
		t.Errorf("Push to an app with no callback: %v, want ErrNoCallback", err)
	}
	if err := e.fake.Push(appA.Key, []byte(`{`)); err == nil {
		t.Errorf("Push of no JSON: nil error")
	}
	if st := e.fake.Stats(); st.Pushed != 3 || st.PushFailed != 0 {
		t.Errorf("stats pushed %d, failed %d; want 3, 0", st.Pushed, st.PushFailed)
	}

	// Admin refusals.
	for _, body := range []string{``, `{"events":[{}]}`, `{"app":"` + appA.Key + `"}`, `{"app":"` + appA.Key + `","events":[{}],"times":-1}`,
		`{"app":"nosuch","events":[{}]}`, `{"app":"` + appA.Key + `","events":[{}],"extra":1}`} {
		if status, _, text := e.raw(t, http.MethodPost, fake.PathAdminPush, body); status != http.StatusBadRequest {
			t.Errorf("POST %s %s: HTTP %d %s, want 400", fake.PathAdminPush, body, status, text)
		}
	}
}

// failedAnswer is get_call_back_failed_result's answer.
type failedAnswer struct {
	ErrCode    int                          `json:"errcode"`
	HasMore    bool                         `json:"has_more"`
	FailedList []map[string]json.RawMessage `json:"failed_list"`
}

func TestPushFailed(t *testing.T) {
	e := setup(t, nil)
	tok := e.token(t, credA)
	rc := newReceiver(t, appA.Key, answerSuccess)
	if code, text := e.register(t, tok, callbackBody(rc.url)); code != 0 {
		t.Fatalf("register: %s", text)
	}
	failed := func() failedAnswer {
		t.Helper()
		var a failedAnswer
		if code, text := e.legacy(t, http.MethodGet, dingtalk.PathCallbackFailed, tok, "", &a); code != 0 || a.FailedList == nil {
			t.Fatalf("get_call_back_failed_result: %s", text)
		}
		return a
	}
	if a := failed(); a.HasMore || len(a.FailedList) != 0 {
		t.Fatalf("failed list before any failure: %+v", a)
	}

	rc.setMode(answer500)
	event := `{"EventType":"user_leave_org","UserId":["u9"]}`
	err := e.fake.Push(appA.Key, []byte(event))
	var perr *fake.PushError
	if !errors.As(err, &perr) || perr.Unreachable || perr.App != appA.Key {
		t.Fatalf("Push to a failing receiver: %v, want a *PushError, not unreachable", err)
	}
	a := failed()
	if a.HasMore || len(a.FailedList) != 1 {
		t.Fatalf("failed list: %+v, want the event", a)
	}
	f := a.FailedList[0]
	if string(f["call_back_tag"]) != `"user_leave_org"` || string(f["user_leave_org"]) != event ||
		string(f["event_time"]) != strconv.FormatInt(e.clock.Now().UnixMilli(), 10) {
		t.Errorf("failed event = %v, want the event under its tag with its time", f)
	}
	if a := failed(); len(a.FailedList) != 0 {
		t.Errorf("failed list asked again: %+v, want it empty", a)
	}

	// An unreachable receiver: the same, marked unreachable.
	e2 := setup(t, nil)
	tok2 := e2.token(t, credA)
	gone := newReceiver(t, appA.Key, answerSuccess)
	if code, text := e2.register(t, tok2, callbackBody(gone.url)); code != 0 {
		t.Fatalf("register: %s", text)
	}
	gone.setMode(answerHang)
	start := time.Now()
	if err := e2.fake.Push(appA.Key, []byte(event)); !errors.As(err, &perr) || !perr.Unreachable {
		t.Errorf("Push to a receiver that never answers: %v, want unreachable", err)
	}
	if took := time.Since(start); took > fake.CallbackTimeout+5*time.Second {
		t.Errorf("Push took %s, want about %s", took, fake.CallbackTimeout)
	}

	// 201 failures: 200, then 1, then none.
	p := e.adminPush(t, `{"app":"`+appA.Key+`","events":[`+event+`,{"EventType":"chat_disband"}],"times":100}`)
	if p.Pushed != 0 || p.Failed != 200 {
		t.Fatalf("push: %+v, want 200 failed", p)
	}
	if err := e.fake.Push(appA.Key, []byte(`{"no":"type"}`)); err == nil {
		t.Fatal("Push to a failing receiver: nil error")
	}
	if st := e.fake.Stats(); st.PushFailed != 202 || st.Pushed != 0 {
		t.Errorf("stats pushed %d, failed %d; want 0, 202", st.Pushed, st.PushFailed)
	}
	a = failed()
	if !a.HasMore || len(a.FailedList) != 200 {
		t.Fatalf("first page: has_more %t, %d events; want true, 200", a.HasMore, len(a.FailedList))
	}
	if tag := string(a.FailedList[0]["call_back_tag"]); tag != `"user_leave_org"` {
		t.Errorf("first failed event's tag %s, want the oldest first", tag)
	}
	if tag := string(a.FailedList[100]["call_back_tag"]); tag != `"chat_disband"` {
		t.Errorf("event 100's tag %s, want chat_disband (each event pushed 100 times in a row)", tag)
	}
	a = failed()
	if a.HasMore || len(a.FailedList) != 1 || string(a.FailedList[0]["event"]) != `{"no":"type"}` || string(a.FailedList[0]["call_back_tag"]) != `""` {
		t.Fatalf("second page: %+v, want the untyped event alone", a)
	}
	if a := failed(); a.HasMore || len(a.FailedList) != 0 {
		t.Fatalf("third page: %+v, want none", a)
	}
}
