package dingtalk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
)

// The official sample's token and aes_key (dingtalk-api.md).
const (
	testCallbackToken  = "123456"
	testCallbackAESKey = "4g5j64qlyl3zvetqxz5jiocdr586fn2zvjpa8zls3ij"
)

func testCallback() *Callback {
	return &Callback{
		Tags:   []string{"user_add_org", "bpms_task_change"},
		Token:  testCallbackToken,
		AESKey: testCallbackAESKey,
		URL:    "https://dingq.example.com/callback?app=a1",
	}
}

const testCallbackWire = `{"call_back_tag":["user_add_org","bpms_task_change"],"token":"123456",` +
	`"aes_key":"4g5j64qlyl3zvetqxz5jiocdr586fn2zvjpa8zls3ij","url":"https://dingq.example.com/callback?app=a1"}`

// testNoBody checks that a GET carried no body and no Content-Type.
func testNoBody(t *testing.T, r *http.Request) {
	t.Helper()
	b, _ := io.ReadAll(r.Body)
	if len(b) != 0 {
		t.Errorf("request body: got %q, want none", b)
	}
	testHeader(t, r, "Content-Type", "")
}

// callbackCall is one of the callback calls, for the tests they share.
type callbackCall struct {
	name   string
	method string
	path   string
	call   func(c *Client, ctx context.Context, token string) error
}

var callbackCalls = []callbackCall{
	{name: "RegisterCallback", method: http.MethodPost, path: PathRegisterCallback,
		call: func(c *Client, ctx context.Context, token string) error {
			return c.RegisterCallback(ctx, token, testCallback())
		}},
	{name: "UpdateCallback", method: http.MethodPost, path: PathUpdateCallback,
		call: func(c *Client, ctx context.Context, token string) error {
			return c.UpdateCallback(ctx, token, testCallback())
		}},
	{name: "GetCallback", method: http.MethodGet, path: PathGetCallback,
		call: func(c *Client, ctx context.Context, token string) error {
			cb, err := c.GetCallback(ctx, token)
			if err != nil && cb != nil {
				return fmt.Errorf("got callback with error %w", err)
			}
			return err
		}},
	{name: "DeleteCallback", method: http.MethodGet, path: PathDeleteCallback,
		call: func(c *Client, ctx context.Context, token string) error {
			return c.DeleteCallback(ctx, token)
		}},
	{name: "GetCallbackFailed", method: http.MethodGet, path: PathCallbackFailed,
		call: func(c *Client, ctx context.Context, token string) error {
			fe, err := c.GetCallbackFailed(ctx, token)
			if err != nil && fe != nil {
				return fmt.Errorf("got failed events with error %w", err)
			}
			return err
		}},
}

func TestCallbackCalls_request(t *testing.T) {
	for _, tc := range callbackCalls {
		t.Run(tc.name, func(t *testing.T) {
			client, mux := setup(t)
			var hits atomic.Int32
			mux.HandleFunc(tc.path, func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				testMethod(t, r, tc.method)
				testQuery(t, r, map[string]string{"access_token": testToken})
				if tc.method == http.MethodPost {
					testHeader(t, r, "Content-Type", "application/json; charset=utf-8")
					testBody(t, r, testCallbackWire)
				} else {
					testNoBody(t, r)
				}
				fmt.Fprint(w, `{"errcode":0,"errmsg":"ok"}`)
			})
			if err := tc.call(client, context.Background(), testToken); err != nil {
				t.Fatalf("%s: got %v, want nil", tc.name, err)
			}
			if got, want := hits.Load(), int32(1); got != want {
				t.Errorf("calls: got %d, want %d", got, want)
			}
		})
	}
}

func TestGetCallback_answer(t *testing.T) {
	client, mux := setup(t)
	mux.HandleFunc(PathGetCallback, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"errcode":0,"errmsg":"ok","call_back_tag":["user_add_org","bpms_task_change"],`+
			`"token":"123456","aes_key":"4g5j64qlyl3zvetqxz5jiocdr586fn2zvjpa8zls3ij",`+
			`"url":"https://dingq.example.com/callback?app=a1"}`)
	})
	got, err := client.GetCallback(context.Background(), testToken)
	if err != nil {
		t.Fatalf("GetCallback: got %v, want nil", err)
	}
	if want := testCallback(); !reflect.DeepEqual(got, want) {
		t.Errorf("GetCallback:\n got %+v\nwant %+v", got, want)
	}
}

func TestGetCallbackFailed_answer(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		wantHasMore bool
		wantEvents  []string
	}{
		{name: "page with more",
			body: `{"errcode":0,"errmsg":"ok","has_more":true,"failed_list":[` +
				`{"event_time":1445827045067,"call_back_tag":"user_add_org","user_add_org":{"userid":["u1"],"corpid":"c1"}},` +
				`{"event_time":1445827045068,"call_back_tag":"chat_disband","chat_disband":{"chatid":"ch1"}}]}`,
			wantHasMore: true,
			wantEvents: []string{
				`{"event_time":1445827045067,"call_back_tag":"user_add_org","user_add_org":{"userid":["u1"],"corpid":"c1"}}`,
				`{"event_time":1445827045068,"call_back_tag":"chat_disband","chat_disband":{"chatid":"ch1"}}`,
			}},
		{name: "empty", body: `{"errcode":0,"errmsg":"ok","has_more":false,"failed_list":[]}`},
		{name: "no list", body: `{"errcode":0,"errmsg":"ok"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, mux := setup(t)
			mux.HandleFunc(PathCallbackFailed, func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, tt.body)
			})
			fe, err := client.GetCallbackFailed(context.Background(), testToken)
			if err != nil {
				t.Fatalf("GetCallbackFailed: got %v, want nil", err)
			}
			if got, want := fe.HasMore, tt.wantHasMore; got != want {
				t.Errorf("HasMore: got %v, want %v", got, want)
			}
			if got, want := len(fe.Events), len(tt.wantEvents); got != want {
				t.Fatalf("events: got %d, want %d", got, want)
			}
			for i, ev := range fe.Events {
				if got, want := string(ev), tt.wantEvents[i]; got != want {
					t.Errorf("event %d:\n got %s\nwant %s", i, got, want)
				}
				if !json.Valid(ev) {
					t.Errorf("event %d: not valid JSON: %s", i, ev)
				}
			}
		})
	}
}

func TestCallback_Validate(t *testing.T) {
	valid := func(f func(cb *Callback)) *Callback {
		cb := testCallback()
		f(cb)
		return cb
	}
	tests := []struct {
		name      string
		cb        *Callback
		wantField string // "" for valid
	}{
		{name: "valid", cb: testCallback()},
		{name: "http url", cb: valid(func(cb *Callback) { cb.URL = "http://10.0.0.1:8080/cb" })},
		{name: "token of 6", cb: valid(func(cb *Callback) { cb.Token = "abcdef" })},
		{name: "token of 64", cb: valid(func(cb *Callback) { cb.Token = strings.Repeat("t", 64) })},
		{name: "nil", cb: nil, wantField: "call_back_tag"},
		{name: "no tags", cb: valid(func(cb *Callback) { cb.Tags = nil }), wantField: "call_back_tag"},
		{name: "empty tag", cb: valid(func(cb *Callback) { cb.Tags = []string{"user_add_org", ""} }), wantField: "call_back_tag"},
		{name: "blank tag", cb: valid(func(cb *Callback) { cb.Tags = []string{" "} }), wantField: "call_back_tag"},
		{name: "no token", cb: valid(func(cb *Callback) { cb.Token = "" }), wantField: "token"},
		{name: "token of 5", cb: valid(func(cb *Callback) { cb.Token = "s3cr3" }), wantField: "token"},
		{name: "token of 65", cb: valid(func(cb *Callback) { cb.Token = strings.Repeat("s", 65) }), wantField: "token"},
		{name: "no aes_key", cb: valid(func(cb *Callback) { cb.AESKey = "" }), wantField: "aes_key"},
		{name: "aes_key of 42", cb: valid(func(cb *Callback) { cb.AESKey = testCallbackAESKey[:42] }), wantField: "aes_key"},
		{name: "aes_key of 44", cb: valid(func(cb *Callback) { cb.AESKey = testCallbackAESKey + "x" }), wantField: "aes_key"},
		{name: "aes_key with +", cb: valid(func(cb *Callback) { cb.AESKey = "+" + testCallbackAESKey[1:] }), wantField: "aes_key"},
		{name: "aes_key with =", cb: valid(func(cb *Callback) { cb.AESKey = testCallbackAESKey[:42] + "=" }), wantField: "aes_key"},
		{name: "no url", cb: valid(func(cb *Callback) { cb.URL = "" }), wantField: "url"},
		{name: "relative url", cb: valid(func(cb *Callback) { cb.URL = "/callback" }), wantField: "url"},
		{name: "ftp url", cb: valid(func(cb *Callback) { cb.URL = "ftp://dingq.example.com/cb" }), wantField: "url"},
		{name: "url without host", cb: valid(func(cb *Callback) { cb.URL = "https:///cb" }), wantField: "url"},
		{name: "bad url", cb: valid(func(cb *Callback) { cb.URL = "https://[::1" }), wantField: "url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cb.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate: got %v, want nil", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate: got %v (%T), want *ValidationError", err, err)
			}
			if got := ve.Field; got != tt.wantField {
				t.Errorf("Field: got %q, want %q", got, tt.wantField)
			}
			if tt.cb != nil {
				for _, secret := range []string{tt.cb.Token, tt.cb.AESKey} {
					if len(secret) >= 4 && strings.Contains(err.Error(), secret) {
						t.Errorf("error %q leaks a secret", err)
					}
				}
			}
		})
	}
}

func TestCallbackRegistration_invalid(t *testing.T) {
	calls := []struct {
		name string
		call func(c *Client, token string, cb *Callback) error
	}{
		{"RegisterCallback", func(c *Client, token string, cb *Callback) error {
			return c.RegisterCallback(context.Background(), token, cb)
		}},
		{"UpdateCallback", func(c *Client, token string, cb *Callback) error {
			return c.UpdateCallback(context.Background(), token, cb)
		}},
	}
	tests := []struct {
		name      string
		token     string
		cb        *Callback
		wantField string
	}{
		{name: "nil callback", token: testToken, cb: nil, wantField: "call_back_tag"},
		{name: "short token", token: testToken,
			cb: &Callback{Tags: []string{"user_add_org"}, Token: "s3cr", AESKey: testCallbackAESKey, URL: "https://x.example/cb"}, wantField: "token"},
		{name: "bad aes_key", token: testToken,
			cb: &Callback{Tags: []string{"user_add_org"}, Token: "s3cr3t-token", AESKey: "s3cr3t-aes-key", URL: "https://x.example/cb"}, wantField: "aes_key"},
		{name: "no access token", token: "", cb: testCallback(), wantField: "access_token"},
		{name: "bad callback reported before access token", token: "", cb: &Callback{}, wantField: "call_back_tag"},
	}
	for _, c := range calls {
		for _, tt := range tests {
			t.Run(c.name+"/"+tt.name, func(t *testing.T) {
				client, mux := setup(t)
				var hits atomic.Int32
				mux.HandleFunc("/", counted(&hits, `{"errcode":0}`))
				err := c.call(client, tt.token, tt.cb)
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
				if tt.cb != nil {
					for _, secret := range []string{"s3cr", tt.cb.AESKey} {
						if secret != "" && strings.Contains(err.Error(), secret) {
							t.Errorf("error %q leaks a secret", err)
						}
					}
				}
			})
		}
	}
}

func TestCallbackCalls_noToken(t *testing.T) {
	for _, tc := range callbackCalls {
		t.Run(tc.name, func(t *testing.T) {
			client, mux := setup(t)
			var hits atomic.Int32
			mux.HandleFunc("/", counted(&hits, `{"errcode":0}`))
			err := tc.call(client, context.Background(), "")
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error: got %v (%T), want *ValidationError", err, err)
			}
			if got, want := ve.Field, "access_token"; got != want {
				t.Errorf("Field: got %q, want %q", got, want)
			}
			if got, want := hits.Load(), int32(0); got != want {
				t.Errorf("calls reaching the server: got %d, want %d", got, want)
			}
		})
	}
}

func TestCallbackCalls_errors(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantCode  int
		wantClass Class // 0: not checked
	}{
		{name: "71006 URL exists", body: `{"errcode":71006,"errmsg":"回调地址已存在"}`, wantCode: 71006},
		{name: "71007 URL gone", body: `{"errcode":71007,"errmsg":"回调地址已不存在"}`, wantCode: 71007},
		{name: "71008 bad tag", body: `{"errcode":71008,"errmsg":"不合法的回调事件"}`, wantCode: 71008},
		{name: "71009 not success", body: `{"errcode":71009,"errmsg":"返回文本非success"}`, wantCode: 71009},
		{name: "71012 unreachable", body: `{"errcode":71012,"errmsg":"url地址访问异常"}`, wantCode: 71012},
		{name: "40014 bad token", body: `{"errcode":40014,"errmsg":"不合法的access_token"}`, wantCode: 40014, wantClass: ClassTokenInvalid},
		{name: "-1 busy", body: `{"errcode":-1,"errmsg":"系统繁忙"}`, wantCode: -1, wantClass: ClassTransient},
		{name: "90018 throttled", body: `{"errcode":90018,"errmsg":"too many"}`, wantCode: 90018, wantClass: ClassThrottled},
	}
	for _, tc := range callbackCalls {
		for _, tt := range tests {
			t.Run(tc.name+"/"+tt.name, func(t *testing.T) {
				client, mux := setup(t)
				mux.HandleFunc(tc.path, func(w http.ResponseWriter, r *http.Request) {
					fmt.Fprint(w, tt.body)
				})
				err := tc.call(client, context.Background(), testToken)
				var de *Error
				if !errors.As(err, &de) {
					t.Fatalf("error: got %v (%T), want *Error", err, err)
				}
				if got, want := de.Code, tt.wantCode; got != want {
					t.Errorf("Code: got %d, want %d", got, want)
				}
				if got, want := de.Path, tc.path; got != want {
					t.Errorf("Path: got %q, want %q", got, want)
				}
				if tt.wantClass != 0 {
					if got, want := Classify(err), tt.wantClass; got != want {
						t.Errorf("Classify: got %v, want %v", got, want)
					}
				}
				for _, secret := range []string{testToken, testCallbackAESKey} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error %q leaks a secret", err)
					}
				}
			})
		}
	}
}
