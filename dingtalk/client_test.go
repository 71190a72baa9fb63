package dingtalk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testToken  = "SECRET-TOKEN-abc"
	testSecret = "SECRET-app-secret-xyz"
)

// setupServer returns a client pointed at a test server, the server's mux
// for the test's handlers, and the server itself. The server is closed when
// the test ends.
func setupServer(t *testing.T, opts ...Option) (*Client, *http.ServeMux, *httptest.Server) {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	client, err := NewClient(append([]Option{WithBaseURL(srv.URL)}, opts...)...)
	if err != nil {
		t.Fatalf("NewClient: got %v, want nil", err)
	}
	return client, mux, srv
}

// setup returns a client pointed at a test server and the server's mux.
func setup(t *testing.T, opts ...Option) (*Client, *http.ServeMux) {
	t.Helper()
	client, mux, _ := setupServer(t, opts...)
	return client, mux
}

func testMethod(t *testing.T, r *http.Request, want string) {
	t.Helper()
	if got := r.Method; got != want {
		t.Errorf("request method: got %v, want %v", got, want)
	}
}

// testQuery checks that the request's query is exactly want.
func testQuery(t *testing.T, r *http.Request, want map[string]string) {
	t.Helper()
	q := r.URL.Query()
	if got, want := len(q), len(want); got != want {
		t.Errorf("query %q: got %d parameters, want %d", r.URL.RawQuery, got, want)
	}
	for k, v := range want {
		if got := q.Get(k); got != v {
			t.Errorf("query %s: got %q, want %q", k, got, v)
		}
	}
}

func testBody(t *testing.T, r *http.Request, want string) {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Errorf("reading request body: got %v, want nil", err)
	}
	if got := string(b); got != want {
		t.Errorf("request body:\n got %s\nwant %s", got, want)
	}
}

func testHeader(t *testing.T, r *http.Request, key, want string) {
	t.Helper()
	if got := r.Header.Get(key); got != want {
		t.Errorf("header %s: got %q, want %q", key, got, want)
	}
}

// counted returns a handler that counts its calls into n and answers body.
func counted(n *atomic.Int32, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		fmt.Fprint(w, body)
	}
}

// --- NewClient ---------------------------------------------------------

func TestNewClient_defaults(t *testing.T) {
	c, err := NewClient()
	if err != nil {
		t.Fatalf("NewClient: got %v, want nil", err)
	}
	if got, want := c.BaseURL(), DefaultBaseURL; got != want {
		t.Errorf("BaseURL: got %q, want %q", got, want)
	}
	if got, want := c.httpClient.Timeout, DefaultTimeout; got != want {
		t.Errorf("timeout: got %v, want %v", got, want)
	}
}

func TestNewClient_options(t *testing.T) {
	tests := []struct {
		name        string
		opts        []Option
		wantErr     bool
		wantBaseURL string
	}{
		{name: "ftp base URL", opts: []Option{WithBaseURL("ftp://x")}, wantErr: true},
		{name: "not a url", opts: []Option{WithBaseURL("not a url")}, wantErr: true},
		{name: "empty base URL", opts: []Option{WithBaseURL("")}, wantErr: true},
		{name: "no host", opts: []Option{WithBaseURL("http://")}, wantErr: true},
		{name: "relative", opts: []Option{WithBaseURL("/gettoken")}, wantErr: true},
		{name: "bad escape", opts: []Option{WithBaseURL("http://h/%zz")}, wantErr: true},
		{name: "https", opts: []Option{WithBaseURL("https://oapi.example.com")}, wantBaseURL: "https://oapi.example.com"},
		{name: "trailing slash", opts: []Option{WithBaseURL("http://127.0.0.1:8080/")}, wantBaseURL: "http://127.0.0.1:8080"},
		{name: "prefix with trailing slash", opts: []Option{WithBaseURL("http://h/dingtalk/")}, wantBaseURL: "http://h/dingtalk"},
		{name: "timeout 0", opts: []Option{WithTimeout(0)}, wantErr: true},
		{name: "timeout negative", opts: []Option{WithTimeout(-time.Second)}, wantErr: true},
		{name: "timeout ok", opts: []Option{WithTimeout(time.Second)}, wantBaseURL: DefaultBaseURL},
		{name: "nil http client", opts: []Option{WithHTTPClient(nil)}, wantErr: true},
		{name: "http client ok", opts: []Option{WithHTTPClient(&http.Client{})}, wantBaseURL: DefaultBaseURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(tt.opts...)
			if got := err != nil; got != tt.wantErr {
				t.Fatalf("NewClient error: got %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				if c != nil {
					t.Errorf("client on error: got %v, want nil", c)
				}
				return
			}
			if got := c.BaseURL(); got != tt.wantBaseURL {
				t.Errorf("BaseURL: got %q, want %q", got, tt.wantBaseURL)
			}
		})
	}
}

func TestNewClient_timeoutDoesNotChangeCallersHTTPClient(t *testing.T) {
	hc := &http.Client{}
	c, err := NewClient(WithHTTPClient(hc), WithTimeout(3*time.Second))
	if err != nil {
		t.Fatalf("NewClient: got %v, want nil", err)
	}
	if got, want := hc.Timeout, time.Duration(0); got != want {
		t.Errorf("caller's http.Client timeout: got %v, want %v", got, want)
	}
	if got, want := c.httpClient.Timeout, 3*time.Second; got != want {
		t.Errorf("client timeout: got %v, want %v", got, want)
	}
}

func TestWithBaseURL_trailingSlashAndPrefix(t *testing.T) {
	tests := []struct {
		name   string
		suffix string
		route  string
	}{
		{name: "trailing slash", suffix: "/", route: "/gettoken"},
		{name: "prefix", suffix: "/dingtalk", route: "/dingtalk/gettoken"},
		{name: "prefix with trailing slash", suffix: "/dingtalk/", route: "/dingtalk/gettoken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			srv := httptest.NewServer(mux)
			t.Cleanup(srv.Close)
			mux.HandleFunc(tt.route, func(w http.ResponseWriter, r *http.Request) {
				if got, want := r.URL.Path, tt.route; got != want {
					t.Errorf("path: got %q, want %q", got, want)
				}
				fmt.Fprint(w, `{"errcode":0,"errmsg":"ok","access_token":"t","expires_in":7200}`)
			})
			c, err := NewClient(WithBaseURL(srv.URL + tt.suffix))
			if err != nil {
				t.Fatalf("NewClient: got %v, want nil", err)
			}
			tok, err := c.GetToken(context.Background(), Credentials{AppKey: "k", AppSecret: "s"})
			if err != nil {
				t.Fatalf("GetToken: got %v, want nil", err)
			}
			if got, want := tok.AccessToken, "t"; got != want {
				t.Errorf("AccessToken: got %q, want %q", got, want)
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestWithHTTPClient_used(t *testing.T) {
	var calls atomic.Int32
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		calls.Add(1)
		if got, want := r.URL.String(), "https://oapi.example.com/gettoken?appkey=k&appsecret=s"; got != want {
			t.Errorf("URL: got %q, want %q", got, want)
		}
		return &http.Response{
			StatusCode: http.StatusOK,
			Header:     http.Header{"Content-Type": {"application/json"}},
			Body:       io.NopCloser(strings.NewReader(`{"errcode":0,"access_token":"t","expires_in":7200}`)),
			Request:    r,
		}, nil
	})}
	c, err := NewClient(WithBaseURL("https://oapi.example.com"), WithHTTPClient(hc))
	if err != nil {
		t.Fatalf("NewClient: got %v, want nil", err)
	}
	if _, err := c.GetToken(context.Background(), Credentials{AppKey: "k", AppSecret: "s"}); err != nil {
		t.Fatalf("GetToken: got %v, want nil", err)
	}
	if got, want := calls.Load(), int32(1); got != want {
		t.Errorf("calls through the given http.Client: got %d, want %d", got, want)
	}
}

func TestWithUserAgent(t *testing.T) {
	client, mux := setup(t, WithUserAgent("dingq-test/1.0"))
	mux.HandleFunc(PathGetToken, func(w http.ResponseWriter, r *http.Request) {
		testHeader(t, r, "User-Agent", "dingq-test/1.0")
		testHeader(t, r, "Accept", "application/json")
		fmt.Fprint(w, `{"errcode":0,"access_token":"t","expires_in":7200}`)
	})
	if _, err := client.GetToken(context.Background(), Credentials{AppKey: "k", AppSecret: "s"}); err != nil {
		t.Fatalf("GetToken: got %v, want nil", err)
	}
}

// --- GetToken ----------------------------------------------------------

func TestGetToken(t *testing.T) {
	tests := []struct {
		name      string
		cred      Credentials
		wantQuery map[string]string
	}{
		{name: "appkey", cred: Credentials{AppKey: "key1", AppSecret: testSecret},
			wantQuery: map[string]string{"appkey": "key1", "appsecret": testSecret}},
		{name: "corpid", cred: Credentials{CorpID: "ding123", CorpSecret: testSecret},
			wantQuery: map[string]string{"corpid": "ding123", "corpsecret": testSecret}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, mux := setup(t)
			mux.HandleFunc(PathGetToken, func(w http.ResponseWriter, r *http.Request) {
				testMethod(t, r, http.MethodGet)
				testQuery(t, r, tt.wantQuery)
				if r.ContentLength > 0 {
					t.Errorf("request body length: got %d, want 0", r.ContentLength)
				}
				fmt.Fprint(w, `{"errcode":0,"errmsg":"ok","access_token":"tok-1","expires_in":7200}`)
			})
			before := time.Now()
			tok, err := client.GetToken(context.Background(), tt.cred)
			after := time.Now()
			if err != nil {
				t.Fatalf("GetToken: got %v, want nil", err)
			}
			if got, want := tok.AccessToken, "tok-1"; got != want {
				t.Errorf("AccessToken: got %q, want %q", got, want)
			}
			if got, want := tok.ExpiresIn, 7200*time.Second; got != want {
				t.Errorf("ExpiresIn: got %v, want %v", got, want)
			}
			if tok.ExpiresAt.Before(before.Add(7200*time.Second)) || tok.ExpiresAt.After(after.Add(7200*time.Second)) {
				t.Errorf("ExpiresAt: got %v, want between %v and %v", tok.ExpiresAt,
					before.Add(7200*time.Second), after.Add(7200*time.Second))
			}
		})
	}
}

func TestGetToken_lifetime(t *testing.T) {
	tests := []struct {
		name      string
		expiresIn string
		want      time.Duration
	}{
		{name: "7200", expiresIn: "7200", want: 7200 * time.Second},
		{name: "3600", expiresIn: "3600", want: time.Hour},
		{name: "24h is taken", expiresIn: "86400", want: MaxTokenLifetime},
		{name: "zero", expiresIn: "0", want: DefaultTokenLifetime},
		{name: "negative", expiresIn: "-5", want: DefaultTokenLifetime},
		{name: "absurd 10 days", expiresIn: "864000", want: DefaultTokenLifetime},
		{name: "overflowing", expiresIn: "9223372036854775807", want: DefaultTokenLifetime},
		// 18446744074 s * 1e9 wraps int64 nanoseconds round to 0.29 s.
		{name: "overflowing into range", expiresIn: "18446744074", want: DefaultTokenLifetime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, mux := setup(t)
			mux.HandleFunc(PathGetToken, func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, `{"errcode":0,"errmsg":"ok","access_token":"t","expires_in":%s}`, tt.expiresIn)
			})
			before := time.Now()
			tok, err := client.GetToken(context.Background(), Credentials{AppKey: "k", AppSecret: "s"})
			if err != nil {
				t.Fatalf("GetToken: got %v, want nil", err)
			}
			if got := tok.ExpiresIn; got != tt.want {
				t.Errorf("ExpiresIn: got %v, want %v", got, tt.want)
			}
			if got := tok.ExpiresAt; got.Before(before.Add(tt.want)) || got.After(time.Now().Add(tt.want)) {
				t.Errorf("ExpiresAt: got %v, want about %v", got, before.Add(tt.want))
			}
		})
	}
}

func TestGetToken_noAccessToken(t *testing.T) {
	client, mux := setup(t)
	mux.HandleFunc(PathGetToken, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"errcode":0,"errmsg":"ok","expires_in":7200}`)
	})
	tok, err := client.GetToken(context.Background(), Credentials{AppKey: "k", AppSecret: "s"})
	if tok != nil {
		t.Errorf("token: got %v, want nil", tok)
	}
	var te *TransportError
	if !errors.As(err, &te) {
		t.Fatalf("error: got %v (%T), want *TransportError", err, err)
	}
	if got, want := Classify(err), ClassTransient; got != want {
		t.Errorf("Classify: got %v, want %v", got, want)
	}
}

func TestGetToken_errors(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantCode int
	}{
		{name: "40096 bad appkey", body: `{"errcode":40096,"errmsg":"不合法的appKey或appSecret"}`, wantCode: 40096},
		{name: "40089 bad corpid", body: `{"errcode":40089,"errmsg":"不合法的corpid或corpsecret"}`, wantCode: 40089},
		{name: "40001 from gettoken", body: `{"errcode":40001,"errmsg":"获取access_token时Secret错误"}`, wantCode: 40001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, mux := setup(t)
			mux.HandleFunc(PathGetToken, func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, tt.body)
			})
			_, err := client.GetToken(context.Background(), Credentials{AppKey: "k", AppSecret: testSecret})
			var de *Error
			if !errors.As(err, &de) {
				t.Fatalf("error: got %v (%T), want *Error", err, err)
			}
			if got := de.Code; got != tt.wantCode {
				t.Errorf("Code: got %d, want %d", got, tt.wantCode)
			}
			if got, want := de.BadCredentials(), true; got != want {
				t.Errorf("BadCredentials: got %v, want %v", got, want)
			}
			if got, want := de.TokenInvalid(), false; got != want {
				t.Errorf("TokenInvalid: got %v, want %v", got, want)
			}
			if got, want := de.Class(), ClassPermanent; got != want {
				t.Errorf("Class: got %v, want %v", got, want)
			}
			if got, want := Classify(err), ClassPermanent; got != want {
				t.Errorf("Classify: got %v, want %v", got, want)
			}
			if got := err.Error(); strings.Contains(got, testSecret) {
				t.Errorf("Error(): got %q, want no secret", got)
			}
		})
	}
}

func TestGetToken_invalidCredentials(t *testing.T) {
	tests := []struct {
		name      string
		cred      Credentials
		wantField string
	}{
		{name: "none", cred: Credentials{}, wantField: "app_key"},
		{name: "app_key only", cred: Credentials{AppKey: "k"}, wantField: "app_secret"},
		{name: "app_secret only", cred: Credentials{AppSecret: "s"}, wantField: "app_key"},
		{name: "blank app_secret", cred: Credentials{AppKey: "k", AppSecret: "  "}, wantField: "app_secret"},
		{name: "corp_id only", cred: Credentials{CorpID: "c"}, wantField: "corp_secret"},
		{name: "corp_secret only", cred: Credentials{CorpSecret: "s"}, wantField: "corp_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, mux := setup(t)
			var hits atomic.Int32
			mux.HandleFunc("/", counted(&hits, `{"errcode":0,"access_token":"t","expires_in":7200}`))
			tok, err := client.GetToken(context.Background(), tt.cred)
			if tok != nil {
				t.Errorf("token: got %v, want nil", tok)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error: got %v (%T), want *ValidationError", err, err)
			}
			if got := ve.Field; got != tt.wantField {
				t.Errorf("Field: got %q, want %q", got, tt.wantField)
			}
			if got, want := hits.Load(), int32(0); got != want {
				t.Errorf("calls reaching the server: got %d, want %d", got, want)
			}
		})
	}
}

func TestGetToken_transportFailure(t *testing.T) {
	client, _, srv := setupServer(t)
	srv.Close()
	_, err := client.GetToken(context.Background(), Credentials{AppKey: "k", AppSecret: testSecret})
	var te *TransportError
	if !errors.As(err, &te) {
		t.Fatalf("error: got %v (%T), want *TransportError", err, err)
	}
	if got, want := te.Path, PathGetToken; got != want {
		t.Errorf("Path: got %q, want %q", got, want)
	}
	for _, secret := range []string{testSecret, "appsecret="} {
		if got := err.Error(); strings.Contains(got, secret) {
			t.Errorf("Error(): got %q, want no %q", got, secret)
		}
	}
	if got, want := Classify(err), ClassTransient; got != want {
		t.Errorf("Classify: got %v, want %v", got, want)
	}
}

func TestCredentialsAndToken_neverPrintSecrets(t *testing.T) {
	cred := Credentials{AppKey: "key1", AppSecret: testSecret, CorpID: "corp1", CorpSecret: testSecret + "-corp"}
	tok := Token{AccessToken: testToken, ExpiresIn: time.Hour, ExpiresAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	tests := []struct {
		name string
		v    any
	}{
		{name: "credentials", v: cred},
		{name: "*credentials", v: &cred},
		{name: "credentials in a struct", v: struct{ Cred Credentials }{cred}},
		{name: "token", v: tok},
		{name: "*token", v: &tok},
		{name: "token in a struct", v: struct{ Tok Token }{tok}},
	}
	for _, tt := range tests {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
			t.Run(tt.name+" "+verb, func(t *testing.T) {
				got := fmt.Sprintf(verb, tt.v)
				for _, secret := range []string{testSecret, testToken} {
					if strings.Contains(got, secret) {
						t.Errorf("%s: got %q, want no %q", verb, got, secret)
					}
				}
			})
		}
	}
	if got, want := cred.String(), "Credentials{key1, secret redacted}"; got != want {
		t.Errorf("Credentials.String: got %q, want %q", got, want)
	}
	if got, want := cred.GoString(), cred.String(); got != want {
		t.Errorf("Credentials.GoString: got %q, want %q", got, want)
	}
	if got, want := (Credentials{CorpID: "corp1", CorpSecret: "x"}).ID(), "corp1"; got != want {
		t.Errorf("Credentials.ID: got %q, want %q", got, want)
	}
	if got, want := tok.String(), "Token{redacted, expires 2030-01-02T03:04:05Z}"; got != want {
		t.Errorf("Token.String: got %q, want %q", got, want)
	}
	if got, want := tok.GoString(), tok.String(); got != want {
		t.Errorf("Token.GoString: got %q, want %q", got, want)
	}
}

// --- SendWorkNotification ------------------------------------------------

func testSendRequest() *SendRequest {
	return &SendRequest{AgentID: 123, UserIDs: []string{"u1", "u2"}, Msg: TextMessage("hi <b> & you")}
}

const testSendBody = `{"agent_id":123,"userid_list":"u1,u2","msg":{"msgtype":"text","text":{"content":"hi <b> & you"}}}`

func TestSendWorkNotification(t *testing.T) {
	client, mux := setup(t)
	var hits atomic.Int32
	mux.HandleFunc(PathAsyncSendV2, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		testMethod(t, r, http.MethodPost)
		testQuery(t, r, map[string]string{"access_token": testToken})
		testHeader(t, r, "Content-Type", "application/json; charset=utf-8")
		testBody(t, r, testSendBody)
		fmt.Fprint(w, `{"errcode":0,"errmsg":"ok","task_id":256271667526,"request_id":"4jzllmte0wau"}`)
	})
	res, err := client.SendWorkNotification(context.Background(), testToken, testSendRequest())
	if err != nil {
		t.Fatalf("SendWorkNotification: got %v, want nil", err)
	}
	if got, want := res.TaskID, int64(256271667526); got != want {
		t.Errorf("TaskID: got %d, want %d", got, want)
	}
	if got, want := res.RequestID, "4jzllmte0wau"; got != want {
		t.Errorf("RequestID: got %q, want %q", got, want)
	}
	if got, want := hits.Load(), int32(1); got != want {
		t.Errorf("calls: got %d, want %d", got, want)
	}
}

func TestSendWorkNotification_invalidRequest(t *testing.T) {
	tests := []struct {
		name      string
		req       *SendRequest
		wantField string
	}{
		{name: "agent_id 0", req: &SendRequest{UserIDs: []string{"u1"}, Msg: TextMessage("hi")}, wantField: "agent_id"},
		{name: "no recipients", req: &SendRequest{AgentID: 1, Msg: TextMessage("hi")}, wantField: "userid_list"},
		{name: "empty text", req: &SendRequest{AgentID: 1, UserIDs: []string{"u1"}, Msg: TextMessage("")}, wantField: "msg.text.content"},
		{name: "no msgtype", req: &SendRequest{AgentID: 1, UserIDs: []string{"u1"}}, wantField: "msg.msgtype"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, mux := setup(t)
			var hits atomic.Int32
			mux.HandleFunc("/", counted(&hits, `{"errcode":0,"task_id":1}`))
			res, err := client.SendWorkNotification(context.Background(), testToken, tt.req)
			if res != nil {
				t.Errorf("result: got %v, want nil", res)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error: got %v (%T), want *ValidationError", err, err)
			}
			if got := ve.Field; got != tt.wantField {
				t.Errorf("Field: got %q, want %q", got, tt.wantField)
			}
			if got, want := Classify(err), ClassPermanent; got != want {
				t.Errorf("Classify: got %v, want %v", got, want)
			}
			if got, want := hits.Load(), int32(0); got != want {
				t.Errorf("calls reaching the server: got %d, want %d", got, want)
			}
		})
	}
}

func TestSendWorkNotification_answers(t *testing.T) {
	tests := []struct {
		name         string
		status       int
		contentType  string
		body         string
		wantErrType  string // "Error" or "TransportError"
		wantClass    Class
		wantCode     int
		wantSubCode  string
		wantErrCode  string
		wantReqID    string
		tokenInvalid bool
		ipBanned     bool
		throttle     time.Duration
	}{
		{name: "88 sub_code 40014", body: `{"errcode":88,"sub_code":"40014","sub_msg":"不合法的access_token","errmsg":"ilegal request","request_id":"req88"}`,
			wantErrType: "Error", wantClass: ClassTokenInvalid, wantCode: 88, wantSubCode: "40014", wantReqID: "req88", tokenInvalid: true},
		{name: "88 sub_code 40000", body: `{"errcode":88,"sub_code":"40000","sub_msg":"缺少参数 access_token","errmsg":"ilegal request"}`,
			wantErrType: "Error", wantClass: ClassTokenInvalid, wantCode: 88, wantSubCode: "40000", tokenInvalid: true},
		{name: "40014 directly", body: `{"errcode":40014,"errmsg":"不合法的access_token"}`,
			wantErrType: "Error", wantClass: ClassTokenInvalid, wantCode: 40014, tokenInvalid: true},
		{name: "88 sub_code 60011 no permission", body: `{"errcode":88,"sub_code":"60011","sub_msg":"no permission","errmsg":"ilegal request"}`,
			wantErrType: "Error", wantClass: ClassPermanent, wantCode: 88, wantSubCode: "60011"},
		{name: "90018 per-app throttle", body: `{"errcode":90018,"errmsg":"您的服务器调用钉钉开放平台当前接口的所有请求都被暂时禁用了"}`,
			wantErrType: "Error", wantClass: ClassThrottled, wantCode: 90018, throttle: time.Second},
		{name: "90002 global throttle", body: `{"errcode":90002,"errmsg":"服务器调用该接口的请求次数过多"}`,
			wantErrType: "Error", wantClass: ClassThrottled, wantCode: 90002, throttle: time.Second},
		{name: "33012 bad userid", body: `{"errcode":33012,"errmsg":"无效的USERID"}`,
			wantErrType: "Error", wantClass: ClassPermanent, wantCode: 33012},
		{name: "-1 system busy", body: `{"errcode":-1,"errmsg":"系统繁忙"}`,
			wantErrType: "Error", wantClass: ClassTransient, wantCode: -1},
		{name: "unknown errcode", body: `{"errcode":123456,"errmsg":"?"}`,
			wantErrType: "Error", wantClass: ClassTransient, wantCode: 123456},
		{name: "22 invalid method", body: `{"errcode":22,"errmsg":"Invalid method"}`,
			wantErrType: "Error", wantClass: ClassPermanent, wantCode: 22},
		{name: "502 HTML", status: 502, contentType: "text/html", body: "<html><body><h1>502 Bad Gateway</h1></body></html>",
			wantErrType: "Error", wantClass: ClassTransient},
		{name: "500 empty", status: 500, body: "",
			wantErrType: "Error", wantClass: ClassTransient},
		{name: "503 plain text", status: 503, contentType: "text/plain", body: "service unavailable",
			wantErrType: "Error", wantClass: ClassTransient},
		{name: "404 plain text", status: 404, contentType: "text/plain", body: "404 page not found",
			wantErrType: "Error", wantClass: ClassPermanent},
		{name: "200 HTML is an IP ban", contentType: "text/html", body: "\n  <!DOCTYPE html><html><body>访问被拒绝</body></html>",
			wantErrType: "Error", wantClass: ClassThrottled, ipBanned: true, throttle: 5 * time.Minute},
		{name: "status 1111 IP ban", body: `{"status":1111,"wait":5,"punish":"deny"}`,
			wantErrType: "Error", wantClass: ClassThrottled, ipBanned: true, throttle: 5 * time.Minute},
		{name: "status 1111 IP ban wait 10", body: `{"status":1111,"wait":10,"punish":"deny"}`,
			wantErrType: "Error", wantClass: ClassThrottled, ipBanned: true, throttle: 10 * time.Minute},
		{name: "status 1111 IP ban no wait", body: `{"status":1111,"punish":"deny"}`,
			wantErrType: "Error", wantClass: ClassThrottled, ipBanned: true, throttle: 5 * time.Minute},
		{name: "malformed JSON", body: `{"errcode":0,"task_id":`,
			wantErrType: "TransportError", wantClass: ClassTransient},
		{name: "empty 200", body: "",
			wantErrType: "TransportError", wantClass: ClassTransient},
		{name: "no errcode", body: `{"errmsg":"ok","task_id":1}`,
			wantErrType: "TransportError", wantClass: ClassTransient},
		{name: "task_id of the wrong type", body: `{"errcode":0,"task_id":"abc"}`,
			wantErrType: "TransportError", wantClass: ClassTransient},
		{name: "new host 400 InvalidAuthentication", status: 400, body: `{"code":"InvalidAuthentication","message":"不合法的access_token","requestid":"r"}`,
			wantErrType: "Error", wantClass: ClassTokenInvalid, wantErrCode: "InvalidAuthentication", wantReqID: "r", tokenInvalid: true},
		{name: "new host 403 QpsLimitForAppkeyAndApi", status: 403, body: `{"code":"Forbidden.AccessDenied.QpsLimitForAppkeyAndApi","message":"…","requestid":"r"}`,
			wantErrType: "Error", wantClass: ClassThrottled, wantErrCode: "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", wantReqID: "r", throttle: time.Second},
		{name: "429 without body", status: 429, body: "",
			wantErrType: "Error", wantClass: ClassThrottled, throttle: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, mux := setup(t)
			mux.HandleFunc(PathAsyncSendV2, func(w http.ResponseWriter, r *http.Request) {
				ct := tt.contentType
				if ct == "" {
					ct = "application/json;charset=utf-8"
				}
				w.Header().Set("Content-Type", ct)
				if tt.status != 0 {
					w.WriteHeader(tt.status)
				}
				fmt.Fprint(w, tt.body)
			})
			res, err := client.SendWorkNotification(context.Background(), testToken, testSendRequest())
			if res != nil {
				t.Errorf("result: got %+v, want nil", res)
			}
			if err == nil {
				t.Fatalf("error: got nil, want an error")
			}
			for _, secret := range []string{testToken, "access_token="} {
				if got := err.Error(); strings.Contains(got, secret) {
					t.Errorf("Error(): got %q, want no %q", got, secret)
				}
			}
			if got := Classify(err); got != tt.wantClass {
				t.Errorf("Classify: got %v, want %v (%v)", got, tt.wantClass, err)
			}
			d, ok := RetryAfter(err)
			if got, want := ok, tt.throttle > 0; got != want {
				t.Errorf("RetryAfter ok: got %v, want %v", got, want)
			}
			if d != tt.throttle {
				t.Errorf("RetryAfter: got %v, want %v", d, tt.throttle)
			}

			if tt.wantErrType == "TransportError" {
				var te *TransportError
				if !errors.As(err, &te) {
					t.Fatalf("error: got %v (%T), want *TransportError", err, err)
				}
				if got, want := te.Path, PathAsyncSendV2; got != want {
					t.Errorf("Path: got %q, want %q", got, want)
				}
				return
			}
			var de *Error
			if !errors.As(err, &de) {
				t.Fatalf("error: got %v (%T), want *Error", err, err)
			}
			wantStatus := tt.status
			if wantStatus == 0 {
				wantStatus = http.StatusOK
			}
			if got := de.HTTPStatus; got != wantStatus {
				t.Errorf("HTTPStatus: got %d, want %d", got, wantStatus)
			}
			if got, want := de.Path, PathAsyncSendV2; got != want {
				t.Errorf("Path: got %q, want %q", got, want)
			}
			if got := de.Code; got != tt.wantCode {
				t.Errorf("Code: got %d, want %d", got, tt.wantCode)
			}
			if got := de.SubCode; got != tt.wantSubCode {
				t.Errorf("SubCode: got %q, want %q", got, tt.wantSubCode)
			}
			if got := de.ErrorCode; got != tt.wantErrCode {
				t.Errorf("ErrorCode: got %q, want %q", got, tt.wantErrCode)
			}
			if got := de.RequestID; got != tt.wantReqID {
				t.Errorf("RequestID: got %q, want %q", got, tt.wantReqID)
			}
			if got := de.TokenInvalid(); got != tt.tokenInvalid {
				t.Errorf("TokenInvalid: got %v, want %v", got, tt.tokenInvalid)
			}
			if got, want := de.BadCredentials(), false; got != want {
				t.Errorf("BadCredentials: got %v, want %v", got, want)
			}
			if got := de.IPBanned; got != tt.ipBanned {
				t.Errorf("IPBanned: got %v, want %v", got, tt.ipBanned)
			}
			if tt.ipBanned {
				if got := de.Wait; got != tt.throttle {
					t.Errorf("Wait: got %v, want %v", got, tt.throttle)
				}
			}
			if got := de.Class(); got != tt.wantClass {
				t.Errorf("Class: got %v, want %v", got, tt.wantClass)
			}
		})
	}
}

func TestSendWorkNotification_hugeAnswer(t *testing.T) {
	client, mux := setup(t)
	mux.HandleFunc(PathAsyncSendV2, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		// A valid answer, but 2 MiB long: reading it whole would succeed.
		fmt.Fprint(w, `{"errcode":0,"errmsg":"ok","task_id":1,"pad":"`)
		pad := strings.Repeat("x", 64<<10)
		for range 32 {
			if _, err := io.WriteString(w, pad); err != nil {
				return // the client hung up: what we want
			}
		}
		fmt.Fprint(w, `"}`)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := client.SendWorkNotification(ctx, testToken, testSendRequest())
	if res != nil {
		t.Errorf("result: got %+v, want nil (answer must not be read beyond %d bytes)", res, maxAnswerBytes)
	}
	var te *TransportError
	if !errors.As(err, &te) {
		t.Fatalf("error: got %v (%T), want *TransportError", err, err)
	}
	if got, want := Classify(err), ClassTransient; got != want {
		t.Errorf("Classify: got %v, want %v", got, want)
	}
}

func TestSendWorkNotification_truncatedAnswer(t *testing.T) {
	client, mux := setup(t)
	mux.HandleFunc(PathAsyncSendV2, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		fmt.Fprint(w, `{"errcode":0,`) // then the connection closes
	})
	_, err := client.SendWorkNotification(context.Background(), testToken, testSendRequest())
	var te *TransportError
	if !errors.As(err, &te) {
		t.Fatalf("error: got %v (%T), want *TransportError", err, err)
	}
	if got, want := Classify(err), ClassTransient; got != want {
		t.Errorf("Classify: got %v, want %v", got, want)
	}
}

func TestSendWorkNotification_serverClosed(t *testing.T) {
	client, _, srv := setupServer(t)
	srv.Close()
	res, err := client.SendWorkNotification(context.Background(), testToken, testSendRequest())
	if res != nil {
		t.Errorf("result: got %+v, want nil", res)
	}
	var te *TransportError
	if !errors.As(err, &te) {
		t.Fatalf("error: got %v (%T), want *TransportError", err, err)
	}
	if got, want := te.Method, http.MethodPost; got != want {
		t.Errorf("Method: got %q, want %q", got, want)
	}
	if got, want := te.Path, PathAsyncSendV2; got != want {
		t.Errorf("Path: got %q, want %q", got, want)
	}
	for _, secret := range []string{testToken, "access_token="} {
		if got := err.Error(); strings.Contains(got, secret) {
			t.Errorf("Error(): got %q, want no %q", got, secret)
		}
		if got := fmt.Sprintf("%+v", err); strings.Contains(got, secret) {
			t.Errorf("%%+v: got %q, want no %q", got, secret)
		}
	}
	if got, want := Classify(err), ClassTransient; got != want {
		t.Errorf("Classify: got %v, want %v", got, want)
	}
}

// blockingHandler answers only when the client hangs up or the test ends.
func blockingHandler(t *testing.T, arrived func()) http.HandlerFunc {
	release := make(chan struct{})
	// Registered after setup's srv.Close, so it runs first and lets
	// srv.Close finish.
	t.Cleanup(func() { close(release) })
	return func(w http.ResponseWriter, r *http.Request) {
		if arrived != nil {
			arrived()
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
}

func TestSendWorkNotification_timeout(t *testing.T) {
	client, mux := setup(t, WithTimeout(50*time.Millisecond))
	mux.HandleFunc(PathAsyncSendV2, blockingHandler(t, nil))
	start := time.Now()
	_, err := client.SendWorkNotification(context.Background(), testToken, testSendRequest())
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("call took %v, want about 50ms", elapsed)
	}
	var te *TransportError
	if !errors.As(err, &te) {
		t.Fatalf("error: got %v (%T), want *TransportError", err, err)
	}
	var ne net.Error
	isTimeout := errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
	if got, want := isTimeout, true; got != want {
		t.Errorf("error is a timeout: got %v, want %v (%v)", got, want, err)
	}
	if got, want := Classify(err), ClassTransient; got != want {
		t.Errorf("Classify: got %v, want %v", got, want)
	}
	if got := err.Error(); strings.Contains(got, testToken) || strings.Contains(got, "access_token=") {
		t.Errorf("Error(): got %q, want no token", got)
	}
}

func TestSendWorkNotification_contextDeadline(t *testing.T) {
	client, mux := setup(t)
	mux.HandleFunc(PathAsyncSendV2, blockingHandler(t, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := client.SendWorkNotification(ctx, testToken, testSendRequest())
	if got, want := errors.Is(err, context.DeadlineExceeded), true; got != want {
		t.Errorf("errors.Is DeadlineExceeded: got %v, want %v (%v)", got, want, err)
	}
	if got, want := Classify(err), ClassTransient; got != want {
		t.Errorf("Classify: got %v, want %v", got, want)
	}
}

func TestSendWorkNotification_canceled(t *testing.T) {
	tests := []struct {
		name   string
		before bool // cancel before the call, else once the server has it
	}{
		{name: "before the call", before: true},
		{name: "during the call"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, mux := setup(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var once sync.Once
			mux.HandleFunc(PathAsyncSendV2, blockingHandler(t, func() { once.Do(cancel) }))
			if tt.before {
				cancel()
			}
			_, err := client.SendWorkNotification(ctx, testToken, testSendRequest())
			if got, want := errors.Is(err, context.Canceled), true; got != want {
				t.Errorf("errors.Is Canceled: got %v, want %v (%v)", got, want, err)
			}
			if got, want := Classify(err), ClassCanceled; got != want {
				t.Errorf("Classify: got %v, want %v", got, want)
			}
			if got := err.Error(); strings.Contains(got, testToken) {
				t.Errorf("Error(): got %q, want no token", got)
			}
		})
	}
}
