package fake_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/dingtalk/fake"
)

// The apps every test knows.
var (
	appA    = fake.App{Key: "dingkeyA", Secret: "secret-A-7f3a9c", AgentID: 1001}
	appB    = fake.App{Key: "dingkeyB", Secret: "secret-B-19be44"}
	appCorp = fake.App{CorpID: "dingcorp1", CorpSecret: "corpsecret-5d2e"}
	appBoth = fake.App{Key: "dingkeyBoth", Secret: "secret-both-aa", CorpID: "dingcorpBoth", CorpSecret: "corpsecret-both-bb"}
)

var credA = dingtalk.Credentials{AppKey: appA.Key, AppSecret: appA.Secret}

// clock is a settable clock for Options.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is one fake host served over HTTP with the real client pointed at it.
type env struct {
	fake   *fake.Server
	url    string
	client *dingtalk.Client
	clock  *clock
}

// setup starts a fake knowing appA, appB, appCorp and appBoth, on an
// injected clock, and a real client pointed at it.
func setup(t *testing.T, opts *fake.Options) *env {
	t.Helper()
	clk := &clock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	if opts == nil {
		opts = &fake.Options{}
	}
	if opts.Now == nil {
		opts.Now = clk.Now
	}
	f := fake.New([]fake.App{appA, appB, appCorp, appBoth}, opts)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := dingtalk.NewClient(dingtalk.WithBaseURL(srv.URL))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return &env{fake: f, url: srv.URL, client: c, clock: clk}
}

func (e *env) token(t *testing.T, cred dingtalk.Credentials) string {
	t.Helper()
	tok, err := e.client.GetToken(context.Background(), cred)
	if err != nil {
		t.Fatalf("GetToken(%s): %v", cred, err)
	}
	return tok.AccessToken
}

// answer is any answer of the fake host, decoded.
type answer struct {
	ErrCode     *int   `json:"errcode"`
	ErrMsg      string `json:"errmsg"`
	SubCode     string `json:"sub_code"`
	SubMsg      string `json:"sub_msg"`
	RequestID   string `json:"request_id"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	TaskID      int64  `json:"task_id"`
}

func (a answer) code() int {
	if a.ErrCode == nil {
		return -12345
	}
	return *a.ErrCode
}

// raw calls the fake without the client: method, path with query, body
// ("" for none). It returns the HTTP status, the answer decoded (if JSON)
// and its text.
func (e *env) raw(t *testing.T, method, pathQuery, body string) (int, answer, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+pathQuery, rd)
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, pathQuery, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading answer: %v", err)
	}
	var a answer
	_ = json.Unmarshal(b, &a) // not JSON: a zero answer, whose code() no test wants
	return resp.StatusCode, a, string(b)
}

func sendPath(token string) string {
	return dingtalk.PathAsyncSendV2 + "?access_token=" + url.QueryEscape(token)
}

func textRequest(agentID int64, content string) *dingtalk.SendRequest {
	return &dingtalk.SendRequest{AgentID: agentID, UserIDs: []string{"u1", "u2"}, Msg: dingtalk.TextMessage(content)}
}

func asError(t *testing.T, err error) *dingtalk.Error {
	t.Helper()
	var de *dingtalk.Error
	if !errors.As(err, &de) {
		t.Fatalf("got error %v (%T), want a *dingtalk.Error", err, err)
	}
	return de
}

func TestGetToken(t *testing.T) {
	tests := []struct {
		name     string
		cred     dingtalk.Credentials
		wantCode int // 0: a token
		wantApp  string
	}{
		{name: "appkey form", cred: credA, wantApp: appA.Key},
		{name: "corpid form", cred: dingtalk.Credentials{CorpID: appCorp.CorpID, CorpSecret: appCorp.CorpSecret}, wantApp: appCorp.CorpID},
		{name: "wrong appsecret", cred: dingtalk.Credentials{AppKey: appA.Key, AppSecret: "nope"}, wantCode: 40096, wantApp: appA.Key},
		{name: "unknown appkey", cred: dingtalk.Credentials{AppKey: "nokey", AppSecret: appA.Secret}, wantCode: 40096, wantApp: "nokey"},
		{name: "another app's secret", cred: dingtalk.Credentials{AppKey: appA.Key, AppSecret: appB.Secret}, wantCode: 40096, wantApp: appA.Key},
		{name: "wrong corpsecret", cred: dingtalk.Credentials{CorpID: appCorp.CorpID, CorpSecret: "nope"}, wantCode: 40089, wantApp: appCorp.CorpID},
		{name: "unknown corpid", cred: dingtalk.Credentials{CorpID: "nocorp", CorpSecret: appCorp.CorpSecret}, wantCode: 40089, wantApp: "nocorp"},
		{name: "corpid of an appkey-only app", cred: dingtalk.Credentials{CorpID: appA.Key, CorpSecret: appA.Secret}, wantCode: 40089, wantApp: appA.Key},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, nil)
			tok, err := e.client.GetToken(context.Background(), tt.cred)
			if tt.wantCode == 0 {
				if err != nil {
					t.Fatalf("GetToken: %v", err)
				}
				if len(tok.AccessToken) != 32 || strings.Trim(tok.AccessToken, "0123456789abcdef") != "" {
					t.Errorf("token %q: want 32 hex digits", tok.AccessToken)
				}
				if tok.ExpiresIn != 7200*time.Second {
					t.Errorf("ExpiresIn = %s, want 2h0m0s", tok.ExpiresIn)
				}
			} else {
				de := asError(t, err)
				if de.Code != tt.wantCode || !de.BadCredentials() || !de.NeedsOperator() {
					t.Errorf("got %v (BadCredentials %t, NeedsOperator %t), want errcode %d, bad credentials",
						de, de.BadCredentials(), de.NeedsOperator(), tt.wantCode)
				}
				if dingtalk.Classify(err) != dingtalk.ClassPermanent {
					t.Errorf("Classify = %s, want permanent", dingtalk.Classify(err))
				}
				if strings.Contains(err.Error(), tt.cred.AppSecret+tt.cred.CorpSecret) {
					t.Errorf("error %q shows the secret", err)
				}
			}
			calls := e.fake.Calls()
			if len(calls) != 1 {
				t.Fatalf("got %d calls, want 1", len(calls))
			}
			c := calls[0]
			if c.Method != http.MethodGet || c.Path != dingtalk.PathGetToken || c.App != tt.wantApp || c.ErrCode != tt.wantCode || c.Body != nil {
				t.Errorf("call = %+v, want GET %s app %q errcode %d no body", c, dingtalk.PathGetToken, tt.wantApp, tt.wantCode)
			}
			if got := e.fake.TokenFetches(tt.wantApp); got != 1 {
				t.Errorf("TokenFetches(%q) = %d, want 1", tt.wantApp, got)
			}
		})
	}
}

func TestGetTokenMissingParameter(t *testing.T) {
	tests := []struct {
		name  string
		query string
		want  string // errmsg
	}{
		{name: "nothing", query: "", want: "缺少参数 appkey"},
		{name: "appkey without appsecret", query: "?appkey=" + appA.Key, want: "缺少参数 appsecret"},
		{name: "empty appsecret", query: "?appkey=" + appA.Key + "&appsecret=", want: "缺少参数 appsecret"},
		{name: "appsecret without appkey", query: "?appsecret=" + appA.Secret, want: "缺少参数 appkey"},
		{name: "corpid without corpsecret", query: "?corpid=" + appCorp.CorpID, want: "缺少参数 corpsecret"},
		{name: "corpsecret without corpid", query: "?corpsecret=" + appCorp.CorpSecret, want: "缺少参数 corpid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, nil)
			status, a, text := e.raw(t, http.MethodGet, dingtalk.PathGetToken+tt.query, "")
			if status != http.StatusOK || a.code() != 40035 || a.ErrMsg != tt.want || a.AccessToken != "" {
				t.Errorf("got HTTP %d %s, want 200 errcode 40035 %q", status, text, tt.want)
			}
			if strings.Contains(text, "secret-") || strings.Contains(text, "request_id") {
				t.Errorf("answer %s shows a secret or a request_id", text)
			}
		})
	}
}

func TestGetTokenSameTokenExtended(t *testing.T) {
	e := setup(t, nil)
	_, first, _ := e.raw(t, http.MethodGet, dingtalk.PathGetToken+"?appkey="+appA.Key+"&appsecret="+appA.Secret, "")
	if first.code() != 0 || first.ExpiresIn != 7200 || first.ErrMsg != "ok" {
		t.Fatalf("first answer %+v, want ok with expires_in 7200", first)
	}

	e.clock.Advance(time.Hour)
	second := e.token(t, credA)
	if second != first.AccessToken {
		t.Fatalf("second fetch an hour later gave another token")
	}
	if other := e.token(t, dingtalk.Credentials{AppKey: appB.Key, AppSecret: appB.Secret}); other == second {
		t.Fatalf("two apps share one token")
	}

	// The second fetch extended the token to 1h+2h: valid 1s before, not at.
	e.clock.Advance(2*time.Hour - time.Second)
	if _, err := e.client.SendWorkNotification(context.Background(), second, textRequest(appA.AgentID, "still valid")); err != nil {
		t.Fatalf("send 1s before the extended expiry: %v", err)
	}
	e.clock.Advance(time.Second)
	_, err := e.client.SendWorkNotification(context.Background(), second, textRequest(appA.AgentID, "expired"))
	if de := asError(t, err); de.Code != 88 || de.SubCode != "40014" || !de.TokenInvalid() {
		t.Fatalf("send at the extended expiry: %v, want errcode 88 sub_code 40014", err)
	}

	third := e.token(t, credA)
	if third == second {
		t.Fatalf("fetch after expiry gave the expired token again")
	}
	if got := e.fake.TokenFetches(appA.Key); got != 3 {
		t.Errorf("TokenFetches = %d, want 3", got)
	}
}

func TestGetTokenBothForms(t *testing.T) {
	e := setup(t, nil)
	byKey := e.token(t, dingtalk.Credentials{AppKey: appBoth.Key, AppSecret: appBoth.Secret})
	byCorp := e.token(t, dingtalk.Credentials{CorpID: appBoth.CorpID, CorpSecret: appBoth.CorpSecret})
	if byKey != byCorp {
		t.Errorf("the two forms of one app got different tokens")
	}
	for _, id := range []string{appBoth.Key, appBoth.CorpID} {
		if got := e.fake.TokenFetches(id); got != 2 {
			t.Errorf("TokenFetches(%q) = %d, want 2", id, got)
		}
	}
	if got := e.fake.TokenFetches("never-asked"); got != 0 {
		t.Errorf("TokenFetches(never-asked) = %d, want 0", got)
	}
}

func TestTokenLifetimeOption(t *testing.T) {
	e := setup(t, &fake.Options{TokenLifetime: time.Minute})
	_, a, _ := e.raw(t, http.MethodGet, dingtalk.PathGetToken+"?corpid="+appCorp.CorpID+"&corpsecret="+appCorp.CorpSecret, "")
	if a.code() != 0 || a.ExpiresIn != 60 {
		t.Fatalf("answer %+v, want expires_in 60", a)
	}
	e.clock.Advance(time.Minute)
	_, err := e.client.SendWorkNotification(context.Background(), a.AccessToken, textRequest(1, "late"))
	if dingtalk.Classify(err) != dingtalk.ClassTokenInvalid {
		t.Fatalf("send after a minute: %v, want token invalid", err)
	}
}

func TestRevoke(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, e *env) // before Revoke
		id      string
		want    bool
	}{
		{name: "app key with a token", id: appA.Key, want: true,
			prepare: func(t *testing.T, e *env) { e.token(t, credA) }},
		{name: "corp id of an app with both forms", id: appBoth.CorpID, want: true,
			prepare: func(t *testing.T, e *env) {
				e.token(t, dingtalk.Credentials{AppKey: appBoth.Key, AppSecret: appBoth.Secret})
			}},
		{name: "unknown app", id: "nokey", prepare: func(t *testing.T, e *env) { e.token(t, credA) }},
		{name: "empty id", id: ""},
		{name: "known app without a token", id: appB.Key, prepare: func(t *testing.T, e *env) { e.token(t, credA) }},
		{name: "already revoked", id: appA.Key, prepare: func(t *testing.T, e *env) {
			e.token(t, credA)
			if !e.fake.Revoke(appA.Key) {
				t.Fatal("first Revoke = false, want true")
			}
		}},
		{name: "expired token", id: appA.Key, prepare: func(t *testing.T, e *env) {
			e.token(t, credA)
			e.clock.Advance(7200 * time.Second)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, nil)
			if tt.prepare != nil {
				tt.prepare(t, e)
			}
			if got := e.fake.Revoke(tt.id); got != tt.want {
				t.Errorf("Revoke(%q) = %t, want %t", tt.id, got, tt.want)
			}
		})
	}
}

func TestRevokeInvalidatesToken(t *testing.T) {
	e := setup(t, nil)
	ctx := context.Background()
	old := e.token(t, credA)
	other := e.token(t, dingtalk.Credentials{AppKey: appB.Key, AppSecret: appB.Secret})
	if _, err := e.client.SendWorkNotification(ctx, old, textRequest(appA.AgentID, "before")); err != nil {
		t.Fatalf("send before revoking: %v", err)
	}
	if !e.fake.Revoke(appA.Key) {
		t.Fatal("Revoke = false, want true")
	}

	_, err := e.client.SendWorkNotification(ctx, old, textRequest(appA.AgentID, "after"))
	de := asError(t, err)
	if de.Code != 88 || de.SubCode != "40014" || de.SubMessage != "不合法的access_token" || de.RequestID == "" || !de.TokenInvalid() {
		t.Errorf("send with the revoked token: %v, want errcode 88 sub_code 40014, token invalid", err)
	}
	if _, err := e.client.SendWorkNotification(ctx, other, textRequest(9, "other app")); err != nil {
		t.Errorf("another app's token stopped working: %v", err)
	}

	fresh := e.token(t, credA)
	if fresh == old {
		t.Fatal("gettoken after Revoke gave the revoked token again")
	}
	if got := e.fake.TokenFetches(appA.Key); got != 2 {
		t.Errorf("TokenFetches = %d, want 2", got)
	}
	// A careless caller sends the revoked token: records still hide it.
	if _, err := e.client.SendWorkNotification(ctx, fresh, textRequest(appA.AgentID, "old token "+old)); err != nil {
		t.Fatalf("send with the new token: %v", err)
	}
	calls := e.fake.Calls()
	last := calls[len(calls)-1]
	if strings.Contains(string(last.Body), old) || !strings.Contains(string(last.Body), "old token ***") {
		t.Errorf("recorded body %s shows the revoked token", last.Body)
	}
	if calls[3].ErrCode != 88 || calls[3].App != appA.Key {
		t.Errorf("call 3 = %+v, want the refused send of %q, errcode 88", calls[3], appA.Key)
	}
}

func TestAdminRevoke(t *testing.T) {
	e := setup(t, nil)
	tok := e.token(t, credA)
	tests := []struct {
		name        string
		method      string
		query       string
		wantStatus  int
		wantRevoked string // the "revoked" field as written, "" if none
		wantText    string // in the answer
	}{
		{name: "app with a token", method: http.MethodPost, query: "?app=" + appA.Key, wantStatus: 200, wantRevoked: "true"},
		{name: "again", method: http.MethodPost, query: "?app=" + appA.Key, wantStatus: 200, wantRevoked: "false"},
		{name: "unknown app", method: http.MethodPost, query: "?app=nokey", wantStatus: 200, wantRevoked: "false"},
		{name: "no app parameter", method: http.MethodPost, wantStatus: 400, wantText: "missing query parameter app"},
		{name: "empty app parameter", method: http.MethodPost, query: "?app=", wantStatus: 400, wantText: "missing query parameter app"},
		{name: "GET", method: http.MethodGet, query: "?app=" + appA.Key, wantStatus: 405, wantText: "method not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, a, text := e.raw(t, tt.method, fake.PathAdminRevoke+tt.query, "")
			if status != tt.wantStatus || !strings.Contains(text, tt.wantText) {
				t.Errorf("got HTTP %d %s, want %d with %q", status, text, tt.wantStatus, tt.wantText)
			}
			if tt.wantRevoked != "" {
				want := `{"errcode":0,"errmsg":"ok","revoked":` + tt.wantRevoked + `}`
				if text != want || a.code() != 0 {
					t.Errorf("answer %s, want %s", text, want)
				}
			}
		})
	}
	_, err := e.client.SendWorkNotification(context.Background(), tok, textRequest(appA.AgentID, "revoked"))
	if dingtalk.Classify(err) != dingtalk.ClassTokenInvalid {
		t.Errorf("send with the token revoked over HTTP: %v, want token invalid", err)
	}
	if n := len(e.fake.Calls()); n != 2 {
		t.Errorf("%d calls recorded, want 2 (gettoken and the send; admin calls are not recorded)", n)
	}
}

func TestSendTokenErrors(t *testing.T) {
	tests := []struct {
		name    string
		token   func(t *testing.T, e *env) string // "" sends access_token= empty
		wantSub string
		wantApp string
	}{
		{name: "expired token", wantSub: "40014", wantApp: appA.Key, token: func(t *testing.T, e *env) string {
			tok := e.token(t, credA)
			e.clock.Advance(7200 * time.Second)
			return tok
		}},
		{name: "unknown token", wantSub: "40014", token: func(*testing.T, *env) string { return "0123456789abcdef0123456789abcdef" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, nil)
			tok := tt.token(t, e)
			_, err := e.client.SendWorkNotification(context.Background(), tok, textRequest(appA.AgentID, "hi"))
			de := asError(t, err)
			if de.Code != 88 || de.SubCode != tt.wantSub || de.RequestID == "" || de.SubMessage == "" {
				t.Errorf("got %v, want errcode 88 sub_code %s with request_id", de, tt.wantSub)
			}
			if !de.TokenInvalid() || dingtalk.Classify(err) != dingtalk.ClassTokenInvalid {
				t.Errorf("Classify = %s, want token_invalid", dingtalk.Classify(err))
			}
			if tok != "" && strings.Contains(err.Error(), tok) {
				t.Errorf("error %q shows the token", err)
			}
			if n := len(e.fake.Sent()); n != 0 {
				t.Errorf("%d sends recorded, want 0", n)
			}
			calls := e.fake.Calls()
			last := calls[len(calls)-1]
			if last.Path != dingtalk.PathAsyncSendV2 || last.ErrCode != 88 || last.App != tt.wantApp {
				t.Errorf("call = %+v, want %s errcode 88 app %q", last, dingtalk.PathAsyncSendV2, tt.wantApp)
			}
		})
	}
}

func TestSendWithoutAccessToken(t *testing.T) {
	e := setup(t, nil)
	status, a, text := e.raw(t, http.MethodPost, dingtalk.PathAsyncSendV2, `{"agent_id":1}`)
	if status != http.StatusOK || a.code() != 88 || a.SubCode != "40000" || a.RequestID == "" {
		t.Errorf("got HTTP %d %s, want 200 errcode 88 sub_code 40000 with request_id", status, text)
	}
}

func TestSendRecordsExactBody(t *testing.T) {
	e := setup(t, nil)
	tok := e.token(t, credA)
	res, err := e.client.SendWorkNotification(context.Background(), tok, textRequest(appA.AgentID, `hello <b>"u1" & u2</b>`))
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if res.TaskID != fake.FirstTaskID || res.RequestID == "" {
		t.Errorf("result %+v, want task_id %d and a request_id", res, fake.FirstTaskID)
	}

	const want = `{"agent_id":1001,"userid_list":"u1,u2","msg":{"msgtype":"text","text":{"content":"hello <b>\"u1\" & u2</b>"}}}`
	sent := e.fake.Sent()
	if len(sent) != 1 {
		t.Fatalf("got %d sends, want 1", len(sent))
	}
	s := sent[0]
	if string(s.Body) != want {
		t.Errorf("body\n got %s\nwant %s", s.Body, want)
	}
	if s.TaskID != res.TaskID || s.App != appA.Key || s.Token != tok || !s.Time.Equal(e.clock.Now()) {
		t.Errorf("sent = %+v, want task %d app %q with the app's token at %s", s, res.TaskID, appA.Key, e.clock.Now())
	}
	if s.Request.AgentID != 1001 || s.Request.UserIDList != "u1,u2" || s.Request.Msg.Text == nil ||
		s.Request.Msg.Text.Content != `hello <b>"u1" & u2</b>` {
		t.Errorf("request = %+v, want the body decoded", s.Request)
	}

	calls := e.fake.Calls()
	if len(calls) != 2 {
		t.Fatalf("got %d calls, want 2", len(calls))
	}
	c := calls[1]
	if c.Method != http.MethodPost || c.Path != dingtalk.PathAsyncSendV2 || c.App != appA.Key || c.ErrCode != 0 || string(c.Body) != want {
		t.Errorf("call = %+v, want POST %s app %q errcode 0 body %s", c, dingtalk.PathAsyncSendV2, appA.Key, want)
	}

	// What a test changes in its copy does not change the record.
	s.Request.Msg.Text.Content = "changed"
	s.Body[0] = 'X'
	if again := e.fake.Sent()[0]; again.Request.Msg.Text.Content == "changed" || string(again.Body) != want {
		t.Errorf("Sent returned the fake's own record, not a copy")
	}

	// The second send gets the next task id.
	res2, err := e.client.SendWorkNotification(context.Background(), tok, textRequest(appA.AgentID, "again"))
	if err != nil || res2.TaskID != fake.FirstTaskID+1 {
		t.Errorf("second send: %+v, %v; want task_id %d", res2, err, fake.FirstTaskID+1)
	}
}

func TestSendAgentID(t *testing.T) {
	tests := []struct {
		name     string
		cred     dingtalk.Credentials
		agentID  int64
		wantCode int
	}{
		{name: "the app's agent", cred: credA, agentID: appA.AgentID},
		{name: "another agent", cred: credA, agentID: appA.AgentID + 1, wantCode: 40056},
		{name: "app without agent takes any", cred: dingtalk.Credentials{AppKey: appB.Key, AppSecret: appB.Secret}, agentID: 777},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, nil)
			_, err := e.client.SendWorkNotification(context.Background(), e.token(t, tt.cred), textRequest(tt.agentID, "hi"))
			if tt.wantCode == 0 {
				if err != nil {
					t.Fatalf("send: %v", err)
				}
				return
			}
			de := asError(t, err)
			if de.Code != tt.wantCode || de.Message != "不合法的agentId" || de.Class() != dingtalk.ClassPermanent {
				t.Errorf("got %v (class %s), want errcode %d, permanent", de, de.Class(), tt.wantCode)
			}
			if n := len(e.fake.Sent()); n != 0 {
				t.Errorf("%d sends recorded, want 0", n)
			}
		})
	}
}

func TestSendInvalidRaw(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantCode int
		wantMsg  string // errmsg prefix
	}{
		{name: "malformed JSON", body: `{"agent_id":`, wantCode: 400002, wantMsg: "参数错误"},
		{name: "empty body", body: "", wantCode: 400002, wantMsg: "参数错误"},
		{name: "agent_id as a string", body: `{"agent_id":"1001","userid_list":"u1","msg":{"msgtype":"text","text":{"content":"x"}}}`,
			wantCode: 400002, wantMsg: "参数错误"},
		{name: "no agent_id", body: `{"userid_list":"u1","msg":{"msgtype":"text","text":{"content":"x"}}}`,
			wantCode: 40035, wantMsg: "缺少参数 agent_id"},
		{name: "no msgtype", body: `{"agent_id":1001,"userid_list":"u1","msg":{"text":{"content":"x"}}}`,
			wantCode: 40035, wantMsg: "缺少参数 msg.msgtype"},
		{name: "empty content", body: `{"agent_id":1001,"userid_list":"u1","msg":{"msgtype":"text","text":{"content":" "}}}`,
			wantCode: 40035, wantMsg: "缺少参数 msg.text.content"},
		{name: "no recipients", body: `{"agent_id":1001,"msg":{"msgtype":"text","text":{"content":"x"}}}`,
			wantCode: 40035, wantMsg: "缺少参数 userid_list"},
		{name: "empty user id", body: `{"agent_id":1001,"userid_list":"u1,,u2","msg":{"msgtype":"text","text":{"content":"x"}}}`,
			wantCode: 400002, wantMsg: "参数错误: userid_list[1]: empty id"},
		{name: "unknown msgtype", body: `{"agent_id":1001,"userid_list":"u1","msg":{"msgtype":"video"}}`,
			wantCode: 400002, wantMsg: "参数错误: msg.msgtype: unsupported"},
		{name: "voice too long", body: `{"agent_id":1001,"userid_list":"u1","msg":{"msgtype":"voice","voice":{"media_id":"m","duration":"99"}}}`,
			wantCode: 400002, wantMsg: "参数错误: msg.voice.duration: "},
		{name: "message over 2048 bytes", body: `{"agent_id":1001,"userid_list":"u1","msg":{"msgtype":"text","text":{"content":"` + strings.Repeat("x", 2100) + `"}}}`,
			wantCode: 400002, wantMsg: "参数错误: msg.text: "},
		{name: "body over 1 MiB", body: `{"agent_id":1001,"userid_list":"u1","msg":{"msgtype":"text","text":{"content":"` + strings.Repeat("x", 1<<20) + `"}}}`,
			wantCode: 400002, wantMsg: "参数错误: request body larger than 1 MiB"},
		{name: "unknown fields are ignored", body: `{"agent_id":1001,"userid_list":"u1","extra":true,"msg":{"msgtype":"text","text":{"content":"x","x":1}}}`,
			wantCode: 0, wantMsg: "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, nil)
			tok := e.token(t, credA)
			resp, err := http.Post(e.url+sendPath(tok), "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatalf("POST: %v", err)
			}
			defer resp.Body.Close()
			var a answer
			if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
				t.Fatalf("answer: %v", err)
			}
			if resp.StatusCode != http.StatusOK || a.code() != tt.wantCode || !strings.HasPrefix(a.ErrMsg, tt.wantMsg) || a.RequestID == "" {
				t.Errorf("got HTTP %d %+v, want 200 errcode %d errmsg %q… with request_id", resp.StatusCode, a, tt.wantCode, tt.wantMsg)
			}
			wantSent := 0
			if tt.wantCode == 0 {
				wantSent = 1
			}
			if n := len(e.fake.Sent()); n != wantSent {
				t.Errorf("%d sends recorded, want %d", n, wantSent)
			}
			calls := e.fake.Calls()
			if last := calls[len(calls)-1]; last.ErrCode != tt.wantCode || last.App != appA.Key {
				t.Errorf("call = %+v, want errcode %d app %q", last, tt.wantCode, appA.Key)
			}
		})
	}
}

func TestUnknownPathsAndMethods(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		path       string
		wantStatus int
		wantCode   int
		wantReqID  bool
	}{
		{name: "unknown topapi path", method: http.MethodPost, path: "/topapi/message/corpconversation/nosuch", wantStatus: 200, wantCode: 22, wantReqID: true},
		{name: "unimplemented topapi path", method: http.MethodPost, path: "/topapi/message/corpconversation/status_bar/update", wantStatus: 200, wantCode: 22, wantReqID: true},
		{name: "GET on asyncsend_v2", method: http.MethodGet, path: dingtalk.PathAsyncSendV2, wantStatus: 200, wantCode: 22, wantReqID: true},
		{name: "POST on gettoken", method: http.MethodPost, path: dingtalk.PathGetToken, wantStatus: 404, wantCode: 404},
		{name: "unknown path", method: http.MethodGet, path: "/nosuch", wantStatus: 404, wantCode: 404},
		{name: "root", method: http.MethodGet, path: "/", wantStatus: 404, wantCode: 404},
		{name: "unknown admin path", method: http.MethodGet, path: "/_fake/nosuch", wantStatus: 404, wantCode: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, nil)
			status, a, text := e.raw(t, tt.method, tt.path, `{"agent_id":1}`)
			if status != tt.wantStatus || a.code() != tt.wantCode || (a.RequestID != "") != tt.wantReqID {
				t.Errorf("got HTTP %d %s, want %d errcode %d (request_id %t)", status, text, tt.wantStatus, tt.wantCode, tt.wantReqID)
			}
		})
	}

	t.Run("client sees errcode 22 as permanent", func(t *testing.T) {
		e := setup(t, nil)
		c, err := dingtalk.NewClient(dingtalk.WithBaseURL(e.url + "/topapi/nosuch"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.SendWorkNotification(context.Background(), "tok", textRequest(1, "x"))
		if de := asError(t, err); de.Code != 22 || de.Message != "Invalid method" || de.Class() != dingtalk.ClassPermanent {
			t.Errorf("got %v (class %s), want errcode 22 Invalid method, permanent", de, de.Class())
		}
	})
}

func TestAdminEndpoints(t *testing.T) {
	e := setup(t, nil)
	ctx := context.Background()
	tokA := e.token(t, credA)
	tokCorp := e.token(t, dingtalk.Credentials{CorpID: appCorp.CorpID, CorpSecret: appCorp.CorpSecret})
	if _, err := e.client.SendWorkNotification(ctx, tokA, textRequest(appA.AgentID, "one")); err != nil {
		t.Fatal(err)
	}
	// A careless caller puts the token and a secret in the message itself.
	if _, err := e.client.SendWorkNotification(ctx, tokCorp, textRequest(9, "token "+tokCorp+" secret "+appA.Secret)); err != nil {
		t.Fatal(err)
	}
	_, _ = e.client.GetToken(ctx, dingtalk.Credentials{AppKey: appB.Key, AppSecret: "wrong-" + appB.Secret})
	// Secrets in a body nobody asked for, not JSON.
	e.raw(t, http.MethodPost, dingtalk.PathGetToken, "appkey="+appB.Key+"&appsecret="+appB.Secret)

	secrets := []string{tokA, tokCorp, appA.Secret, appB.Secret, appCorp.CorpSecret, appBoth.Secret, appBoth.CorpSecret}
	get := func(t *testing.T, path string) []byte {
		t.Helper()
		resp, err := http.Get(e.url + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: HTTP %d %s", path, resp.StatusCode, b)
		}
		for _, s := range secrets {
			if strings.Contains(string(b), s) {
				t.Errorf("GET %s shows secret or token %q: %s", path, s, b)
			}
		}
		return b
	}

	tests := []struct {
		name  string
		path  string
		check func(t *testing.T, b []byte)
	}{
		{name: "calls", path: fake.PathAdminCalls, check: func(t *testing.T, b []byte) {
			var calls []fake.Call
			if err := json.Unmarshal(b, &calls); err != nil {
				t.Fatal(err)
			}
			if len(calls) != 6 {
				t.Fatalf("got %d calls, want 6: %s", len(calls), b)
			}
			if calls[3].Path != dingtalk.PathAsyncSendV2 || calls[3].App != appCorp.CorpID || !strings.Contains(string(calls[3].Body), "token *** secret ***") {
				t.Errorf("call 3 = %+v, want the send with token and secret redacted", calls[3])
			}
			if calls[5].ErrCode != 404 || calls[5].App != "" {
				t.Errorf("call 5 = %+v, want the 404", calls[5])
			}
		}},
		{name: "sent", path: fake.PathAdminSent, check: func(t *testing.T, b []byte) {
			var sent []fake.Sent
			if err := json.Unmarshal(b, &sent); err != nil {
				t.Fatal(err)
			}
			if len(sent) != 2 || sent[0].TaskID != fake.FirstTaskID || sent[1].App != appCorp.CorpID {
				t.Fatalf("sent = %+v, want two sends", sent)
			}
			if got := sent[1].Request.Msg.Text.Content; got != "token *** secret ***" {
				t.Errorf("sent[1] content = %q, want the token and secret redacted", got)
			}
		}},
		{name: "stats", path: fake.PathAdminStats, check: func(t *testing.T, b []byte) {
			var st fake.Stats
			if err := json.Unmarshal(b, &st); err != nil {
				t.Fatal(err)
			}
			want := map[string]int{appA.Key: 1, appCorp.CorpID: 1, appB.Key: 1}
			if st.Calls != 6 || st.Sent != 2 || fmt.Sprint(st.TokenFetches) != fmt.Sprint(want) {
				t.Errorf("stats = %s, want 6 calls, 2 sent, token fetches %v", b, want)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, get(t, tt.path)) })
	}

	// The Go API keeps what DingTalk received.
	if got := e.fake.Sent()[1].Request.Msg.Text.Content; !strings.Contains(got, tokCorp) {
		t.Errorf("Sent() content = %q, want it exact", got)
	}

	t.Run("reset", func(t *testing.T) {
		if status, _, text := e.raw(t, http.MethodGet, fake.PathAdminReset, ""); status != http.StatusMethodNotAllowed {
			t.Logf("%s", text)
			t.Errorf("GET %s: HTTP %d, want 405", fake.PathAdminReset, status)
		}
		if len(e.fake.Calls()) != 6 {
			t.Fatalf("GET reset reset the fake or was recorded")
		}
		status, a, text := e.raw(t, http.MethodPost, fake.PathAdminReset, "")
		if status != http.StatusOK || a.code() != 0 {
			t.Fatalf("POST %s: HTTP %d %s", fake.PathAdminReset, status, text)
		}
		if n, m, f := len(e.fake.Calls()), len(e.fake.Sent()), e.fake.TokenFetches(appA.Key); n+m+f != 0 {
			t.Errorf("after reset: %d calls, %d sent, %d fetches; want none", n, m, f)
		}
		_, err := e.client.SendWorkNotification(ctx, tokA, textRequest(appA.AgentID, "after reset"))
		if dingtalk.Classify(err) != dingtalk.ClassTokenInvalid {
			t.Errorf("send with a token from before the reset: %v, want token invalid", err)
		}
		res, err := e.client.SendWorkNotification(ctx, e.token(t, credA), textRequest(appA.AgentID, "new token"))
		if err != nil || res.TaskID != fake.FirstTaskID {
			t.Errorf("send after reset: %+v, %v; want task_id %d", res, err, fake.FirstTaskID)
		}
	})
}

func TestAddApp(t *testing.T) {
	e := setup(t, nil)
	late := dingtalk.Credentials{AppKey: "latekey", AppSecret: "late-secret"}
	if _, err := e.client.GetToken(context.Background(), late); asError(t, err).Code != 40096 {
		t.Fatalf("unknown app: %v, want 40096", err)
	}
	e.fake.AddApp(fake.App{Key: late.AppKey, Secret: late.AppSecret})
	tok := e.token(t, late)
	// Replacing the app (new secret) keeps its token.
	e.fake.AddApp(fake.App{Key: late.AppKey, Secret: "rotated"})
	if _, err := e.client.GetToken(context.Background(), late); asError(t, err).Code != 40096 {
		t.Fatalf("old secret after rotation: %v, want 40096", err)
	}
	if _, err := e.client.SendWorkNotification(context.Background(), tok, textRequest(5, "hi")); err != nil {
		t.Fatalf("send with the token issued before rotation: %v", err)
	}
	if got := e.fake.TokenFetches(late.AppKey); got != 3 {
		t.Errorf("TokenFetches = %d, want 3", got)
	}
}

func TestConcurrentSends(t *testing.T) {
	const n = 50
	e := setup(t, nil)
	ctx := context.Background()
	ids := make(chan int64, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			tok, err := e.client.GetToken(ctx, credA)
			if err != nil {
				errs <- err
				return
			}
			res, err := e.client.SendWorkNotification(ctx, tok.AccessToken, textRequest(appA.AgentID, fmt.Sprint("message ", i)))
			if err != nil {
				errs <- err
				return
			}
			ids <- res.TaskID
			_ = e.fake.Calls()
			_ = e.fake.Sent()
		})
	}
	wg.Wait()
	close(ids)
	close(errs)
	for err := range errs {
		t.Errorf("goroutine: %v", err)
	}
	seen := map[int64]bool{}
	for id := range ids {
		if seen[id] || id < fake.FirstTaskID || id >= fake.FirstTaskID+n {
			t.Errorf("task_id %d repeated or out of range", id)
		}
		seen[id] = true
	}
	sent := e.fake.Sent()
	if len(seen) != n || len(sent) != n {
		t.Fatalf("%d distinct task ids, %d sends recorded; want %d", len(seen), len(sent), n)
	}
	for _, s := range sent {
		if s.Token != sent[0].Token || s.App != appA.Key {
			t.Errorf("send %d used app %q and another token; want one token of %q", s.TaskID, s.App, appA.Key)
		}
	}
	if got := e.fake.TokenFetches(appA.Key); got != n {
		t.Errorf("TokenFetches = %d, want %d", got, n)
	}
}

func TestAddAppWithoutID(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Errorf("AddApp(App{}) did not panic")
		}
	}()
	fake.New(nil, nil).AddApp(fake.App{Secret: "s"})
}

func ExampleNew() {
	f := fake.New([]fake.App{{Key: "dingkey", Secret: "dingsecret", AgentID: 42}}, nil)
	srv := httptest.NewServer(f)
	defer srv.Close()

	client, _ := dingtalk.NewClient(dingtalk.WithBaseURL(srv.URL))
	ctx := context.Background()
	tok, _ := client.GetToken(ctx, dingtalk.Credentials{AppKey: "dingkey", AppSecret: "dingsecret"})
	res, _ := client.SendWorkNotification(ctx, tok.AccessToken, &dingtalk.SendRequest{
		AgentID: 42, UserIDs: []string{"manager4220"}, Msg: dingtalk.TextMessage("hello"),
	})
	fmt.Println(res.TaskID)
	fmt.Println(string(f.Sent()[0].Body))

	_, err := client.SendWorkNotification(ctx, "expired-or-wrong", &dingtalk.SendRequest{
		AgentID: 42, UserIDs: []string{"manager4220"}, Msg: dingtalk.TextMessage("hello"),
	})
	fmt.Println(dingtalk.Classify(err))
	// Output:
	// 256271667526
	// {"agent_id":42,"userid_list":"manager4220","msg":{"msgtype":"text","text":{"content":"hello"}}}
	// token_invalid
}
