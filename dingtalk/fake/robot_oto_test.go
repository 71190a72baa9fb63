package fake_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/dingtalk/fake"
)

// appOto has a robot code of its own; every other app's robot code is its
// key.
var (
	appOto  = fake.App{Key: "dingkeyOto", Secret: "secret-oto-51c0", RobotCode: "dingrobotOto"}
	credOto = dingtalk.Credentials{AppKey: appOto.Key, AppSecret: appOto.Secret}
)

// otoSetup is setup with appOto known too, and a client whose new-host
// calls go to the fake as well, on the fake's clock.
func otoSetup(t *testing.T, opts *fake.Options) *env {
	t.Helper()
	e := setup(t, opts)
	e.fake.AddApp(appOto)
	c, err := dingtalk.NewClient(dingtalk.WithBaseURL(e.url), dingtalk.WithAPIBaseURL(e.url), dingtalk.WithClock(e.clock.Now))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	e.client = c
	return e
}

// tokenV1 fetches cred's token from the new host's endpoint.
func (e *env) tokenV1(t *testing.T, cred dingtalk.Credentials) string {
	t.Helper()
	tok, err := e.client.GetAccessTokenV1(context.Background(), cred)
	if err != nil {
		t.Fatalf("GetAccessTokenV1(%s): %v", cred, err)
	}
	return tok.AccessToken
}

// batch sends text to users through app's robot (its key as robot code).
func (e *env) batch(tok string, robotCode, text string, users ...string) (*dingtalk.RobotBatchResult, error) {
	return e.client.RobotBatchSend(context.Background(), tok, &dingtalk.RobotBatchRequest{
		RobotCode: robotCode, UserIDs: users, Msg: dingtalk.RobotTextTemplate(text)})
}

// v1Answer is any answer of the new host, decoded.
type v1Answer struct {
	Code            string   `json:"code"`
	Message         string   `json:"message"`
	RequestID       string   `json:"requestid"`
	AccessToken     string   `json:"accessToken"`
	ExpireIn        int64    `json:"expireIn"`
	ProcessQueryKey string   `json:"processQueryKey"`
	Invalid         []string `json:"invalidStaffIdList"`
	FlowControlled  []string `json:"flowControlledStaffIdList"`
}

// rawV1 calls the fake's new host without the client: the token, if any,
// in the header. It returns the HTTP status, the answer decoded and its
// text.
func (e *env) rawV1(t *testing.T, method, path, tok, body string) (int, v1Answer, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("x-acs-dingtalk-access-token", tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading answer: %v", err)
	}
	var a v1Answer
	_ = json.Unmarshal(b, &a)
	return resp.StatusCode, a, string(b)
}

// batchBody is a batch send's body as DingTalk takes it.
func batchBody(robotCode string, users []string, msgKey, msgParam string) string {
	b, _ := json.Marshal(map[string]any{"robotCode": robotCode, "userIds": users, "msgKey": msgKey, "msgParam": msgParam})
	return string(b)
}

func TestAccessTokenV1(t *testing.T) {
	e := otoSetup(t, nil)
	legacy := e.token(t, credA)
	tok, err := e.client.GetAccessTokenV1(context.Background(), credA)
	if err != nil {
		t.Fatalf("GetAccessTokenV1: %v", err)
	}
	if tok.AccessToken != legacy || tok.ExpiresIn != 7200*time.Second {
		t.Errorf("v1 token %v (same as gettoken's: %t), want gettoken's token for 2h", tok, tok.AccessToken == legacy)
	}

	// Asked again an hour later: the same token, extended by 7200 s.
	e.clock.Advance(time.Hour)
	status, a, text := e.rawV1(t, http.MethodPost, dingtalk.PathAccessTokenV1, "",
		`{"appKey":"`+appA.Key+`","appSecret":"`+appA.Secret+`"}`)
	if status != 200 || a.AccessToken != legacy || a.ExpireIn != 7200 || a.Code != "" || strings.Contains(text, "errcode") {
		t.Errorf("second fetch: HTTP %d %s, want 200 with the same accessToken, expireIn 7200 and no errcode", status, text)
	}
	if got := e.token(t, credA); got != legacy {
		t.Errorf("gettoken after the v1 fetch gave another token")
	}
	if got := e.fake.TokenFetches(appA.Key); got != 4 {
		t.Errorf("TokenFetches = %d, want 4: the v1 endpoint counts as a fetch", got)
	}
	if got := e.fake.Stats().TokenFetches[appA.Key]; got != 4 {
		t.Errorf("Stats().TokenFetches[A] = %d, want 4", got)
	}
	c := e.fake.Calls()[1]
	if c.Method != http.MethodPost || c.Path != dingtalk.PathAccessTokenV1 || c.App != appA.Key || c.Status != 0 || c.Code != "" ||
		strings.Contains(string(c.Body), appA.Secret) || !strings.Contains(string(c.Body), `"appSecret":"***"`) {
		t.Errorf("call = %+v %s, want POST %s of %q, ok, the secret hidden", c, c.Body, dingtalk.PathAccessTokenV1, appA.Key)
	}
}

func TestAccessTokenV1Errors(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		body       string
		wantStatus int
		wantCode   string
		wantMsg    string // in message
		wantApp    string // the fetch counted for it
	}{
		{name: "wrong secret", body: `{"appKey":"dingkeyA","appSecret":"old-secret-A"}`,
			wantStatus: 400, wantCode: "invalidClientIdOrSecret", wantMsg: "无效的clientId或者clientSecret", wantApp: appA.Key},
		{name: "another app's secret", body: `{"appKey":"dingkeyA","appSecret":"` + appB.Secret + `"}`,
			wantStatus: 400, wantCode: "invalidClientIdOrSecret", wantApp: appA.Key},
		{name: "unknown key", body: `{"appKey":"nokey","appSecret":"old-secret-A"}`,
			wantStatus: 400, wantCode: "invalidClientIdOrSecret", wantApp: "nokey"},
		{name: "corp id as key", body: `{"appKey":"` + appCorp.CorpID + `","appSecret":"` + appCorp.CorpSecret + `"}`,
			wantStatus: 400, wantCode: "invalidClientIdOrSecret", wantApp: appCorp.CorpID},
		{name: "no appKey", body: `{"appSecret":"old-secret-A"}`, wantStatus: 400, wantCode: "MissingParameter", wantMsg: "appKey"},
		{name: "no appSecret", body: `{"appKey":"dingkeyA"}`, wantStatus: 400, wantCode: "MissingParameter", wantMsg: "appSecret", wantApp: appA.Key},
		{name: "not JSON", body: `{"appKey":"dingkeyA","appSecret":`, wantStatus: 400, wantCode: "InvalidParameter"},
		{name: "empty body", body: ``, wantStatus: 400, wantCode: "InvalidParameter"},
		{name: "GET", method: http.MethodGet, wantStatus: 404, wantCode: "InvalidAction.NotFound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := otoSetup(t, nil)
			status, a, text := e.rawV1(t, cmp.Or(tt.method, http.MethodPost), dingtalk.PathAccessTokenV1, "", tt.body)
			if status != tt.wantStatus || a.Code != tt.wantCode || !strings.Contains(a.Message, tt.wantMsg) ||
				a.RequestID == "" || a.AccessToken != "" {
				t.Errorf("got HTTP %d %s, want %d %s %q… with a requestid", status, text, tt.wantStatus, tt.wantCode, tt.wantMsg)
			}
			if strings.Contains(text, "old-secret-A") || strings.Contains(text, "secret-") {
				t.Errorf("answer %s shows a secret", text)
			}
			c := e.lastCall(t)
			if c.Status != tt.wantStatus || c.Code != tt.wantCode || c.App != tt.wantApp || strings.Contains(string(c.Body), "old-secret-A") {
				t.Errorf("call = %+v %s, want HTTP %d %s app %q, no secret", c, c.Body, tt.wantStatus, tt.wantCode, tt.wantApp)
			}
			if tt.wantApp != "" && e.fake.TokenFetches(tt.wantApp) != 1 {
				t.Errorf("TokenFetches(%q) = %d, want 1", tt.wantApp, e.fake.TokenFetches(tt.wantApp))
			}
		})
	}

	t.Run("client", func(t *testing.T) {
		e := otoSetup(t, nil)
		_, err := e.client.GetAccessTokenV1(context.Background(), dingtalk.Credentials{AppKey: appA.Key, AppSecret: "old-secret-A"})
		de := asError(t, err)
		if !de.BadCredentials() || !de.NeedsOperator() || de.HTTPStatus != 400 || de.ErrorCode != "invalidClientIdOrSecret" {
			t.Errorf("got %v (BadCredentials %t), want HTTP 400 invalidClientIdOrSecret, bad credentials", err, de.BadCredentials())
		}
		if got := dingtalk.Classify(err); got != dingtalk.ClassPermanent {
			t.Errorf("Classify = %s, want permanent: never loop on bad credentials", got)
		}
		if strings.Contains(err.Error(), "old-secret-A") {
			t.Errorf("error %q shows the secret", err)
		}
	})
}

// TestAccessTokenV1Exempt: like gettoken, the new host's token endpoint is
// not counted by CallsPerSecond, and a faulted call still counts as a
// fetch.
func TestAccessTokenV1Exempt(t *testing.T) {
	e := otoSetup(t, &fake.Options{Limits: &fake.Limits{CallsPerSecond: 1}})
	for i := range 5 {
		if _, err := e.client.GetAccessTokenV1(context.Background(), credA); err != nil {
			t.Fatalf("fetch %d in one instant: %v", i+1, err)
		}
	}
	e.addFault(t, fake.Fault{Path: dingtalk.PathAccessTokenV1, Status: http.StatusBadGateway, Times: 1})
	if _, err := e.client.GetAccessTokenV1(context.Background(), credA); dingtalk.Classify(err) != dingtalk.ClassTransient {
		t.Fatalf("faulted fetch: %v, want transient", err)
	}
	if got := e.fake.TokenFetches(appA.Key); got != 6 {
		t.Errorf("TokenFetches = %d, want 6, the faulted one included", got)
	}
	if c := e.lastCall(t); c.App != appA.Key || c.Status != 502 || strings.Contains(string(c.Body), appA.Secret) {
		t.Errorf("faulted call = %+v %s, want app %q, HTTP 502, no secret", c, c.Body, appA.Key)
	}
}

func TestRobotBatchSend(t *testing.T) {
	e := otoSetup(t, nil)
	tok := e.tokenV1(t, credA)
	users := userIDs("u", dingtalk.MaxRobotBatchUsers)
	res, err := e.batch(tok, appA.Key, "<b>hi</b> & bye", users...)
	if err != nil {
		t.Fatalf("RobotBatchSend to %d users: %v", len(users), err)
	}
	if res.ProcessQueryKey == "" || res.InvalidStaffIDs == nil || len(res.InvalidStaffIDs) != 0 ||
		res.FlowControlledStaffIDs == nil || len(res.FlowControlledStaffIDs) != 0 {
		t.Errorf("result = %+v, want a processQueryKey and both lists present and empty", res)
	}
	batches := e.fake.RobotBatches()
	if len(batches) != 1 {
		t.Fatalf("%d batches recorded, want 1", len(batches))
	}
	b := batches[0]
	if b.App != appA.Key || b.RobotCode != appA.Key || b.MsgKey != "sampleText" || b.MsgParam != `{"content":"<b>hi</b> & bye"}` ||
		!slices.Equal(b.Delivered, users) || len(b.Invalid)+len(b.FlowControlled) != 0 ||
		b.ProcessQueryKey != res.ProcessQueryKey || !b.Time.Equal(e.clock.Now()) {
		t.Errorf("batch = %+v, want the 20 users delivered, msgParam as sent", b)
	}
	c := e.lastCall(t)
	if c.Path != dingtalk.PathRobotBatchSend || c.App != appA.Key || c.Status != 0 || c.Code != "" || strings.Contains(string(c.Body), tok) {
		t.Errorf("call = %+v, want the batch send of %q, ok, no token", c, appA.Key)
	}

	// A second send: a new processQueryKey.
	res2, err := e.batch(tok, appA.Key, "again", "u1")
	if err != nil || res2.ProcessQueryKey == res.ProcessQueryKey {
		t.Errorf("second send: %+v, %v; want a new processQueryKey", res2, err)
	}

	// 21 users: the client refuses before any call.
	calls := len(e.fake.Calls())
	_, err = e.batch(tok, appA.Key, "too many", userIDs("u", dingtalk.MaxRobotBatchUsers+1)...)
	var ve *dingtalk.ValidationError
	if !errors.As(err, &ve) || ve.Field != "userIds" || dingtalk.Classify(err) != dingtalk.ClassPermanent {
		t.Errorf("21 users: %v, want a ValidationError naming userIds", err)
	}
	if got := len(e.fake.Calls()); got != calls {
		t.Errorf("21 users: %d calls made, want none", got-calls)
	}
	// And the fake refuses them if sent anyway.
	status, a, text := e.rawV1(t, http.MethodPost, dingtalk.PathRobotBatchSend, tok,
		batchBody(appA.Key, userIDs("u", 21), "sampleText", `{"content":"x"}`))
	if status != 400 || a.Code != "InvalidParameter.UserIds" || !strings.Contains(a.Message, "21") {
		t.Errorf("21 users sent raw: HTTP %d %s, want 400 InvalidParameter.UserIds", status, text)
	}

	// The app's own robot code, when set, is the one to name.
	tokOto := e.tokenV1(t, credOto)
	if _, err := e.batch(tokOto, appOto.RobotCode, "hi", "u1"); err != nil {
		t.Errorf("send with appOto's robot code: %v", err)
	}
	if got := len(e.fake.RobotBatches()); got != 3 {
		t.Errorf("%d batches recorded, want 3", got)
	}
}

func TestRobotBatchSendRefused(t *testing.T) {
	text := `{"content":"x"}`
	tests := []struct {
		name     string
		tok      string // "A": appA's token, "legacy": none in the header, appA's in the query
		robot    string
		users    []string
		msgKey   string
		param    string
		body     string // if set, in place of the others
		wantCode string
		wantMsg  string // in message
	}{
		{name: "no token", robot: appA.Key, users: []string{"u1"}, msgKey: "sampleText", param: text,
			wantCode: "InvalidAuthentication", wantMsg: "不合法的access_token"},
		{name: "token in the query", tok: "legacy", robot: appA.Key, users: []string{"u1"}, msgKey: "sampleText", param: text,
			wantCode: "InvalidAuthentication"},
		{name: "unknown token", tok: "0123456789abcdef0123456789abcdef", robot: appA.Key, users: []string{"u1"}, msgKey: "sampleText",
			param: text, wantCode: "InvalidAuthentication"},
		{name: "not JSON", tok: "A", body: `{"robotCode":`, wantCode: "InvalidParameter"},
		{name: "empty body", tok: "A", body: ` `, wantCode: "InvalidParameter"},
		{name: "userIds not a list", tok: "A", body: `{"robotCode":"dingkeyA","userIds":"u1,u2","msgKey":"sampleText","msgParam":"{}"}`,
			wantCode: "InvalidParameter"},
		{name: "no robotCode", tok: "A", users: []string{"u1"}, msgKey: "sampleText", param: text,
			wantCode: "InvalidParameter.RobotCode", wantMsg: "robotCode"},
		{name: "another app's robot code", tok: "A", robot: appB.Key, users: []string{"u1"}, msgKey: "sampleText", param: text,
			wantCode: "InvalidParameter.RobotCode", wantMsg: appB.Key},
		{name: "no userIds", tok: "A", robot: appA.Key, msgKey: "sampleText", param: text,
			wantCode: "InvalidParameter.UserIds", wantMsg: "userIds"},
		{name: "empty user id", tok: "A", robot: appA.Key, users: []string{"u1", " "}, msgKey: "sampleText", param: text,
			wantCode: "InvalidParameter.UserIds", wantMsg: "userIds[1]"},
		{name: "no msgKey", tok: "A", robot: appA.Key, users: []string{"u1"}, param: text,
			wantCode: "InvalidParameter.MsgKey", wantMsg: "msgKey: required"},
		{name: "unknown msgKey", tok: "A", robot: appA.Key, users: []string{"u1"}, msgKey: "sampleTxt", param: text,
			wantCode: "InvalidParameter.MsgKey", wantMsg: `"sampleTxt"`},
		{name: "no msgParam", tok: "A", robot: appA.Key, body: `{"robotCode":"dingkeyA","userIds":["u1"],"msgKey":"sampleText"}`,
			wantCode: "InvalidParameter.MsgParam", wantMsg: "msgParam: required"},
		{name: "msgParam null", tok: "A", body: `{"robotCode":"dingkeyA","userIds":["u1"],"msgKey":"sampleText","msgParam":null}`,
			wantCode: "InvalidParameter.MsgParam", wantMsg: "msgParam: required"},
		{name: "msgParam an object", tok: "A", body: `{"robotCode":"dingkeyA","userIds":["u1"],"msgKey":"sampleText","msgParam":{"content":"x"}}`,
			wantCode: "InvalidParameter.MsgParam", wantMsg: "JSON string, got an object"},
		{name: "msgParam not an object inside", tok: "A", robot: appA.Key, users: []string{"u1"}, msgKey: "sampleText", param: `hello`,
			wantCode: "InvalidParameter.MsgParam", wantMsg: "want a JSON object"},
		{name: "a required parameter missing", tok: "A", robot: appA.Key, users: []string{"u1"}, msgKey: "sampleText", param: `{"text":"x"}`,
			wantCode: "InvalidParameter.MsgParam", wantMsg: "msgParam.content: required by msgKey sampleText"},
		{name: "a required parameter empty", tok: "A", robot: appA.Key, users: []string{"u1"}, msgKey: "sampleMarkdown", param: `{"title":"t","text":""}`,
			wantCode: "InvalidParameter.MsgParam", wantMsg: "msgParam.text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := otoSetup(t, nil)
			tokA := e.tokenV1(t, credA)
			body := tt.body
			if body == "" {
				body = batchBody(tt.robot, tt.users, tt.msgKey, tt.param)
			}
			tok, path := tt.tok, dingtalk.PathRobotBatchSend
			switch tok {
			case "A":
				tok = tokA
			case "legacy":
				tok, path = "", path+"?access_token="+tokA
			}
			status, a, text := e.rawV1(t, http.MethodPost, path, tok, body)
			if status != 400 || a.Code != tt.wantCode || !strings.Contains(a.Message, tt.wantMsg) || a.RequestID == "" ||
				a.ProcessQueryKey != "" || strings.Contains(text, "errcode") {
				t.Errorf("got HTTP %d %s, want 400 %s %q… with a requestid", status, text, tt.wantCode, tt.wantMsg)
			}
			if n := len(e.fake.RobotBatches()); n != 0 {
				t.Errorf("%d batches recorded, want none", n)
			}
			c := e.lastCall(t)
			if c.Path != dingtalk.PathRobotBatchSend || c.Status != 400 || c.Code != tt.wantCode || strings.Contains(string(c.Body), tokA) {
				t.Errorf("call = %+v, want the batch send at HTTP 400 %s, no token", c, tt.wantCode)
			}
			if wantApp := map[bool]string{true: appA.Key}[tt.tok == "A"]; c.App != wantApp {
				t.Errorf("call app = %q, want %q (the header token's)", c.App, wantApp)
			}
		})
	}
}

func TestRobotBatchSendTokenInvalid(t *testing.T) {
	tests := []struct {
		name string
		tok  func(t *testing.T, e *env) string
	}{
		{name: "unknown", tok: func(*testing.T, *env) string { return "not-a-token-0123456789" }},
		{name: "expired", tok: func(t *testing.T, e *env) string {
			tok := e.tokenV1(t, credA)
			e.clock.Advance(7200 * time.Second)
			return tok
		}},
		{name: "revoked", tok: func(t *testing.T, e *env) string {
			tok := e.tokenV1(t, credA)
			e.fake.Revoke(appA.Key)
			return tok
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := otoSetup(t, nil)
			tok := tt.tok(t, e)
			_, err := e.batch(tok, appA.Key, "hi", "u1")
			de := asError(t, err)
			if !de.TokenInvalid() || de.HTTPStatus != 400 || de.ErrorCode != "InvalidAuthentication" || de.RequestID == "" {
				t.Errorf("got %v, want HTTP 400 InvalidAuthentication, token invalid", err)
			}
			if got := dingtalk.Classify(err); got != dingtalk.ClassTokenInvalid {
				t.Errorf("Classify = %s, want token_invalid", got)
			}
			if strings.Contains(err.Error(), tok) {
				t.Errorf("error %q shows the token", err)
			}
			// A new token, from either endpoint, works.
			if _, err := e.batch(e.token(t, credA), appA.Key, "hi", "u1"); err != nil {
				t.Errorf("send with a fresh gettoken token: %v", err)
			}
		})
	}
}

func TestRobotBatchSendInvalidUsers(t *testing.T) {
	results := fake.Results{Invalid: 0.3}
	e := otoSetup(t, &fake.Options{Results: &results})
	users := userIDs("staff", dingtalk.MaxRobotBatchUsers)
	var wantInvalid, wantDelivered []string
	for _, u := range users {
		if results.Fate(u) == fake.FateInvalid {
			wantInvalid = append(wantInvalid, u)
		} else {
			wantDelivered = append(wantDelivered, u)
		}
	}
	if len(wantInvalid) == 0 || len(wantDelivered) == 0 {
		t.Fatalf("the hash made %d of 20 users invalid: pick other ids", len(wantInvalid))
	}
	res, err := e.batch(e.tokenV1(t, credA), appA.Key, "hi", users...)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.InvalidStaffIDs, wantInvalid) || len(res.FlowControlledStaffIDs) != 0 {
		t.Errorf("result = %+v, want invalid %v", res, wantInvalid)
	}
	if b := e.fake.RobotBatches()[0]; !slices.Equal(b.Delivered, wantDelivered) || !slices.Equal(b.Invalid, wantInvalid) {
		t.Errorf("batch = %+v, want delivered %v and invalid %v", b, wantDelivered, wantInvalid)
	}

	// Results set at run time apply to the next send.
	if err := e.fake.SetResults(fake.Results{}); err != nil {
		t.Fatal(err)
	}
	if res, err := e.batch(e.tokenV1(t, credA), appA.Key, "hi", users...); err != nil || len(res.InvalidStaffIDs) != 0 {
		t.Errorf("with the zero Results: %+v, %v; want nobody invalid", res, err)
	}
}

func TestRobotBatchSendFlowControl(t *testing.T) {
	e := otoSetup(t, &fake.Options{RobotUserLimit: 2, RobotWindow: time.Minute})
	tokA, tokOto := e.tokenV1(t, credA), e.tokenV1(t, credOto)
	send := func(t *testing.T, tok, robot string, users ...string) *dingtalk.RobotBatchResult {
		t.Helper()
		res, err := e.batch(tok, robot, "hi", users...)
		if err != nil {
			t.Fatalf("send to %v: %v", users, err)
		}
		return res
	}
	steps := []struct {
		name      string
		advance   time.Duration // before the send
		tok       string
		robot     string
		users     []string
		wantFlow  []string
		delivered []string
	}{
		{name: "first", tok: tokA, robot: appA.Key, users: []string{"u1", "u2"}, wantFlow: []string{}, delivered: []string{"u1", "u2"}},
		{name: "second, 30s later", advance: 30 * time.Second, tok: tokA, robot: appA.Key, users: []string{"u1"},
			wantFlow: []string{}, delivered: []string{"u1"}},
		{name: "third to u1 in the window", tok: tokA, robot: appA.Key, users: []string{"u1", "u2", "u3"},
			wantFlow: []string{"u1"}, delivered: []string{"u2", "u3"}},
		{name: "another robot's count is its own", tok: tokOto, robot: appOto.RobotCode, users: []string{"u1"},
			wantFlow: []string{}, delivered: []string{"u1"}},
		{name: "u2 now full too", tok: tokA, robot: appA.Key, users: []string{"u2", "u1"}, wantFlow: []string{"u2", "u1"}, delivered: []string{}},
		{name: "a window after the first, u1 has room for one", advance: 30 * time.Second, tok: tokA, robot: appA.Key,
			users: []string{"u1", "u2", "u3"}, wantFlow: []string{}, delivered: []string{"u1", "u2", "u3"}},
		{name: "and then not", tok: tokA, robot: appA.Key, users: []string{"u1"}, wantFlow: []string{"u1"}, delivered: []string{}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			e.clock.Advance(st.advance)
			res := send(t, st.tok, st.robot, st.users...)
			if !slices.Equal(res.FlowControlledStaffIDs, st.wantFlow) || len(res.InvalidStaffIDs) != 0 {
				t.Errorf("result = %+v, want flow controlled %v", res, st.wantFlow)
			}
			bs := e.fake.RobotBatches()
			if b := bs[len(bs)-1]; !slices.Equal(b.Delivered, st.delivered) || !slices.Equal(b.FlowControlled, st.wantFlow) {
				t.Errorf("batch = %+v, want delivered %v", b, st.delivered)
			}
		})
	}

	e.fake.Reset()
	if len(e.fake.RobotBatches()) != 0 {
		t.Error("Reset kept the batches")
	}
	if res := send(t, e.tokenV1(t, credA), appA.Key, "u1"); len(res.FlowControlledStaffIDs) != 0 {
		t.Errorf("after Reset: %+v, want u1 delivered: Reset forgets the windows", res)
	}
}

func TestRobotBatchSendNoFlowControl(t *testing.T) {
	e := otoSetup(t, nil)
	tok := e.tokenV1(t, credA)
	for i := range 50 {
		res, err := e.batch(tok, appA.Key, fmt.Sprint("hi ", i), "u1")
		if err != nil || len(res.FlowControlledStaffIDs) != 0 {
			t.Fatalf("send %d: %+v, %v; want delivered: no RobotUserLimit, no flow control", i+1, res, err)
		}
	}
}

func TestRobotBatchSendThrottled(t *testing.T) {
	e := otoSetup(t, &fake.Options{Limits: &fake.Limits{CallsPerSecond: 2}})
	tokA := e.tokenV1(t, credA)
	for i := range 2 {
		if _, err := e.batch(tokA, appA.Key, "hi", "u1"); err != nil {
			t.Fatalf("send %d: %v", i+1, err)
		}
	}
	_, err := e.batch(tokA, appA.Key, "hi", "u1")
	de := asError(t, err)
	if de.HTTPStatus != 403 || de.ErrorCode != "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi" || de.Code != 0 || de.RequestID == "" {
		t.Errorf("third send in a second: %v, want HTTP 403 Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", err)
	}
	if got := dingtalk.Classify(err); got != dingtalk.ClassThrottled {
		t.Errorf("Classify = %s, want throttled", got)
	}
	if got, ok := dingtalk.RetryAfter(err); got != time.Second || !ok {
		t.Errorf("RetryAfter = %s, %t; want 1s", got, ok)
	}
	if c := e.lastCall(t); c.Limit != "calls_per_second" || c.Status != 403 || c.Code != de.ErrorCode || c.App != appA.Key {
		t.Errorf("call = %+v, want limit calls_per_second at HTTP 403, app %q", c, appA.Key)
	}
	// Per app: appOto's robot goes on; the token endpoint is exempt.
	if _, err := e.batch(e.tokenV1(t, credOto), appOto.RobotCode, "hi", "u1"); err != nil {
		t.Errorf("another app's send: %v", err)
	}
	if st := e.fake.Stats(); st.Throttled != 1 || len(e.fake.RobotBatches()) != 3 {
		t.Errorf("throttled %d, %d batches; want 1 and 3", st.Throttled, len(e.fake.RobotBatches()))
	}
	e.clock.Advance(time.Second)
	if _, err := e.batch(tokA, appA.Key, "hi", "u1"); err != nil {
		t.Errorf("a second later: %v", err)
	}
}

func TestV1UnknownPathAndBigBody(t *testing.T) {
	e := otoSetup(t, nil)
	tok := e.tokenV1(t, credA)
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		wantCode   string
	}{
		{name: "unknown path", method: http.MethodPost, path: "/v1.0/robot/nosuch", body: "{}", wantStatus: 404, wantCode: "InvalidAction.NotFound"},
		{name: "GET on batchSend", method: http.MethodGet, path: dingtalk.PathRobotBatchSend, wantStatus: 404, wantCode: "InvalidAction.NotFound"},
		{name: "body over 1 MiB", method: http.MethodPost, path: dingtalk.PathRobotBatchSend,
			body: `{"msgKey":"` + strings.Repeat("x", fake.MaxBodyBytes) + `"}`, wantStatus: 400, wantCode: "InvalidParameter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, a, text := e.rawV1(t, tt.method, tt.path, tok, tt.body)
			if status != tt.wantStatus || a.Code != tt.wantCode || a.RequestID == "" {
				t.Errorf("got HTTP %d %.200s, want %d %s", status, text, tt.wantStatus, tt.wantCode)
			}
			if c := e.lastCall(t); c.Path != tt.path || c.Status != tt.wantStatus || c.Code != tt.wantCode || c.App != appA.Key {
				t.Errorf("call = %+v, want %s at HTTP %d %s", c.Path, tt.path, tt.wantStatus, tt.wantCode)
			}
		})
	}
}

func TestAdminRobots(t *testing.T) {
	second := dingtalk.Robot{Token: "robot-alerts-token-2", Secret: "SECrobot-alerts-secret-2"}
	e := otoSetup(t, &fake.Options{Robots: []dingtalk.Robot{signing, second}})
	ctx := context.Background()
	get := func(t *testing.T) (fake.RobotRecords, string) {
		t.Helper()
		status, _, text := e.raw(t, http.MethodGet, fake.PathAdminRobots, "")
		var rec fake.RobotRecords
		if err := json.Unmarshal([]byte(text), &rec); err != nil || status != 200 {
			t.Fatalf("GET %s: HTTP %d %s", fake.PathAdminRobots, status, text)
		}
		return rec, text
	}
	if _, text := get(t); strings.TrimSpace(text) != `{"sent":[],"batches":[]}` {
		t.Errorf("before any message: %s, want both lists empty", text)
	}

	tok := e.tokenV1(t, credA)
	if err := e.client.SendRobot(ctx, signing, dingtalk.RobotTextMessage("one")); err != nil {
		t.Fatal(err)
	}
	// A careless caller puts secrets in the messages themselves.
	if err := e.client.SendRobot(ctx, second, dingtalk.RobotTextMessage("token "+signing.Token+" secret "+second.Secret)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.batch(tok, appA.Key, "token "+tok+" secret "+appA.Secret, "u1", "u2"); err != nil {
		t.Fatal(err)
	}

	rec, text := get(t)
	for _, secret := range []string{signing.Token, signing.Secret, second.Token, second.Secret, tok, appA.Secret} {
		if strings.Contains(text, secret) {
			t.Errorf("GET %s shows secret or token %q: %s", fake.PathAdminRobots, secret, text)
		}
	}
	if len(rec.Sent) != 2 || len(rec.Batches) != 1 {
		t.Fatalf("got %s, want 2 messages and 1 batch", text)
	}
	if id := fake.RobotID(signing.Token); rec.Sent[0].RobotID != id || len(id) != 8 || rec.Sent[0].Message.Text.Content != "one" {
		t.Errorf("sent[0] = %+v, want the first message through robot %s", rec.Sent[0], id)
	}
	if rec.Sent[1].RobotID != fake.RobotID(second.Token) || rec.Sent[1].RobotID == rec.Sent[0].RobotID ||
		rec.Sent[1].Message.Text.Content != "token *** secret ***" {
		t.Errorf("sent[1] = %+v (%+v), want the second robot's message, secrets hidden", rec.Sent[1], rec.Sent[1].Message.Text)
	}
	if b := rec.Batches[0]; b.App != appA.Key || b.RobotCode != appA.Key || b.MsgParam != `{"content":"token *** secret ***"}` ||
		!slices.Equal(b.Delivered, []string{"u1", "u2"}) || b.Invalid == nil || b.FlowControlled == nil {
		t.Errorf("batch = %+v, want appA's to u1 and u2, secrets hidden", b)
	}
	for _, field := range []string{`"robot_code":`, `"msg_key":`, `"msg_param":`, `"delivered":`, `"invalid":[]`, `"flow_controlled":[]`, `"process_query_key":`} {
		if !strings.Contains(text, field) {
			t.Errorf("GET %s: %s, want %s", fake.PathAdminRobots, text, field)
		}
	}
	// The Go API keeps what DingTalk received.
	if got := e.fake.RobotSent()[1]; got.Robot != second.Token || !strings.Contains(got.Message.Text.Content, second.Secret) {
		t.Errorf("RobotSent()[1] = %+v, want it exact", got)
	}

	if status, _, _ := e.raw(t, http.MethodPost, fake.PathAdminRobots, ""); status != http.StatusMethodNotAllowed {
		t.Errorf("POST %s: HTTP %d, want 405", fake.PathAdminRobots, status)
	}
	e.fake.Reset()
	if _, text := get(t); strings.TrimSpace(text) != `{"sent":[],"batches":[]}` {
		t.Errorf("after Reset: %s, want both lists empty", text)
	}
}

// TestRobotWindowOptions: RobotWindow and RobotBlock shorten a custom
// robot's minute and its block.
func TestRobotWindowOptions(t *testing.T) {
	e := otoSetup(t, &fake.Options{Robots: []dingtalk.Robot{unsigning}, RobotWindow: 2 * time.Second, RobotBlock: 5 * time.Second})
	ctx := context.Background()
	send := func() error { return e.client.SendRobot(ctx, unsigning, dingtalk.RobotTextMessage("x")) }
	for round := range 2 {
		if round > 0 {
			e.clock.Advance(2 * time.Second) // the window is over
		}
		for i := range dingtalk.RobotMessagesPerMinute {
			if err := send(); err != nil {
				t.Fatalf("round %d, message %d: %v", round+1, i+1, err)
			}
		}
	}
	if err := send(); asError(t, err).Code != 410100 || dingtalk.Classify(err) != dingtalk.ClassThrottled {
		t.Fatalf("the 21st in the window: %v, want 410100, throttled", err)
	}
	e.clock.Advance(4 * time.Second) // the window is over, the block is not
	if err := send(); dingtalk.Classify(err) != dingtalk.ClassThrottled {
		t.Fatalf("4s into the block: %v, want throttled", err)
	}
	e.clock.Advance(time.Second)
	if err := send(); err != nil {
		t.Fatalf("after the 5s block: %v", err)
	}
	if got, want := len(e.fake.RobotSent()), 2*dingtalk.RobotMessagesPerMinute+1; got != want {
		t.Errorf("%d messages taken, want %d", got, want)
	}
}
