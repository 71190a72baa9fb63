package dingtalk_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
)

// The secrets of these tests: no error may show them.
const (
	otoToken  = "SECRET-oto-token-5f1e"
	otoSecret = "SECRET-oto-app-secret-77ab"
)

// otoClient returns a client whose new-host calls go to h, and whose
// legacy-host calls fail the test: the v1.0 APIs must never go there. n
// counts the calls h got.
func otoClient(t *testing.T, h http.HandlerFunc, opts ...dingtalk.Option) (*dingtalk.Client, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(api.Close)
	legacy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("legacy host called: %s %s", r.Method, r.URL.Path)
		http.Error(w, "wrong host", http.StatusTeapot)
	}))
	t.Cleanup(legacy.Close)
	c, err := dingtalk.NewClient(append([]dingtalk.Option{dingtalk.WithBaseURL(legacy.URL), dingtalk.WithAPIBaseURL(api.URL)}, opts...)...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c, &n
}

// answer returns a handler that answers status and body as JSON.
func answer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func textBatch(users ...string) *dingtalk.RobotBatchRequest {
	return &dingtalk.RobotBatchRequest{RobotCode: "dingrobot1", UserIDs: users, Msg: dingtalk.RobotTextTemplate("disk <full> & hot")}
}

func TestRobotBatchSendWire(t *testing.T) {
	tests := []struct {
		name string
		msg  dingtalk.RobotTemplate
	}{
		{name: "param as an object", msg: dingtalk.RobotTemplate{MsgKey: "sampleMarkdown",
			MsgParam: json.RawMessage(`{"title":"alert","text":"## disk <full> & hot"}`)}},
		{name: "param as a string", msg: dingtalk.RobotTemplate{MsgKey: "sampleMarkdown",
			MsgParam: json.RawMessage(`"{\"title\":\"alert\",\"text\":\"## disk <full> & hot\"}"`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, n := otoClient(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || r.URL.Path != dingtalk.PathRobotBatchSend || r.URL.RawQuery != "" {
					t.Errorf("request %s %s, want POST %s and no query", r.Method, r.URL, dingtalk.PathRobotBatchSend)
				}
				if got := r.Header.Get("x-acs-dingtalk-access-token"); got != otoToken {
					t.Errorf("header x-acs-dingtalk-access-token = %q, want the token", got)
				}
				if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Errorf("Content-Type = %q, want JSON", ct)
				}
				raw, _ := io.ReadAll(r.Body)
				var body map[string]json.RawMessage
				if err := json.Unmarshal(raw, &body); err != nil {
					t.Fatalf("body %s: %v", raw, err)
				}
				keys := make([]string, 0, len(body))
				for k := range body {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				if want := []string{"msgKey", "msgParam", "robotCode", "userIds"}; !slices.Equal(keys, want) {
					t.Errorf("body fields %v, want %v: %s", keys, want, raw)
				}
				if string(body["robotCode"]) != `"dingrobot1"` || string(body["userIds"]) != `["u1","u2"]` || string(body["msgKey"]) != `"sampleMarkdown"` {
					t.Errorf("body %s, want robotCode dingrobot1, userIds [u1 u2], msgKey sampleMarkdown", raw)
				}
				// msgParam is a JSON string holding the object, not the object.
				var param string
				if err := json.Unmarshal(body["msgParam"], &param); err != nil {
					t.Fatalf("msgParam %s: not a JSON string: %v", body["msgParam"], err)
				}
				var obj map[string]string
				if err := json.Unmarshal([]byte(param), &obj); err != nil || obj["title"] != "alert" || obj["text"] != "## disk <full> & hot" || len(obj) != 2 {
					t.Errorf("msgParam %q, want the object {title, text}", param)
				}
				if strings.Contains(string(raw), `\u003c`) || strings.Contains(string(raw), `\u0026`) {
					t.Errorf("body %s escapes < or &: DingTalk receives them as written", raw)
				}
				answer(200, `{"processQueryKey":"pqk-1","invalidStaffIdList":["u2"],"flowControlledStaffIdList":[]}`)(w, r)
			})
			res, err := c.RobotBatchSend(context.Background(), otoToken,
				&dingtalk.RobotBatchRequest{RobotCode: "dingrobot1", UserIDs: []string{"u1", "u2"}, Msg: tt.msg})
			if err != nil {
				t.Fatalf("RobotBatchSend: %v", err)
			}
			if res.ProcessQueryKey != "pqk-1" || !slices.Equal(res.InvalidStaffIDs, []string{"u2"}) || len(res.FlowControlledStaffIDs) != 0 {
				t.Errorf("result = %+v, want pqk-1 with u2 invalid", res)
			}
			if n.Load() != 1 {
				t.Errorf("%d calls, want 1", n.Load())
			}
		})
	}
}

func TestRobotBatchSendAnswer(t *testing.T) {
	c, _ := otoClient(t, answer(200, `{"processQueryKey":"pqk-2","invalidStaffIdList":["u9"],"flowControlledStaffIdList":["u1","u2"],"extra":1}`))
	res, err := c.RobotBatchSend(context.Background(), otoToken, textBatch("u1", "u2", "u9"))
	if err != nil {
		t.Fatal(err)
	}
	want := dingtalk.RobotBatchResult{ProcessQueryKey: "pqk-2", InvalidStaffIDs: []string{"u9"}, FlowControlledStaffIDs: []string{"u1", "u2"}}
	if res.ProcessQueryKey != want.ProcessQueryKey || !slices.Equal(res.InvalidStaffIDs, want.InvalidStaffIDs) ||
		!slices.Equal(res.FlowControlledStaffIDs, want.FlowControlledStaffIDs) {
		t.Errorf("result = %+v, want %+v", res, want)
	}
}

func TestRobotTemplateValidate(t *testing.T) {
	tests := []struct {
		name      string
		tpl       dingtalk.RobotTemplate
		wantField string // "" for valid
	}{
		{name: "text", tpl: dingtalk.RobotTextTemplate("hi")},
		{name: "param as an object", tpl: dingtalk.RobotTemplate{MsgKey: "sampleText", MsgParam: json.RawMessage(`{"content":"hi"}`)}},
		{name: "param as a string", tpl: dingtalk.RobotTemplate{MsgKey: "sampleText", MsgParam: json.RawMessage(`"{\"content\":\"hi\"}"`)}},
		{name: "param with spaces around", tpl: dingtalk.RobotTemplate{MsgKey: "sampleText", MsgParam: json.RawMessage(" {\"content\":\"hi\"}\n")}},
		{name: "markdown", tpl: dingtalk.RobotTemplate{MsgKey: "sampleMarkdown", MsgParam: json.RawMessage(`{"title":"t","text":"x"}`)}},
		{name: "extra parameters", tpl: dingtalk.RobotTemplate{MsgKey: "sampleText", MsgParam: json.RawMessage(`{"content":"hi","x":1}`)}},

		{name: "no msgKey", tpl: dingtalk.RobotTemplate{MsgParam: json.RawMessage(`{"content":"hi"}`)}, wantField: "msgKey"},
		{name: "unknown msgKey", tpl: dingtalk.RobotTemplate{MsgKey: "text", MsgParam: json.RawMessage(`{"content":"hi"}`)}, wantField: "msgKey"},
		{name: "no msgParam", tpl: dingtalk.RobotTemplate{MsgKey: "sampleText"}, wantField: "msgParam"},
		{name: "msgParam null", tpl: dingtalk.RobotTemplate{MsgKey: "sampleText", MsgParam: json.RawMessage(`null`)}, wantField: "msgParam"},
		{name: "msgParam an array", tpl: dingtalk.RobotTemplate{MsgKey: "sampleText", MsgParam: json.RawMessage(`["hi"]`)}, wantField: "msgParam"},
		{name: "msgParam a string, not an object", tpl: dingtalk.RobotTemplate{MsgKey: "sampleText", MsgParam: json.RawMessage(`"hi"`)}, wantField: "msgParam"},
		{name: "msgParam a broken string", tpl: dingtalk.RobotTemplate{MsgKey: "sampleText", MsgParam: json.RawMessage(`"hi`)}, wantField: "msgParam"},
		{name: "content missing", tpl: dingtalk.RobotTemplate{MsgKey: "sampleText", MsgParam: json.RawMessage(`{"text":"hi"}`)}, wantField: "msgParam.content"},
		{name: "content missing in a string", tpl: dingtalk.RobotTemplate{MsgKey: "sampleText", MsgParam: json.RawMessage(`"{}"`)}, wantField: "msgParam.content"},
		{name: "content empty", tpl: dingtalk.RobotTextTemplate(""), wantField: "msgParam.content"},
		{name: "content null", tpl: dingtalk.RobotTemplate{MsgKey: "sampleText", MsgParam: json.RawMessage(`{"content":null}`)}, wantField: "msgParam.content"},
		{name: "markdown without text", tpl: dingtalk.RobotTemplate{MsgKey: "sampleMarkdown", MsgParam: json.RawMessage(`{"title":"t"}`)}, wantField: "msgParam.text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.tpl.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				return
			}
			var ve *dingtalk.ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.wantField {
				t.Fatalf("Validate: %v, want a ValidationError naming %s", err, tt.wantField)
			}
			if dingtalk.Classify(err) != dingtalk.ClassPermanent {
				t.Errorf("Classify = %s, want permanent", dingtalk.Classify(err))
			}
		})
	}
}

// TestRobotTemplateParam: the object and the string holding it give the
// same msgParam string.
func TestRobotTemplateParam(t *testing.T) {
	want := `{"content":"a <b> & c"}`
	for _, raw := range []string{`{"content":"a <b> & c"}`, `"{\"content\":\"a <b> & c\"}"`, `{ "content" : "a <b> & c" }`} {
		tpl := dingtalk.RobotTemplate{MsgKey: "sampleText", MsgParam: json.RawMessage(raw)}
		if got, err := tpl.Param(); err != nil || got != want {
			t.Errorf("Param of %s = %q, %v; want %q", raw, got, err, want)
		}
	}
	text := dingtalk.RobotTextTemplate("a <b> & c")
	if got, err := text.Param(); err != nil || got != want {
		t.Errorf("RobotTextTemplate Param = %q, %v; want %q", got, err, want)
	}
	if got := dingtalk.RobotMsgKeys(); !slices.IsSorted(got) || !slices.Contains(got, "sampleText") || !slices.Contains(got, "sampleMarkdown") {
		t.Errorf("RobotMsgKeys = %v, want them sorted with sampleText and sampleMarkdown", got)
	}
}

// TestRobotBatchRequestValidate: the client refuses what DingTalk would,
// before any call.
func TestRobotBatchRequestValidate(t *testing.T) {
	users := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "u" + strings.Repeat("x", i)
		}
		return out
	}
	tests := []struct {
		name      string
		req       *dingtalk.RobotBatchRequest
		wantField string // "" for valid
	}{
		{name: "one user", req: textBatch("u1")},
		{name: "20 users", req: textBatch(users(dingtalk.MaxRobotBatchUsers)...)},
		{name: "21 users", req: textBatch(users(dingtalk.MaxRobotBatchUsers + 1)...), wantField: "userIds"},
		{name: "no users", req: textBatch(), wantField: "userIds"},
		{name: "empty user id", req: textBatch("u1", " "), wantField: "userIds[1]"},
		{name: "user id with a comma", req: textBatch("u1,u2"), wantField: "userIds[0]"},
		{name: "no robot code", req: &dingtalk.RobotBatchRequest{UserIDs: []string{"u1"}, Msg: dingtalk.RobotTextTemplate("x")}, wantField: "robotCode"},
		{name: "bad message", req: &dingtalk.RobotBatchRequest{RobotCode: "r", UserIDs: []string{"u1"},
			Msg: dingtalk.RobotTemplate{MsgKey: "sampleText", MsgParam: json.RawMessage(`{}`)}}, wantField: "msgParam.content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, n := otoClient(t, answer(200, `{"processQueryKey":"k","invalidStaffIdList":[],"flowControlledStaffIdList":[]}`))
			_, err := c.RobotBatchSend(context.Background(), otoToken, tt.req)
			if tt.wantField == "" {
				if err != nil || n.Load() != 1 {
					t.Fatalf("RobotBatchSend: %v after %d calls, want one call and nil", err, n.Load())
				}
				return
			}
			var ve *dingtalk.ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.wantField {
				t.Fatalf("RobotBatchSend: %v, want a ValidationError naming %s", err, tt.wantField)
			}
			if n.Load() != 0 {
				t.Errorf("%d calls made, want none: the request is refused before", n.Load())
			}
		})
	}
}

func TestRobotBatchSendErrors(t *testing.T) {
	tests := []struct {
		name          string
		status        int
		body          string
		ctype         string // Content-Type; JSON if ""
		wantClass     dingtalk.Class
		wantCode      string        // Error.ErrorCode; "" for a *TransportError or none
		wantRetry     time.Duration // RetryAfter; 0 if none
		wantInvalid   bool          // TokenInvalid
		wantTransport bool
	}{
		{name: "token refused", status: 400, body: `{"code":"InvalidAuthentication","message":"不合法的access_token","requestid":"r1"}`,
			wantClass: dingtalk.ClassTokenInvalid, wantCode: "InvalidAuthentication", wantInvalid: true},
		{name: "per-app QPS", status: 403, body: `{"code":"Forbidden.AccessDenied.QpsLimitForAppkeyAndApi","message":"限流","requestid":"r2"}`,
			wantClass: dingtalk.ClassThrottled, wantCode: "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", wantRetry: time.Second},
		{name: "global QPS", status: 403, body: `{"code":"Forbidden.AccessDenied.QpsLimitForApi","message":"限流","requestid":"r3"}`,
			wantClass: dingtalk.ClassThrottled, wantCode: "Forbidden.AccessDenied.QpsLimitForApi", wantRetry: time.Second},
		{name: "bad parameter", status: 400, body: `{"code":"InvalidParameter.UserIds","message":"userIds","requestid":"r4"}`,
			wantClass: dingtalk.ClassPermanent, wantCode: "InvalidParameter.UserIds"},
		{name: "monthly quota", status: 403, body: `{"code":"Forbidden.AccessDenied.ApiCountLimitForOrg","message":"quota","requestid":"r5"}`,
			wantClass: dingtalk.ClassPermanent, wantCode: "Forbidden.AccessDenied.ApiCountLimitForOrg"},
		{name: "server error with a code", status: 500, body: `{"code":"ServiceUnavailable","message":"busy","requestid":"r6"}`,
			wantClass: dingtalk.ClassTransient, wantCode: "ServiceUnavailable"},
		{name: "server error as text", status: 500, body: "Internal Server Error\n", ctype: "text/plain",
			wantClass: dingtalk.ClassTransient},
		{name: "bad gateway page", status: 502, body: "<html><body>502 Bad Gateway</body></html>", ctype: "text/html",
			wantClass: dingtalk.ClassTransient},
		{name: "2xx malformed JSON", status: 200, body: `{"processQueryKey":"k","invalidStaffIdList":[`,
			wantClass: dingtalk.ClassTransient, wantTransport: true},
		{name: "2xx not JSON", status: 200, body: `ok`, ctype: "text/plain",
			wantClass: dingtalk.ClassTransient, wantTransport: true},
		{name: "2xx with a list of the wrong type", status: 200, body: `{"processQueryKey":"k","invalidStaffIdList":"u1"}`,
			wantClass: dingtalk.ClassTransient, wantTransport: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := otoClient(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.ctype != "" {
					w.Header().Set("Content-Type", tt.ctype)
					w.WriteHeader(tt.status)
					_, _ = io.WriteString(w, tt.body)
					return
				}
				answer(tt.status, tt.body)(w, r)
			})
			res, err := c.RobotBatchSend(context.Background(), otoToken, textBatch("u1"))
			if err == nil {
				t.Fatalf("RobotBatchSend: %+v, want an error", res)
			}
			if strings.Contains(err.Error(), otoToken) {
				t.Errorf("error %q shows the access token", err)
			}
			if got := dingtalk.Classify(err); got != tt.wantClass {
				t.Errorf("Classify(%v) = %s, want %s", err, got, tt.wantClass)
			}
			if got, ok := dingtalk.RetryAfter(err); got != tt.wantRetry || ok != (tt.wantRetry > 0) {
				t.Errorf("RetryAfter = %s, %t; want %s", got, ok, tt.wantRetry)
			}
			var te *dingtalk.TransportError
			if tt.wantTransport {
				if !errors.As(err, &te) || te.Path != dingtalk.PathRobotBatchSend {
					t.Errorf("got %v (%T), want a *TransportError of %s", err, err, dingtalk.PathRobotBatchSend)
				}
				return
			}
			var de *dingtalk.Error
			if !errors.As(err, &de) {
				t.Fatalf("got %v (%T), want a *dingtalk.Error", err, err)
			}
			if de.HTTPStatus != tt.status || de.ErrorCode != tt.wantCode || de.Path != dingtalk.PathRobotBatchSend || de.TokenInvalid() != tt.wantInvalid {
				t.Errorf("got %+v, want HTTP %d code %q on %s, TokenInvalid %t", de, tt.status, tt.wantCode, dingtalk.PathRobotBatchSend, tt.wantInvalid)
			}
			if tt.wantCode != "" && (de.RequestID == "" || de.Message == "") {
				t.Errorf("got %+v, want the message and requestid kept", de)
			}
		})
	}
}

func TestGetAccessTokenV1(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	tests := []struct {
		name     string
		answer   string
		wantLife time.Duration
	}{
		{name: "7200 s", answer: `{"accessToken":"` + otoToken + `","expireIn":7200}`, wantLife: 7200 * time.Second},
		{name: "shorter", answer: `{"accessToken":"` + otoToken + `","expireIn":600}`, wantLife: 600 * time.Second},
		{name: "zero lifetime", answer: `{"accessToken":"` + otoToken + `","expireIn":0}`, wantLife: dingtalk.DefaultTokenLifetime},
		{name: "absurd lifetime", answer: `{"accessToken":"` + otoToken + `","expireIn":99999999}`, wantLife: dingtalk.DefaultTokenLifetime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := otoClient(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || r.URL.Path != dingtalk.PathAccessTokenV1 || r.URL.RawQuery != "" {
					t.Errorf("request %s %s, want POST %s and no query", r.Method, r.URL, dingtalk.PathAccessTokenV1)
				}
				if got := r.Header.Get("x-acs-dingtalk-access-token"); got != "" {
					t.Errorf("token header %q on the token endpoint, want none", got)
				}
				var body map[string]string
				if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body) != 2 || body["appKey"] != "dingkey1" || body["appSecret"] != otoSecret {
					t.Errorf("body %v (%v), want exactly appKey and appSecret", body, err)
				}
				answer(200, tt.answer)(w, r)
			}, dingtalk.WithClock(func() time.Time { return now }))
			tok, err := c.GetAccessTokenV1(context.Background(), dingtalk.Credentials{AppKey: "dingkey1", AppSecret: otoSecret})
			if err != nil {
				t.Fatalf("GetAccessTokenV1: %v", err)
			}
			if tok.AccessToken != otoToken || tok.ExpiresIn != tt.wantLife || !tok.ExpiresAt.Equal(now.Add(tt.wantLife)) {
				t.Errorf("token %v (lifetime %s), want the answer's for %s", tok, tok.ExpiresIn, tt.wantLife)
			}
			if strings.Contains(tok.String(), otoToken) {
				t.Errorf("Token.String %q shows the token", tok)
			}
		})
	}
}

func TestGetAccessTokenV1Errors(t *testing.T) {
	good := dingtalk.Credentials{AppKey: "dingkey1", AppSecret: otoSecret}
	tests := []struct {
		name       string
		cred       dingtalk.Credentials
		status     int
		body       string
		wantField  string // a ValidationError naming it, and no call
		wantCode   string
		wantBadCrd bool
		wantClass  dingtalk.Class
	}{
		{name: "corp credentials", cred: dingtalk.Credentials{CorpID: "dingcorp1", CorpSecret: otoSecret}, wantField: "app_key", wantClass: dingtalk.ClassPermanent},
		{name: "none", wantField: "app_key", wantClass: dingtalk.ClassPermanent},
		{name: "no secret", cred: dingtalk.Credentials{AppKey: "dingkey1"}, wantField: "app_secret", wantClass: dingtalk.ClassPermanent},
		{name: "no key", cred: dingtalk.Credentials{AppSecret: otoSecret}, wantField: "app_key", wantClass: dingtalk.ClassPermanent},
		{name: "bad credentials", cred: good, status: 400, body: `{"code":"invalidClientIdOrSecret","message":"无效的clientId或者clientSecret","requestid":"r"}`,
			wantCode: "invalidClientIdOrSecret", wantBadCrd: true, wantClass: dingtalk.ClassPermanent},
		{name: "missing parameter", cred: good, status: 400, body: `{"code":"MissingParameter","message":"appKey is mandatory","requestid":"r"}`,
			wantCode: "MissingParameter", wantClass: dingtalk.ClassPermanent},
		{name: "throttled", cred: good, status: 403, body: `{"code":"Forbidden.AccessDenied.QpsLimitForAppkeyAndApi","message":"x","requestid":"r"}`,
			wantCode: "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", wantClass: dingtalk.ClassThrottled},
		{name: "no accessToken", cred: good, status: 200, body: `{"expireIn":7200}`, wantClass: dingtalk.ClassTransient},
		{name: "server error", cred: good, status: 503, body: `{"code":"ServiceUnavailable","message":"x","requestid":"r"}`,
			wantCode: "ServiceUnavailable", wantClass: dingtalk.ClassTransient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, n := otoClient(t, answer(tt.status, tt.body))
			tok, err := c.GetAccessTokenV1(context.Background(), tt.cred)
			if err == nil {
				t.Fatalf("GetAccessTokenV1: %v, want an error", tok)
			}
			if strings.Contains(err.Error(), otoSecret) || strings.Contains(err.Error(), otoToken) {
				t.Errorf("error %q shows a secret", err)
			}
			if got := dingtalk.Classify(err); got != tt.wantClass {
				t.Errorf("Classify(%v) = %s, want %s", err, got, tt.wantClass)
			}
			if tt.wantField != "" {
				var ve *dingtalk.ValidationError
				if !errors.As(err, &ve) || ve.Field != tt.wantField {
					t.Errorf("got %v, want a ValidationError naming %s", err, tt.wantField)
				}
				if n.Load() != 0 {
					t.Errorf("%d calls made, want none", n.Load())
				}
				return
			}
			var de *dingtalk.Error
			if tt.wantCode == "" {
				var te *dingtalk.TransportError
				if !errors.As(err, &te) || te.Path != dingtalk.PathAccessTokenV1 {
					t.Errorf("got %v (%T), want a *TransportError", err, err)
				}
				return
			}
			if !errors.As(err, &de) || de.ErrorCode != tt.wantCode || de.HTTPStatus != tt.status || de.BadCredentials() != tt.wantBadCrd {
				t.Fatalf("got %v, want HTTP %d %s, BadCredentials %t", err, tt.status, tt.wantCode, tt.wantBadCrd)
			}
			if de.TokenInvalid() {
				t.Errorf("TokenInvalid on the token endpoint: a refused token fetch is not a token to drop")
			}
			if tt.wantBadCrd && !de.NeedsOperator() {
				t.Errorf("NeedsOperator = false, want true for bad credentials")
			}
		})
	}
}
