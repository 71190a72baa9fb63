package fake_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/dingtalk/fake"
)

// addFault adds f to e's fake, failing the test if it is refused.
func (e *env) addFault(t *testing.T, f fake.Fault) {
	t.Helper()
	if err := e.fake.AddFault(f); err != nil {
		t.Fatalf("AddFault(%+v): %v", f, err)
	}
}

// lastCall returns the fake's last recorded call.
func (e *env) lastCall(t *testing.T) fake.Call {
	t.Helper()
	calls := e.fake.Calls()
	if len(calls) == 0 {
		t.Fatal("no call recorded")
	}
	return calls[len(calls)-1]
}

// waitCalls polls until the fake has recorded n calls, or fails the test.
func (e *env) waitCalls(t *testing.T, n int) []fake.Call {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		calls := e.fake.Calls()
		if len(calls) >= n {
			return calls
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls recorded after 5s, want %d", len(calls), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func tokenPath(cred dingtalk.Credentials) string {
	return dingtalk.PathGetToken + "?appkey=" + cred.AppKey + "&appsecret=" + cred.AppSecret
}

func TestFaultCode(t *testing.T) {
	tests := []struct {
		name        string
		fault       fake.Fault
		wantMsg     string
		wantSub     string
		wantSubMsg  string
		wantClass   dingtalk.Class
		wantRetry   time.Duration // 0: RetryAfter says no
		wantInvalid bool          // TokenInvalid
		wantFault   string
	}{
		{name: "system busy", fault: fake.Fault{Code: -1},
			wantMsg: "系统繁忙", wantClass: dingtalk.ClassTransient, wantFault: "code -1"},
		{name: "per-app rate limit", fault: fake.Fault{Code: 90018},
			wantMsg: "接口调用超过限流，请降低调用频率", wantClass: dingtalk.ClassThrottled, wantRetry: time.Second, wantFault: "code 90018"},
		{name: "global rate limit", fault: fake.Fault{Code: 90002},
			wantMsg: "您的服务器调用钉钉开放平台当前接口的所有请求都被暂时禁用了", wantClass: dingtalk.ClassThrottled, wantRetry: time.Second, wantFault: "code 90002"},
		{name: "monthly quota", fault: fake.Fault{Code: 90020},
			wantMsg: "接口调用次数超过企业每月限额", wantClass: dingtalk.ClassPermanent, wantFault: "code 90020"},
		{name: "bad userid", fault: fake.Fault{Code: 33012},
			wantMsg: "无效的userid", wantClass: dingtalk.ClassPermanent, wantFault: "code 33012"},
		{name: "bad userid with a sub_code and message", fault: fake.Fault{Code: 33012, SubCode: "20001", Msg: "无效的userid: u2"},
			wantMsg: "无效的userid: u2", wantSub: "20001", wantSubMsg: "无效的userid: u2", wantClass: dingtalk.ClassPermanent,
			wantFault: "code 33012 sub_code 20001"},
		{name: "no permission", fault: fake.Fault{Code: 88, SubCode: "60011"},
			wantMsg: "ding talk error[subcode=60011,submsg=没有调用该接口的权限]", wantSub: "60011", wantSubMsg: "没有调用该接口的权限",
			wantClass: dingtalk.ClassPermanent, wantFault: "code 88 sub_code 60011"},
		{name: "token refused", fault: fake.Fault{Code: 88, SubCode: "40014"},
			wantMsg: "ding talk error[subcode=40014,submsg=不合法的access_token]", wantSub: "40014", wantSubMsg: "不合法的access_token",
			wantClass: dingtalk.ClassTokenInvalid, wantInvalid: true, wantFault: "code 88 sub_code 40014"},
		{name: "unknown code", fault: fake.Fault{Code: 123456},
			wantMsg: "fault injected", wantClass: dingtalk.ClassTransient, wantFault: "code 123456"},
		{name: "own message", fault: fake.Fault{Code: 90018, Msg: "slow down"},
			wantMsg: "slow down", wantClass: dingtalk.ClassThrottled, wantRetry: time.Second, wantFault: "code 90018"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, nil)
			tok := e.token(t, credA)
			tt.fault.Path = dingtalk.PathAsyncSendV2
			e.addFault(t, tt.fault)

			_, err := e.client.SendWorkNotification(context.Background(), tok, textRequest(appA.AgentID, "hi"))
			de := asError(t, err)
			if de.HTTPStatus != 200 || de.Code != tt.fault.Code || de.Message != tt.wantMsg || de.SubCode != tt.wantSub ||
				de.SubMessage != tt.wantSubMsg || de.RequestID == "" {
				t.Errorf("got %v (HTTP %d), want HTTP 200 errcode %d %q sub_code %q %q with request_id",
					err, de.HTTPStatus, tt.fault.Code, tt.wantMsg, tt.wantSub, tt.wantSubMsg)
			}
			if got := dingtalk.Classify(err); got != tt.wantClass {
				t.Errorf("Classify = %s, want %s", got, tt.wantClass)
			}
			if got, ok := dingtalk.RetryAfter(err); got != tt.wantRetry || ok != (tt.wantRetry > 0) {
				t.Errorf("RetryAfter = %s, %t; want %s", got, ok, tt.wantRetry)
			}
			if de.TokenInvalid() != tt.wantInvalid {
				t.Errorf("TokenInvalid = %t, want %t", de.TokenInvalid(), tt.wantInvalid)
			}
			if n := len(e.fake.Sent()); n != 0 {
				t.Errorf("%d sends recorded, want 0", n)
			}
			c := e.lastCall(t)
			if c.Path != dingtalk.PathAsyncSendV2 || c.App != appA.Key || c.ErrCode != tt.fault.Code || c.Status != 0 ||
				c.Fault != tt.wantFault || !strings.Contains(string(c.Body), `"userid_list":"u1,u2"`) {
				t.Errorf("call = %+v, want the send of %q with errcode %d, fault %q", c, appA.Key, tt.fault.Code, tt.wantFault)
			}
			if st := e.fake.Stats(); st.Faulted != 1 || st.Calls != 2 {
				t.Errorf("stats = %+v, want 1 faulted of 2 calls", st)
			}
		})
	}
}

func TestFaultCodeOnGetToken(t *testing.T) {
	e := setup(t, nil)
	e.addFault(t, fake.Fault{Path: dingtalk.PathGetToken, Code: -1})
	status, a, text := e.raw(t, http.MethodGet, tokenPath(credA), "")
	if want := `{"errcode":-1,"errmsg":"系统繁忙"}`; status != 200 || text != want {
		t.Errorf("got HTTP %d %s, want 200 %s (no request_id off topapi)", status, text, want)
	}
	if a.AccessToken != "" || e.fake.Revoke(appA.Key) {
		t.Errorf("a faulted gettoken issued a token")
	}
	if got := e.fake.TokenFetches(appA.Key); got != 1 {
		t.Errorf("TokenFetches = %d, want 1: the client did call gettoken", got)
	}
	if c := e.lastCall(t); c.App != appA.Key || c.ErrCode != -1 || c.Fault != "code -1" {
		t.Errorf("call = %+v, want app %q errcode -1 fault \"code -1\"", c, appA.Key)
	}
	_, err := e.client.GetToken(context.Background(), credA)
	if de := asError(t, err); de.Code != -1 || dingtalk.Classify(err) != dingtalk.ClassTransient {
		t.Errorf("client: %v (class %s), want errcode -1, transient", err, dingtalk.Classify(err))
	}
}

func TestFaultStatus(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		wantClass dingtalk.Class
	}{
		{name: "500", status: 500, wantClass: dingtalk.ClassTransient},
		{name: "502", status: 502, wantClass: dingtalk.ClassTransient},
		{name: "503", status: 503, wantClass: dingtalk.ClassTransient},
		{name: "429", status: 429, wantClass: dingtalk.ClassThrottled},
		{name: "403", status: 403, wantClass: dingtalk.ClassPermanent},
		{name: "599 without a status text", status: 599, wantClass: dingtalk.ClassTransient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, nil)
			tok := e.token(t, credA)
			e.addFault(t, fake.Fault{Path: dingtalk.PathAsyncSendV2, Status: tt.status})

			_, err := e.client.SendWorkNotification(context.Background(), tok, textRequest(appA.AgentID, "hi"))
			de := asError(t, err)
			if de.HTTPStatus != tt.status || de.Code != 0 || de.IPBanned {
				t.Errorf("got %v, want HTTP %d without errcode", err, tt.status)
			}
			if got := dingtalk.Classify(err); got != tt.wantClass {
				t.Errorf("Classify = %s, want %s", got, tt.wantClass)
			}

			resp, err := http.Post(e.url+sendPath(tok), "application/json", strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || len(body) == 0 || json.Valid(body) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
				t.Errorf("raw answer HTTP %d %s %q, want %d and a text body", resp.StatusCode, resp.Header.Get("Content-Type"), body, tt.status)
			}

			if n := len(e.fake.Sent()); n != 0 {
				t.Errorf("%d sends recorded, want 0", n)
			}
			want := "status " + strconv.Itoa(tt.status)
			if c := e.lastCall(t); c.Status != tt.status || c.ErrCode != 0 || c.Fault != want || c.App != appA.Key {
				t.Errorf("call = %+v, want status %d errcode 0 fault %q app %q", c, tt.status, want, appA.Key)
			}
		})
	}
}

func TestFaultIPBan(t *testing.T) {
	for _, path := range []string{dingtalk.PathGetToken, dingtalk.PathAsyncSendV2} {
		t.Run(path, func(t *testing.T) {
			e := setup(t, nil)
			tok := e.token(t, credA)
			e.addFault(t, fake.Fault{Path: path, IPBan: true})

			var err error
			if path == dingtalk.PathGetToken {
				_, err = e.client.GetToken(context.Background(), credA)
			} else {
				_, err = e.client.SendWorkNotification(context.Background(), tok, textRequest(appA.AgentID, "hi"))
			}
			if de := asError(t, err); !de.IPBanned || de.Wait != 5*time.Minute || de.HTTPStatus != 200 {
				t.Errorf("got %v (IPBanned %t, wait %s), want an IP ban of 5m at HTTP 200", err, de.IPBanned, de.Wait)
			}
			if got := dingtalk.Classify(err); got != dingtalk.ClassThrottled {
				t.Errorf("Classify = %s, want throttled", got)
			}
			if got, ok := dingtalk.RetryAfter(err); got != 5*time.Minute || !ok {
				t.Errorf("RetryAfter = %s, %t; want 5m0s", got, ok)
			}

			status, a, text := e.raw(t, http.MethodGet, tokenPath(credA), "")
			if want := `{"status":1111,"wait":5,"punish":"deny"}`; path == dingtalk.PathGetToken && (status != 200 || text != want || a.ErrCode != nil) {
				t.Errorf("raw answer HTTP %d %s, want 200 %s", status, text, want)
			}
			if c := e.fake.Calls()[1]; c.Path != path || c.ErrCode != 0 || c.Status != 0 || c.Fault != "ip_ban" || c.App != appA.Key {
				t.Errorf("call = %+v, want %s errcode 0 fault ip_ban app %q", c, path, appA.Key)
			}
			if n := len(e.fake.Sent()); n != 0 {
				t.Errorf("%d sends recorded, want 0", n)
			}
		})
	}
}

func TestFaultHang(t *testing.T) {
	tests := []struct {
		name string
		path string
	}{
		{name: "send", path: dingtalk.PathAsyncSendV2},
		{name: "gettoken", path: dingtalk.PathGetToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, nil)
			tok := e.token(t, credA)
			e.fake.Revoke(appA.Key) // so a hung gettoken could not reuse the token
			e.addFault(t, fake.Fault{Path: tt.path, Hang: true})
			c, err := dingtalk.NewClient(dingtalk.WithBaseURL(e.url), dingtalk.WithTimeout(150*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}

			start := time.Now()
			if tt.path == dingtalk.PathGetToken {
				_, err = c.GetToken(context.Background(), credA)
			} else {
				_, err = c.SendWorkNotification(context.Background(), tok, textRequest(appA.AgentID, "hi"))
			}
			var te *dingtalk.TransportError
			var ne net.Error
			if !errors.As(err, &te) || !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("got %v (%T), want a *dingtalk.TransportError that timed out", err, err)
			}
			if d := time.Since(start); d < 150*time.Millisecond {
				t.Errorf("the call gave up after %s, before its timeout", d)
			}
			if got := dingtalk.Classify(err); got != dingtalk.ClassTransient {
				t.Errorf("Classify = %s, want transient", got)
			}
			if n := len(e.fake.Sent()); n != 0 {
				t.Errorf("%d sends recorded, want 0", n)
			}
			if e.fake.Revoke(appA.Key) {
				t.Errorf("the hung call issued a token")
			}
			if c := e.waitCalls(t, 2)[1]; c.Path != tt.path || c.ErrCode != 0 || c.Fault != "hang" || c.App != appA.Key {
				t.Errorf("call = %+v, want %s fault hang app %q", c, tt.path, appA.Key)
			}
			if got, want := e.fake.TokenFetches(appA.Key), map[bool]int{true: 2, false: 1}[tt.path == dingtalk.PathGetToken]; got != want {
				t.Errorf("TokenFetches = %d, want %d", got, want)
			}
		})
	}
}

// TestFaultBody: a fault's own body comes back as it is, with its status,
// and the client sorts it: malformed JSON and a gateway's HTML error page
// are transient, HTML at HTTP 200 is DingTalk's per-IP ban.
func TestFaultBody(t *testing.T) {
	const page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
	tests := []struct {
		name      string
		fault     fake.Fault
		wantType  string // Content-Type prefix
		wantClass dingtalk.Class
		wantBan   bool
		wantFault string
	}{
		{name: "malformed JSON", fault: fake.Fault{Body: `{"errcode":0,"task_id":`},
			wantType: "application/json", wantClass: dingtalk.ClassTransient, wantFault: "body (HTTP 200, 23 bytes)"},
		{name: "HTML error page", fault: fake.Fault{Body: page, Status: 502},
			wantType: "text/html", wantClass: dingtalk.ClassTransient, wantFault: "body (HTTP 502, 74 bytes)"},
		{name: "HTML at 200", fault: fake.Fault{Body: page},
			wantType: "text/html", wantClass: dingtalk.ClassThrottled, wantBan: true, wantFault: "body (HTTP 200, 74 bytes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, nil)
			tok := e.token(t, credA)
			tt.fault.Path = dingtalk.PathAsyncSendV2
			tt.fault.Times = 2
			e.addFault(t, tt.fault)

			_, err := e.client.SendWorkNotification(context.Background(), tok, textRequest(appA.AgentID, "hi"))
			if got := dingtalk.Classify(err); got != tt.wantClass {
				t.Errorf("Classify(%v) = %s, want %s", err, got, tt.wantClass)
			}
			var de *dingtalk.Error
			if banned := errors.As(err, &de) && de.IPBanned; banned != tt.wantBan {
				t.Errorf("IP ban: got %t, want %t (%v)", banned, tt.wantBan, err)
			}

			resp, err := http.Post(e.url+sendPath(tok), "application/json", strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := cmp.Or(tt.fault.Status, 200); resp.StatusCode != want || string(body) != tt.fault.Body ||
				!strings.HasPrefix(resp.Header.Get("Content-Type"), tt.wantType) {
				t.Errorf("raw answer HTTP %d %s %q, want %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), body,
					want, tt.wantType, tt.fault.Body)
			}
			if n := len(e.fake.Sent()); n != 0 {
				t.Errorf("%d sends recorded, want 0", n)
			}
			if c := e.lastCall(t); c.Fault != tt.wantFault || c.ErrCode != 0 || c.App != appA.Key {
				t.Errorf("call = %+v, want fault %q errcode 0 app %q", c, tt.wantFault, appA.Key)
			}
			// Times ran out: the next call is answered.
			if _, err := e.client.SendWorkNotification(context.Background(), tok, textRequest(appA.AgentID, "hi")); err != nil {
				t.Errorf("after the fault: %v", err)
			}
		})
	}
}

// TestFaultClose: the connection is closed without an answer; the client
// gets a transient transport error at once, nothing is sent, and the
// server holds no connection afterwards.
func TestFaultClose(t *testing.T) {
	f := fake.New([]fake.App{appA}, nil)
	var open atomic.Int64
	srv := httptest.NewUnstartedServer(f)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := dingtalk.NewClient(dingtalk.WithBaseURL(srv.URL), dingtalk.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.GetToken(context.Background(), credA)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.AddFault(fake.Fault{Path: dingtalk.PathAsyncSendV2, Close: true, Times: 1}); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	_, err = c.SendWorkNotification(context.Background(), tok.AccessToken, textRequest(appA.AgentID, "hi"))
	var te *dingtalk.TransportError
	if !errors.As(err, &te) || !errors.Is(err, io.EOF) {
		t.Fatalf("got %v (%T), want a *dingtalk.TransportError with EOF", err, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the client learnt of the closed connection after %s", d)
	}
	if got := dingtalk.Classify(err); got != dingtalk.ClassTransient {
		t.Errorf("Classify = %s, want transient", got)
	}
	if n := len(f.Sent()); n != 0 {
		t.Errorf("%d sends recorded, want 0", n)
	}
	calls := f.Calls()
	if last := calls[len(calls)-1]; last.Path != dingtalk.PathAsyncSendV2 || last.Fault != "close" || last.ErrCode != 0 || last.Status != 0 {
		t.Errorf("call = %+v, want the send with fault close", last)
	}
	// The next call goes through, on a new connection.
	if _, err := c.SendWorkNotification(context.Background(), tok.AccessToken, textRequest(appA.AgentID, "hi")); err != nil {
		t.Errorf("after the fault: %v", err)
	}
	if n := len(f.Sent()); n != 1 {
		t.Errorf("%d sends recorded, want 1", n)
	}
	srv.CloseClientConnections()
	for deadline := time.Now().Add(5 * time.Second); open.Load() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open", open.Load())
		}
	}
}

func TestFaultLatency(t *testing.T) {
	const latency = 150 * time.Millisecond
	tests := []struct {
		name      string
		fault     fake.Fault
		wantCode  int
		wantSent  int
		wantFault string
	}{
		{name: "latency alone delays the real answer", fault: fake.Fault{Latency: fake.Duration(latency)},
			wantSent: 1, wantFault: "latency 150ms"},
		{name: "latency then a code", fault: fake.Fault{Code: -1, Latency: fake.Duration(latency)},
			wantCode: -1, wantFault: "code -1, latency 150ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, nil)
			tok := e.token(t, credA)
			tt.fault.Path = dingtalk.PathAsyncSendV2
			e.addFault(t, tt.fault)

			start := time.Now()
			_, err := e.client.SendWorkNotification(context.Background(), tok, textRequest(appA.AgentID, "hi"))
			if d := time.Since(start); d < latency {
				t.Errorf("answered after %s, want at least %s", d, latency)
			}
			if tt.wantCode == 0 && err != nil {
				t.Fatalf("send: %v", err)
			}
			if tt.wantCode != 0 && asError(t, err).Code != tt.wantCode {
				t.Errorf("send: %v, want errcode %d", err, tt.wantCode)
			}
			if n := len(e.fake.Sent()); n != tt.wantSent {
				t.Errorf("%d sends recorded, want %d", n, tt.wantSent)
			}
			if c := e.lastCall(t); c.ErrCode != tt.wantCode || c.Fault != tt.wantFault {
				t.Errorf("call = %+v, want errcode %d fault %q", c, tt.wantCode, tt.wantFault)
			}
			if got := e.fake.Stats().Faulted; got != 1 {
				t.Errorf("Stats().Faulted = %d, want 1", got)
			}
		})
	}
}

func TestFaultLatencyClientGivesUp(t *testing.T) {
	e := setup(t, nil)
	tok := e.token(t, credA)
	e.addFault(t, fake.Fault{Path: dingtalk.PathAsyncSendV2, Latency: fake.Duration(time.Minute)})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := e.client.SendWorkNotification(ctx, tok, textRequest(appA.AgentID, "hi"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("send: %v, want the context's deadline", err)
	}
	if c := e.waitCalls(t, 2)[1]; c.Fault != "latency 1m0s (client gave up)" || c.ErrCode != 0 {
		t.Errorf("call = %+v, want fault \"latency 1m0s (client gave up)\"", c)
	}
	if n := len(e.fake.Sent()); n != 0 {
		t.Errorf("%d sends recorded, want 0: the client gave up", n)
	}
}

func TestFaultLatencyDoesNotBlockOtherCalls(t *testing.T) {
	e := setup(t, nil)
	tok := e.token(t, credA)
	e.addFault(t, fake.Fault{Path: dingtalk.PathAsyncSendV2, Latency: fake.Duration(time.Second)})
	done := make(chan error, 1)
	go func() {
		_, err := e.client.SendWorkNotification(context.Background(), tok, textRequest(appA.AgentID, "slow"))
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for e.fake.Stats().Faulted == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the slow send never reached the fake")
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	e.token(t, credA)
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("gettoken took %s while a send waited out its latency, want it at once", d)
	}
	if err := <-done; err != nil {
		t.Errorf("slow send: %v", err)
	}
}

func TestFaultTimes(t *testing.T) {
	e := setup(t, nil)
	tok := e.token(t, credA)
	e.addFault(t, fake.Fault{Path: dingtalk.PathAsyncSendV2, Code: 90018, Times: 2})
	wants := []struct {
		code      int
		remaining []int // Times of the faults left after the call
	}{
		{code: 90018, remaining: []int{1}},
		{code: 90018, remaining: nil},
		{code: 0},
		{code: 0},
	}
	for i, w := range wants {
		_, err := e.client.SendWorkNotification(context.Background(), tok, textRequest(appA.AgentID, "hi"))
		var code int
		if err != nil {
			code = asError(t, err).Code
		}
		if code != w.code {
			t.Errorf("send %d: %v, want errcode %d", i, err, w.code)
		}
		var left []int
		for _, f := range e.fake.Faults() {
			left = append(left, f.Times)
		}
		if len(left) != len(w.remaining) || (len(left) > 0 && left[0] != w.remaining[0]) {
			t.Errorf("after send %d: faults with times %v left, want %v", i, left, w.remaining)
		}
	}
	if st := e.fake.Stats(); st.Faulted != 2 || st.Sent != 2 {
		t.Errorf("stats = %+v, want 2 faulted and 2 sent", st)
	}
}

func TestFaultFraction(t *testing.T) {
	const n = 2000
	f := fake.New([]fake.App{appA}, nil)
	if err := f.AddFault(fake.Fault{Path: dingtalk.PathGetToken, Code: -1, Fraction: 0.3}); err != nil {
		t.Fatal(err)
	}
	faulted := 0
	for range n {
		rec := httptest.NewRecorder()
		f.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tokenPath(credA), nil))
		if strings.HasPrefix(rec.Body.String(), `{"errcode":-1,`) {
			faulted++
		}
	}
	if got := float64(faulted) / n; got < 0.2 || got > 0.4 {
		t.Errorf("%d of %d calls faulted (%.3f), want about 0.3", faulted, n, got)
	}
	if st := f.Stats(); st.Faulted != faulted || st.TokenFetches[appA.Key] != n {
		t.Errorf("stats = %+v, want %d faulted and %d fetches", st, faulted, n)
	}
	if fs := f.Faults(); len(fs) != 1 || fs[0].Fraction != 0.3 {
		t.Errorf("Faults = %+v, want the fault still there", fs)
	}
}

func TestFaultOrder(t *testing.T) {
	e := setup(t, nil)
	tok := e.token(t, credA)
	// Never drawn, so the calls go on to the next fault.
	e.addFault(t, fake.Fault{Path: dingtalk.PathAsyncSendV2, Code: 40056, Fraction: 1e-300})
	e.addFault(t, fake.Fault{Path: dingtalk.PathAsyncSendV2, Code: 90018, Times: 1})
	e.addFault(t, fake.Fault{Code: -1})
	for i, want := range []int{90018, -1, -1} {
		_, err := e.client.SendWorkNotification(context.Background(), tok, textRequest(appA.AgentID, "hi"))
		if got := asError(t, err).Code; got != want {
			t.Errorf("send %d: errcode %d, want %d", i, got, want)
		}
	}
}

func TestFaultPath(t *testing.T) {
	tests := []struct {
		name        string
		faultPath   string
		method      string
		pathQuery   string
		wantFaulted bool
	}{
		{name: "gettoken fault, gettoken", faultPath: dingtalk.PathGetToken, method: http.MethodGet, pathQuery: tokenPath(credA), wantFaulted: true},
		{name: "gettoken fault, send", faultPath: dingtalk.PathGetToken, method: http.MethodPost, pathQuery: sendPath("t"), wantFaulted: false},
		{name: "send fault, send", faultPath: dingtalk.PathAsyncSendV2, method: http.MethodPost, pathQuery: sendPath("t"), wantFaulted: true},
		{name: "send fault, gettoken", faultPath: dingtalk.PathAsyncSendV2, method: http.MethodGet, pathQuery: tokenPath(credA), wantFaulted: false},
		{name: "any path, gettoken", faultPath: "", method: http.MethodGet, pathQuery: tokenPath(credA), wantFaulted: true},
		{name: "any path, send", faultPath: "", method: http.MethodPost, pathQuery: sendPath("t"), wantFaulted: true},
		{name: "any path, unknown path", faultPath: "", method: http.MethodGet, pathQuery: "/nosuch", wantFaulted: true},
		{name: "any path, admin", faultPath: "", method: http.MethodGet, pathQuery: fake.PathAdminStats, wantFaulted: false},
		{name: "any path, admin faults", faultPath: "", method: http.MethodGet, pathQuery: fake.PathAdminFaults, wantFaulted: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, nil)
			e.addFault(t, fake.Fault{Path: tt.faultPath, Status: http.StatusBadGateway})
			status, _, text := e.raw(t, tt.method, tt.pathQuery, "")
			if got := status == http.StatusBadGateway; got != tt.wantFaulted {
				t.Errorf("got HTTP %d %s, want faulted %t", status, text, tt.wantFaulted)
			}
			if got := e.fake.Stats().Faulted; got != map[bool]int{true: 1}[tt.wantFaulted] {
				t.Errorf("Stats().Faulted = %d, want faulted %t", got, tt.wantFaulted)
			}
		})
	}
}

func TestAddFaultValidation(t *testing.T) {
	tests := []struct {
		name  string
		fault fake.Fault
		want  string // the error; "" for none
	}{
		{name: "code", fault: fake.Fault{Code: 90018}},
		{name: "system busy", fault: fake.Fault{Code: -1}},
		{name: "latency alone", fault: fake.Fault{Latency: fake.Duration(time.Millisecond)}},
		{name: "hang with latency", fault: fake.Fault{Hang: true, Latency: fake.Duration(time.Millisecond)}},
		{name: "every field", fault: fake.Fault{Path: dingtalk.PathAsyncSendV2, Code: 88, SubCode: "60011", Msg: "m",
			Latency: fake.Duration(time.Millisecond), Times: 3, Fraction: 1}},
		{name: "status bounds", fault: fake.Fault{Status: 100}},
		{name: "nothing", fault: fake.Fault{},
			want: "fault: set one of code, status, body, ip_ban, hang, close or latency"},
		{name: "only times", fault: fake.Fault{Times: 2},
			want: "fault: set one of code, status, body, ip_ban, hang, close or latency"},
		{name: "code and status", fault: fake.Fault{Code: -1, Status: 500},
			want: "fault: set at most one of code, status (or body, with or without a status), ip_ban, hang and close, got code and status"},
		{name: "ip_ban and hang", fault: fake.Fault{IPBan: true, Hang: true},
			want: "fault: set at most one of code, status (or body, with or without a status), ip_ban, hang and close, got ip_ban and hang"},
		{name: "body and status", fault: fake.Fault{Body: "<html></html>", Status: 502}},
		{name: "body alone", fault: fake.Fault{Body: `{"errcode":0,`}},
		{name: "close with latency", fault: fake.Fault{Close: true, Latency: fake.Duration(time.Millisecond)}},
		{name: "body and code", fault: fake.Fault{Body: "x", Code: -1},
			want: "fault: set at most one of code, status (or body, with or without a status), ip_ban, hang and close, got code and body"},
		{name: "hang and close", fault: fake.Fault{Hang: true, Close: true},
			want: "fault: set at most one of code, status (or body, with or without a status), ip_ban, hang and close, got hang and close"},
		{name: "body with a bad status", fault: fake.Fault{Body: "x", Status: 600},
			want: "fault: status must be in 100..599, got 600"},
		{name: "sub_code without code", fault: fake.Fault{Status: 500, SubCode: "40014"},
			want: "fault: sub_code needs a code"},
		{name: "msg without code", fault: fake.Fault{Hang: true, Msg: "x"},
			want: "fault: msg needs a code"},
		{name: "status too low", fault: fake.Fault{Status: 99},
			want: "fault: status must be in 100..599, got 99"},
		{name: "status too high", fault: fake.Fault{Status: 600},
			want: "fault: status must be in 100..599, got 600"},
		{name: "negative status", fault: fake.Fault{Status: -500},
			want: "fault: status must be in 100..599, got -500"},
		{name: "negative latency", fault: fake.Fault{Code: -1, Latency: fake.Duration(-time.Second)},
			want: "fault: latency must be >= 0, got -1s"},
		{name: "negative times", fault: fake.Fault{Code: -1, Times: -1},
			want: "fault: times must be >= 0, got -1"},
		{name: "fraction over 1", fault: fake.Fault{Code: -1, Fraction: 1.5},
			want: "fault: fraction must be in [0, 1], got 1.5"},
		{name: "negative fraction", fault: fake.Fault{Code: -1, Fraction: -0.1},
			want: "fault: fraction must be in [0, 1], got -0.1"},
		{name: "unknown path", fault: fake.Fault{Code: -1, Path: "/gettokn"},
			want: `fault: path "/gettokn" is not an endpoint of the fake (want one of /call_back/delete_call_back, /call_back/get_call_back, /call_back/get_call_back_failed_result, /call_back/register_call_back, /call_back/update_call_back, /gettoken, /robot/send, /topapi/message/corpconversation/asyncsend_v2, /topapi/message/corpconversation/getsendprogress, /topapi/message/corpconversation/getsendresult, /topapi/message/corpconversation/recall, /topapi/v2/im/close_session, /topapi/v2/im/create_session, /topapi/v2/user/getsession, /v1.0/oauth2/accessToken, /v1.0/robot/oToMessages/batchSend, or empty for all)`},
		{name: "admin path", fault: fake.Fault{Code: -1, Path: fake.PathAdminStats},
			want: `fault: path "/_fake/stats" is not an endpoint of the fake`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fake.New(nil, nil)
			err := f.AddFault(tt.fault)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("AddFault: %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)):
				t.Fatalf("AddFault: %v, want %q", err, tt.want)
			}
			wantN := map[bool]int{true: 1}[tt.want == ""]
			if n := len(f.Faults()); n != wantN {
				t.Errorf("%d faults active, want %d", n, wantN)
			}
		})
	}
}

func TestFaultJSON(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    fake.Fault
		wantErr string
	}{
		{name: "duration string", in: `{"path":"/gettoken","code":90018,"sub_code":"x","msg":"m","latency":"250ms","times":2,"fraction":0.5}`,
			want: fake.Fault{Path: "/gettoken", Code: 90018, SubCode: "x", Msg: "m", Latency: fake.Duration(250 * time.Millisecond), Times: 2, Fraction: 0.5}},
		{name: "nanoseconds", in: `{"hang":true,"latency":1500000000}`, want: fake.Fault{Hang: true, Latency: fake.Duration(1500 * time.Millisecond)}},
		{name: "null latency", in: `{"ip_ban":true,"status":0,"latency":null}`, want: fake.Fault{IPBan: true}},
		{name: "body and close", in: `{"body":"<html>","status":502,"close":true}`, want: fake.Fault{Body: "<html>", Status: 502, Close: true}},
		{name: "bad duration", in: `{"latency":"soon"}`, wantErr: `duration "soon"`},
		{name: "fractional nanoseconds", in: `{"latency":1.5}`, wantErr: "whole nanoseconds"},
		{name: "latency as bool", in: `{"latency":true}`, wantErr: "whole nanoseconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f fake.Fault
			err := json.Unmarshal([]byte(tt.in), &f)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Unmarshal: %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || f != tt.want {
				t.Fatalf("Unmarshal: %+v, %v; want %+v", f, err, tt.want)
			}
		})
	}

	b, err := json.Marshal(fake.Fault{Path: "/gettoken", Status: 502, Latency: fake.Duration(250 * time.Millisecond)})
	if want := `{"path":"/gettoken","status":502,"latency":"250ms"}`; err != nil || string(b) != want {
		t.Errorf("Marshal = %s, %v; want %s", b, err, want)
	}
}

func TestAdminFaults(t *testing.T) {
	e := setup(t, nil)
	tests := []struct {
		name       string
		method     string
		body       string
		wantStatus int
		wantText   string // in the answer
		wantFaults string // GET /_fake/faults afterwards
	}{
		{name: "empty at first", method: http.MethodGet, wantStatus: 200, wantText: "[]", wantFaults: `[]`},
		{name: "add", method: http.MethodPost, body: `{"path":"/topapi/message/corpconversation/asyncsend_v2","status":500,"fraction":0.3}`,
			wantStatus: 200, wantText: `{"errcode":0,"errmsg":"ok"}`,
			wantFaults: `[{"path":"/topapi/message/corpconversation/asyncsend_v2","status":500,"fraction":0.3}]`},
		{name: "add another", method: http.MethodPost, body: `{"code":-1,"latency":"250ms","times":2}`,
			wantStatus: 200, wantText: `{"errcode":0,"errmsg":"ok"}`,
			wantFaults: `[{"path":"/topapi/message/corpconversation/asyncsend_v2","status":500,"fraction":0.3},{"code":-1,"latency":"250ms","times":2}]`},
		{name: "invalid fault", method: http.MethodPost, body: `{"code":-1,"fraction":1.5}`,
			wantStatus: 400, wantText: "fault: fraction must be in [0, 1], got 1.5"},
		{name: "malformed JSON", method: http.MethodPost, body: `{"code":`,
			wantStatus: 400, wantText: "fault: decoding JSON: "},
		{name: "unknown field", method: http.MethodPost, body: `{"code":-1,"errcode":5}`,
			wantStatus: 400, wantText: `unknown field "errcode"`},
		{name: "wrong type", method: http.MethodPost, body: `{"code":"-1"}`,
			wantStatus: 400, wantText: "fault: decoding JSON: "},
		{name: "two objects", method: http.MethodPost, body: `{"code":-1}{"code":-1}`,
			wantStatus: 400, wantText: "fault: decoding JSON: data after the object"},
		{name: "empty body", method: http.MethodPost, body: "",
			wantStatus: 400, wantText: "fault: empty body"},
		{name: "PUT", method: http.MethodPut, body: `{"code":-1}`,
			wantStatus: 405, wantText: "method not allowed"},
		{name: "unchanged by refusals", method: http.MethodGet, wantStatus: 200,
			wantFaults: `[{"path":"/topapi/message/corpconversation/asyncsend_v2","status":500,"fraction":0.3},{"code":-1,"latency":"250ms","times":2}]`},
		{name: "clear", method: http.MethodDelete, wantStatus: 200, wantText: `{"errcode":0,"errmsg":"ok"}`, wantFaults: `[]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, text := e.raw(t, tt.method, fake.PathAdminFaults, tt.body)
			if status != tt.wantStatus || !strings.Contains(text, tt.wantText) {
				t.Errorf("%s: got HTTP %d %s, want %d with %q", tt.method, status, text, tt.wantStatus, tt.wantText)
			}
			if tt.wantFaults != "" {
				_, _, got := e.raw(t, http.MethodGet, fake.PathAdminFaults, "")
				if strings.TrimSpace(got) != tt.wantFaults {
					t.Errorf("faults\n got %s\nwant %s", got, tt.wantFaults)
				}
			}
		})
	}

	t.Run("405 names the methods", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPatch, e.url+fake.PathAdminFaults, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Allow"); resp.StatusCode != 405 || got != "GET, POST, DELETE" {
			t.Errorf("got HTTP %d Allow %q, want 405 Allow \"GET, POST, DELETE\"", resp.StatusCode, got)
		}
	})
	if n := len(e.fake.Calls()); n != 0 {
		t.Errorf("%d calls recorded, want 0: admin calls are not recorded", n)
	}
}

func TestAdminFaultFires(t *testing.T) {
	e := setup(t, nil)
	status, _, text := e.raw(t, http.MethodPost, fake.PathAdminFaults, `{"path":"/gettoken","code":90018,"times":1}`)
	if status != 200 {
		t.Fatalf("POST %s: HTTP %d %s", fake.PathAdminFaults, status, text)
	}
	_, err := e.client.GetToken(context.Background(), credA)
	if dingtalk.Classify(err) != dingtalk.ClassThrottled {
		t.Errorf("gettoken: %v, want throttled", err)
	}
	e.token(t, credA)
	var st fake.Stats
	_, _, text = e.raw(t, http.MethodGet, fake.PathAdminStats, "")
	if err := json.Unmarshal([]byte(text), &st); err != nil || st.Faulted != 1 || st.Calls != 2 {
		t.Errorf("stats %s, want 2 calls, 1 faulted", text)
	}
	if !strings.Contains(text, `"faulted":1`) {
		t.Errorf("stats %s: want \"faulted\":1", text)
	}
}

func TestResetClearsFaults(t *testing.T) {
	tests := []struct {
		name  string
		reset func(t *testing.T, e *env)
	}{
		{name: "Reset", reset: func(_ *testing.T, e *env) { e.fake.Reset() }},
		{name: "POST /_fake/reset", reset: func(t *testing.T, e *env) {
			if status, _, text := e.raw(t, http.MethodPost, fake.PathAdminReset, ""); status != 200 {
				t.Fatalf("reset: HTTP %d %s", status, text)
			}
		}},
		{name: "ClearFaults", reset: func(_ *testing.T, e *env) { e.fake.ClearFaults() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, nil)
			e.addFault(t, fake.Fault{Path: dingtalk.PathGetToken, Code: -1})
			e.addFault(t, fake.Fault{Status: 503, Times: 5})
			if _, err := e.client.GetToken(context.Background(), credA); err == nil {
				t.Fatal("gettoken with faults: no error")
			}
			tt.reset(t, e)
			if fs := e.fake.Faults(); len(fs) != 0 {
				t.Errorf("faults after reset: %+v, want none", fs)
			}
			e.token(t, credA)
			if got := e.fake.Stats().Faulted; tt.name != "ClearFaults" && got != 0 {
				t.Errorf("Stats().Faulted = %d after reset, want 0", got)
			}
		})
	}
}
