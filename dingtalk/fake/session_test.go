package fake_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/dingtalk/fake"
)

// sessionAnswer is any session endpoint's answer.
type sessionAnswer struct {
	ErrCode   int    `json:"errcode"`
	ErrMsg    string `json:"errmsg"`
	RequestID string `json:"request_id"`
	Result    struct {
		Session   string `json:"session"`
		SessionID string `json:"session_id"`
		Success   bool   `json:"success"`
	} `json:"result"`
}

func sessionBody(r dingtalk.SessionRequest) string {
	b, _ := json.Marshal(r)
	return string(b)
}

func (e *env) session(t *testing.T, path, tok, body string) sessionAnswer {
	t.Helper()
	var a sessionAnswer
	e.topapi(t, path, tok, body, &a)
	return a
}

func TestSessions(t *testing.T) {
	e := setup(t, nil)
	tok := e.token(t, credA)
	req := dingtalk.SessionRequest{SessionID: "s-1", AppKey: appA.Key, ChatID: "chat1", UserID: "u1"}

	a := e.session(t, dingtalk.DefaultPathCreateSession, tok, sessionBody(req))
	if a.ErrCode != 0 || a.Result.SessionID != "s-1" || a.RequestID == "" {
		t.Fatalf("create: %+v, want session_id s-1 and a request_id", a)
	}
	if a := e.session(t, dingtalk.DefaultPathCreateSession, tok, sessionBody(req)); a.ErrCode != 400002 || a.ErrMsg != "会话已存在" {
		t.Errorf("create twice: %+v, want 400002 会话已存在", a)
	}
	// Another app has its own sessions.
	tokB := e.token(t, dingtalk.Credentials{AppKey: appB.Key, AppSecret: appB.Secret})
	if a := e.session(t, dingtalk.DefaultPathCreateSession, tokB, sessionBody(req)); a.ErrCode != 0 {
		t.Errorf("create the same id for another app: %+v, want ok", a)
	}

	a = e.session(t, dingtalk.DefaultPathGetSession, tok, `{"userid":"u1"}`)
	if a.ErrCode != 0 || a.Result.Session != fake.SessionOf("u1") || a.Result.Session == "" {
		t.Errorf("getsession: %+v, want %q", a, fake.SessionOf("u1"))
	}
	if fake.SessionOf("u1") == fake.SessionOf("u2") {
		t.Errorf("two users get the same session")
	}
	if st := e.fake.Stats(); st.SessionsOpen != 2 {
		t.Errorf("stats sessions_open %d, want 2", st.SessionsOpen)
	}

	if a := e.session(t, dingtalk.DefaultPathCloseSession, tok, sessionBody(req)); a.ErrCode != 0 || !a.Result.Success {
		t.Fatalf("close: %+v, want result.success true", a)
	}
	if a := e.session(t, dingtalk.DefaultPathCloseSession, tok, sessionBody(req)); a.ErrCode != 400002 || a.ErrMsg != "会话不存在或已关闭" {
		t.Errorf("close again: %+v, want 400002 会话不存在或已关闭", a)
	}
	unknown := req
	unknown.SessionID = "nosuch"
	if a := e.session(t, dingtalk.DefaultPathCloseSession, tok, sessionBody(unknown)); a.ErrCode != 400002 || a.ErrMsg != "会话不存在或已关闭" {
		t.Errorf("close an unknown session: %+v, want 400002", a)
	}
	// A closed session's id may be opened again.
	if a := e.session(t, dingtalk.DefaultPathCreateSession, tok, sessionBody(req)); a.ErrCode != 0 || a.Result.SessionID != "s-1" {
		t.Errorf("create after close: %+v, want ok", a)
	}
	// No session_id: a new one, each time.
	noID := req
	noID.SessionID = ""
	one := e.session(t, dingtalk.DefaultPathCreateSession, tok, sessionBody(noID))
	two := e.session(t, dingtalk.DefaultPathCreateSession, tok, sessionBody(noID))
	if one.ErrCode != 0 || two.ErrCode != 0 || one.Result.SessionID == "" || one.Result.SessionID == two.Result.SessionID {
		t.Errorf("create without session_id: %+v, %+v; want two new ids", one, two)
	}
	e.fake.Reset()
	if st := e.fake.Stats(); st.SessionsOpen != 0 {
		t.Errorf("after Reset: %d sessions open, want 0", st.SessionsOpen)
	}
}

func TestSessionErrors(t *testing.T) {
	// Every user is unknown with Invalid 1.
	e := setup(t, &fake.Options{Results: &fake.Results{Invalid: 1}})
	tok := e.token(t, credA)
	req := sessionBody(dingtalk.SessionRequest{SessionID: "s", UserID: "u1"})
	tests := []struct {
		name     string
		path     string
		tok      string
		body     string
		wantCode int
		wantMsg  string
	}{
		{name: "getsession unknown user", path: dingtalk.DefaultPathGetSession, tok: tok, body: `{"userid":"u1"}`, wantCode: 60121, wantMsg: "找不到该用户"},
		{name: "create unknown user", path: dingtalk.DefaultPathCreateSession, tok: tok, body: req, wantCode: 60121, wantMsg: "找不到该用户"},
		{name: "getsession without userid", path: dingtalk.DefaultPathGetSession, tok: tok, body: `{}`, wantCode: 40035, wantMsg: "userid"},
		{name: "create without user_id", path: dingtalk.DefaultPathCreateSession, tok: tok, body: `{"session_id":"s"}`, wantCode: 40035, wantMsg: "user_id"},
		{name: "close without session_id", path: dingtalk.DefaultPathCloseSession, tok: tok, body: `{"user_id":"u1"}`, wantCode: 40035, wantMsg: "session_id"},
		{name: "not JSON", path: dingtalk.DefaultPathCreateSession, tok: tok, body: `{`, wantCode: 400002},
		{name: "no token", path: dingtalk.DefaultPathGetSession, body: `{"userid":"u1"}`, wantCode: 88},
		{name: "bad token", path: dingtalk.DefaultPathCloseSession, tok: "nope", body: req, wantCode: 88},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, text := e.topapi(t, tt.path, tt.tok, tt.body, nil)
			if a.code() != tt.wantCode || !strings.Contains(a.ErrMsg, tt.wantMsg) {
				t.Errorf("got %s, want errcode %d with %q", text, tt.wantCode, tt.wantMsg)
			}
		})
	}

	// A user whose fate is not invalid is known.
	e2 := setup(t, &fake.Options{Results: &fake.Results{Invalid: 0.5}})
	tok2 := e2.token(t, credA)
	var known, unknown string
	for i := 0; known == "" || unknown == ""; i++ {
		u := "user" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		if (fake.Results{Invalid: 0.5}).Fate(u) == fake.FateInvalid {
			unknown = u
		} else {
			known = u
		}
	}
	if a := e2.session(t, dingtalk.DefaultPathGetSession, tok2, `{"userid":"`+known+`"}`); a.ErrCode != 0 {
		t.Errorf("getsession %s (fate not invalid): %+v, want ok", known, a)
	}
	if a := e2.session(t, dingtalk.DefaultPathGetSession, tok2, `{"userid":"`+unknown+`"}`); a.ErrCode != 60121 {
		t.Errorf("getsession %s (fate invalid): %+v, want 60121", unknown, a)
	}
}

func TestSessionPaths(t *testing.T) {
	paths := fake.SessionPaths{Get: "/topapi/custom/getsession", Create: "/custom/create_session"}
	e := setup(t, &fake.Options{SessionPaths: paths})
	tok := e.token(t, credA)
	req := sessionBody(dingtalk.SessionRequest{SessionID: "s", UserID: "u1"})
	if a := e.session(t, paths.Get, tok, `{"userid":"u1"}`); a.ErrCode != 0 || a.Result.Session != fake.SessionOf("u1") {
		t.Errorf("getsession at %s: %+v", paths.Get, a)
	}
	if a := e.session(t, paths.Create, tok, req); a.ErrCode != 0 || a.Result.SessionID != "s" {
		t.Errorf("create at %s: %+v", paths.Create, a)
	}
	// Close keeps its default; the moved ones are gone from theirs.
	if a := e.session(t, dingtalk.DefaultPathCloseSession, tok, req); a.ErrCode != 0 {
		t.Errorf("close at the default path: %+v", a)
	}
	if a, text := e.topapi(t, dingtalk.DefaultPathGetSession, tok, `{"userid":"u1"}`, nil); a.code() != 22 {
		t.Errorf("getsession at its default path once moved: %s, want 22", text)
	}

	for _, bad := range []fake.SessionPaths{
		{Get: "topapi/x"},
		{Create: "/_fake/create"},
		{Close: dingtalk.PathAsyncSendV2},
		{Get: "/same", Create: "/same"},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New with SessionPaths %+v did not panic", bad)
				}
			}()
			fake.New(nil, &fake.Options{SessionPaths: bad})
		}()
	}
}
