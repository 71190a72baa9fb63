package api_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dingq/dingq/internal/api"
	"github.com/dingq/dingq/producer"
)

const (
	uiUser     = "ops"
	uiPassword = "ui-password-0123456789"
)

// recorder stands in for asynqmon and /metrics: it counts what reaches it.
type recorder struct{ hits atomic.Int64 }

func (h *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.hits.Add(1)
	_, _ = w.Write([]byte("ok " + r.Method + " " + r.URL.Path))
}

func basicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

func TestUIAuth(t *testing.T) {
	ui, metrics := &recorder{}, &recorder{}
	f := setupWith(t, producer.Config{Apps: []string{"hr"}}, api.Config{Tokens: []string{testToken},
		UIUsers: []api.UIUser{{Name: uiUser, Password: uiPassword}, {Name: "second", Password: "second-password-0123"}},
		UI:      ui, Metrics: metrics})
	tests := []struct {
		name, method, path, auth string
		want                     int
		wantBasic                bool // a 401 asks the browser for a login
	}{
		{name: "ui without credentials", path: "/ui/", want: 401, wantBasic: true},
		{name: "ui wrong password", path: "/ui/", auth: basicAuth(uiUser, "wrong-password-0123456"), want: 401, wantBasic: true},
		{name: "ui unknown user", path: "/ui/", auth: basicAuth("root", uiPassword), want: 401, wantBasic: true},
		{name: "ui other user's password", path: "/ui/", auth: basicAuth("second", uiPassword), want: 401, wantBasic: true},
		{name: "ui empty basic", path: "/ui/", auth: "Basic ", want: 401, wantBasic: true},
		{name: "ui wrong bearer", path: "/ui/", auth: "Bearer wrong-token-0123456789", want: 401, wantBasic: true},
		{name: "ui login", path: "/ui/", auth: basicAuth(uiUser, uiPassword), want: 200},
		{name: "ui second login", path: "/ui/api/queues", auth: basicAuth("second", "second-password-0123"), want: 200},
		{name: "ui bearer token", path: "/ui/api/queues", auth: "Bearer " + testToken, want: 200},
		{name: "ui asset without credentials", path: "/ui/static/js/main.js", want: 401, wantBasic: true},
		{name: "ui action without credentials", method: "POST", path: "/ui/api/queues/default:pause", want: 401, wantBasic: true},
		{name: "ui without slash redirects", path: "/ui", want: 301},
		{name: "metrics without credentials", path: "/metrics", want: 401, wantBasic: true},
		{name: "metrics login", path: "/metrics", auth: basicAuth(uiUser, uiPassword), want: 200},
		{name: "metrics bearer token", path: "/metrics", auth: "Bearer " + testToken, want: 200},
		// A UI login is not an API credential.
		{name: "api with a ui login", path: "/v1/messages/m1", auth: basicAuth(uiUser, uiPassword), want: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			before := ui.hits.Load() + metrics.hits.Load()
			client := f.srv.Client()
			client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			req, err := http.NewRequest(method, f.srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status: got %d, want %d", resp.StatusCode, tt.want)
			}
			reached := ui.hits.Load() + metrics.hits.Load() - before
			if want := int64(0); tt.want == 200 {
				if reached != 1 {
					t.Errorf("handler reached %d times, want 1", reached)
				}
			} else if reached != want {
				t.Errorf("handler reached %d times without a login, want 0", reached)
			}
			challenges := strings.Join(resp.Header.Values("WWW-Authenticate"), ", ")
			if tt.wantBasic && !strings.Contains(challenges, `Basic realm="dingq"`) {
				t.Errorf("WWW-Authenticate: got %q, want a Basic challenge", challenges)
			}
			if tt.want == 301 && resp.Header.Get("Location") != "/ui/" {
				t.Errorf("Location: got %q, want /ui/", resp.Header.Get("Location"))
			}
		})
	}
}

func TestUIReadOnly(t *testing.T) {
	ui := &recorder{}
	f := setupWith(t, producer.Config{Apps: []string{"hr"}}, api.Config{Tokens: []string{testToken},
		UIUsers: []api.UIUser{{Name: uiUser, Password: uiPassword}}, UI: ui, UIReadOnly: true})
	login := map[string]string{"Authorization": basicAuth(uiUser, uiPassword)}
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/ui/", 200},
		{"GET", "/ui/api/queues", 200},
		{"HEAD", "/ui/api/queues", 200},
		{"POST", "/ui/api/queues/default:pause", 403},
		{"DELETE", "/ui/api/queues/default", 403},
		{"POST", "/ui/api/queues/default/archived_tasks:run_all", 403},
		{"DELETE", "/ui/api/queues/default/pending_tasks:delete_all", 403},
		{"POST", "/ui/api/queues/default/active_tasks/x:cancel", 403},
		{"PUT", "/ui/api/queues/default", 403},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			before := ui.hits.Load()
			resp, body := f.request(t, tt.method, tt.path, "", login)
			if resp.StatusCode != tt.want {
				t.Fatalf("status: got %d, want %d (%s)", resp.StatusCode, tt.want, body)
			}
			reached := ui.hits.Load() - before
			if tt.want == 403 {
				if reached != 0 {
					t.Errorf("a refused action reached the UI")
				}
				if e := apiError(t, resp, body); e.Code != api.CodeReadOnly {
					t.Errorf("error.code: got %q, want %q", e.Code, api.CodeReadOnly)
				}
			} else if reached != 1 {
				t.Errorf("handler reached %d times, want 1", reached)
			}
		})
	}
}

// TestUICrossOrigin: a logged-in browser visiting a hostile page must not
// let it act on the queues with the cached login.
func TestUICrossOrigin(t *testing.T) {
	ui := &recorder{}
	f := setupWith(t, producer.Config{Apps: []string{"hr"}}, api.Config{
		UIUsers: []api.UIUser{{Name: uiUser, Password: uiPassword}}, UI: ui})
	tests := []struct {
		name, method, site, origin string
		want                       int
	}{
		{name: "cross-site action", method: "POST", site: "cross-site", want: 403},
		{name: "cross-site delete", method: "DELETE", site: "cross-site", want: 403},
		{name: "foreign Origin action", method: "POST", origin: "https://evil.example", want: 403},
		{name: "same-origin action", method: "POST", site: "same-origin", want: 200},
		{name: "action without browser headers (curl)", method: "POST", want: 200},
		{name: "cross-site read", method: "GET", site: "cross-site", want: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := ui.hits.Load()
			h := map[string]string{"Authorization": basicAuth(uiUser, uiPassword), "Sec-Fetch-Site": tt.site, "Origin": tt.origin}
			resp, body := f.request(t, tt.method, "/ui/api/queues/dingq:critical:pause", "", h)
			if resp.StatusCode != tt.want {
				t.Fatalf("status: got %d, want %d (%s)", resp.StatusCode, tt.want, body)
			}
			if reached := ui.hits.Load() - before; (reached == 1) != (tt.want == 200) {
				t.Errorf("reached the UI %d times with status %d", reached, tt.want)
			}
		})
	}
}

func TestUIOpenWithoutCredentials(t *testing.T) {
	ui := &recorder{}
	f := setupWith(t, producer.Config{Apps: []string{"hr"}}, api.Config{UI: ui, Metrics: ui})
	for _, path := range []string{"/ui/", "/metrics"} {
		resp, body := f.request(t, http.MethodGet, path, "", nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: got %d, want 200 (%s)", path, resp.StatusCode, body)
		}
	}
}

func TestUINotConfigured(t *testing.T) {
	f := setup(t)
	for _, path := range []string{"/ui/", "/metrics"} {
		resp, body := f.get(t, path)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: got %d, want 404 (%s)", path, resp.StatusCode, body)
		}
	}
}

func TestUIUserNeedsPassword(t *testing.T) {
	if _, err := api.New(api.Config{Producer: &producer.Producer{}, UIUsers: []api.UIUser{{Name: "ops"}}}); err == nil {
		t.Error("api.New accepted a UI user without a password")
	}
}

func TestFormatPayload(t *testing.T) {
	tests := []struct {
		name, in   string
		want       []string // in the output
		wantAbsent []string // never in the output
	}{
		{name: "message kept whole",
			in:   `{"id":"m1","app":"hr","userid_list":["u1","u2"],"msg":{"msgtype":"text","text":{"content":"工资条已发放"}}}`,
			want: []string{`"id": "m1"`, `"u2"`, `"content": "工资条已发放"`}},
		{name: "secrets at any depth and in any case",
			in: `{"type":"suite_ticket","event":{"SuiteTicket":"st-SECRET1","AuthCode":"ac-SECRET2","nested":[{"access_token":"at-SECRET3"}],` +
				`"App-Secret":"as-SECRET4","password":"pw-SECRET5","aes_key":"ak-SECRET6","Token":"tk-SECRET7","CorpId":"ding123"}}`,
			want:       []string{`"SuiteTicket": "[redacted]"`, `"access_token": "[redacted]"`, `"CorpId": "ding123"`, `"type": "suite_ticket"`},
			wantAbsent: []string{"SECRET"}},
		{name: "secret names by what they contain",
			in: `{"refresh_token":"SECRET-1","suiteSecret":"SECRET-2","sso_secret":"SECRET-3","jsapi_ticket":"SECRET-4",` +
				`"suite_access_token":"SECRET-5","EncodingAESKey":"SECRET-6","TmpAuthCode":"SECRET-7","title":"月报","media_id":"@lA0"}`,
			want: []string{`"refresh_token": "[redacted]"`, `"title": "月报"`, `"media_id": "@lA0"`}, wantAbsent: []string{"SECRET"}},
		{name: "JSON inside a string",
			in:         `{"type":"sync","event":{"biz_data":"{\"syncAction\":\"suite_ticket\",\"suiteTicket\":\"SECRET-st\"}"}}`,
			want:       []string{`syncAction`, `suite_ticket`, api.Redacted},
			wantAbsent: []string{"SECRET"}},
		{name: "a string that only looks like JSON", in: `{"content":"{not json"}`, want: []string{`"content": "{not json"`}},
		{name: "a secret object is redacted whole",
			in: `{"secret":{"inner":"SECRET-x"}}`, want: []string{`"secret": "[redacted]"`}, wantAbsent: []string{"SECRET-x"}},
		{name: "big numbers exact", in: `{"task_id":9007199254740993}`, want: []string{"9007199254740993"}},
		// What is not exactly one JSON value cannot be searched for
		// secrets, so it is only summarised.
		{name: "not JSON", in: "plain text", want: []string{"(10 bytes, not JSON)"}},
		{name: "binary", in: "\xff\xfe\x00", want: []string{"(3 bytes, not JSON)"}},
		{name: "two JSON values", in: `{"a":1} {"access_token":"SECRET-2"}`, want: []string{"(35 bytes, not JSON)"}, wantAbsent: []string{"SECRET"}},
		{name: "truncated JSON", in: `{"token":"SECRET-t"`, want: []string{"bytes, not JSON)"}, wantAbsent: []string{"SECRET"}},
		{name: "trailing garbage", in: `{"a":1}x`, want: []string{"(8 bytes, not JSON)"}},
		{name: "empty", in: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := api.FormatPayload([]byte(tt.in))
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.wantAbsent {
				if strings.Contains(got, w) {
					t.Errorf("output shows %q:\n%s", w, got)
				}
			}
			if tt.in == "" && got != "" {
				t.Errorf("empty payload shown as %q", got)
			}
		})
	}
}
