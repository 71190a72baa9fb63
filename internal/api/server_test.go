package api_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/dingq/dingq/internal/api"
	"github.com/dingq/dingq/producer"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

const testToken = "test-token-0123456789"

// testMaxIDs is the fixture's cap of ids in one message.
const testMaxIDs = 1000

// fixture is one API server on its own miniredis.
type fixture struct {
	mr   *miniredis.Miniredis
	rdb  *redis.Client
	insp *asynq.Inspector
	api  *api.Server
	srv  *httptest.Server
}

// setup starts the API with app "hr" and the test token.
func setup(t testing.TB) *fixture {
	t.Helper()
	return setupWith(t, producer.Config{Apps: []string{"hr"}, MaxRecipients: testMaxIDs},
		api.Config{Tokens: []string{testToken}, MaxRecipients: testMaxIDs})
}

// setupWith starts the API with pc and ac; their Redis and Producer are
// filled in.
func setupWith(t testing.TB, pc producer.Config, ac api.Config) *fixture {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	pc.Redis = rdb
	p, err := producer.New(pc)
	if err != nil {
		t.Fatalf("producer.New: %v", err)
	}
	ac.Producer = p
	h, err := api.New(ac)
	if err != nil {
		t.Fatalf("api.New: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &fixture{mr: mr, rdb: rdb, insp: asynq.NewInspectorFromRedisClient(rdb), api: h, srv: srv}
}

// tasks returns how many tasks wait in producer.QueueDefault, pending and
// scheduled.
func (f *fixture) tasks(t testing.TB) (pending, scheduled int) {
	t.Helper()
	pt, err := f.insp.ListPendingTasks(producer.QueueDefault, asynq.PageSize(1000))
	if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
		t.Fatalf("listing pending tasks: %v", err)
	}
	st, err := f.insp.ListScheduledTasks(producer.QueueDefault, asynq.PageSize(1000))
	if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
		t.Fatalf("listing scheduled tasks: %v", err)
	}
	return len(pt), len(st)
}

func (f *fixture) taskCount(t testing.TB) int {
	t.Helper()
	p, s := f.tasks(t)
	return p + s
}

// request sends method path with body; header values "" are left out.
func (f *fixture) request(t testing.TB, method, path, body string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	for k, v := range header {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading answer: %v", err)
	}
	return resp, b
}

func authJSON() map[string]string {
	return map[string]string{"Authorization": "Bearer " + testToken, "Content-Type": "application/json"}
}

func (f *fixture) post(t testing.TB, body string) (*http.Response, []byte) {
	t.Helper()
	return f.request(t, http.MethodPost, "/v1/messages", body, authJSON())
}

func (f *fixture) get(t testing.TB, path string) (*http.Response, []byte) {
	t.Helper()
	return f.request(t, http.MethodGet, path, "", map[string]string{"Authorization": "Bearer " + testToken})
}

// accepted checks a 202 answer and returns its id.
func accepted(t testing.TB, resp *http.Response, body []byte) string {
	t.Helper()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status: got %d, want %d (body %s)", resp.StatusCode, http.StatusAccepted, body)
	}
	var sr api.SendResponse
	if err := json.Unmarshal(body, &sr); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	if sr.Status != "queued" {
		t.Errorf("status field: got %q, want %q", sr.Status, "queued")
	}
	if sr.ID == "" {
		t.Errorf("id: got %q, want non-empty", sr.ID)
	}
	return sr.ID
}

// isJSON reports whether resp's Content-Type is application/json.
func isJSON(resp *http.Response) bool {
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// apiError checks that an error answer is JSON with a code and returns it.
func apiError(t testing.TB, resp *http.Response, body []byte) api.ErrorDetail {
	t.Helper()
	if !isJSON(resp) {
		t.Errorf("Content-Type: got %q, want application/json", resp.Header.Get("Content-Type"))
	}
	var eb api.ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil {
		t.Fatalf("decoding error answer %q: %v", body, err)
	}
	if eb.Error.Code == "" {
		t.Errorf("error.code: got %q, want non-empty (body %s)", eb.Error.Code, body)
	}
	return eb.Error
}

func messageBody(msg string) string {
	return `{"app":"hr","userid_list":["u1","u2"],"dept_id_list":["1"],"msg":` + msg + `}`
}

const textMsg = `{"msgtype":"text","text":{"content":"hello"}}`

func TestSendEachMessageType(t *testing.T) {
	tests := []struct {
		name string
		msg  string
	}{
		{name: "text", msg: textMsg},
		{name: "image", msg: `{"msgtype":"image","image":{"media_id":"@lADOADmaWMzazQKA"}}`},
		{name: "voice", msg: `{"msgtype":"voice","voice":{"media_id":"@lADOADmaWMzazQKA","duration":"10"}}`},
		{name: "file", msg: `{"msgtype":"file","file":{"media_id":"@lAjPDeC2uGvQ0O3OGjfK6s4F"}}`},
		{name: "link", msg: `{"msgtype":"link","link":{"messageUrl":"https://example.com/a?b=1&c=2","picUrl":"@lALOACZwe2Rk","title":"Title","text":"Body"}}`},
		{name: "oa", msg: `{"msgtype":"oa","oa":{"message_url":"https://example.com","head":{"bgcolor":"FFBBBBBB","text":"Head"},` +
			`"status_bar":{"status_value":"pending","status_bg":"0xFFF65E5E"},"body":{"title":"Leave","form":[{"key":"Name:","value":"Li"}],"rich":{"num":"3","unit":"days"},"content":"c","author":"Li"}}}`},
		{name: "markdown", msg: `{"msgtype":"markdown","markdown":{"title":"Title","text":"# Hi\n* one <b>&</b>"}}`},
		{name: "action_card single", msg: `{"msgtype":"action_card","action_card":{"title":"T","markdown":"**m**","single_title":"Open","single_url":"https://example.com"}}`},
		{name: "action_card buttons", msg: `{"msgtype":"action_card","action_card":{"title":"T","markdown":"m","btn_orientation":"1",` +
			`"btn_json_list":[{"title":"Yes","action_url":"https://example.com/y"},{"title":"No","action_url":"https://example.com/n"}]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			id := f.send(t, messageBody(tt.msg))

			pending, scheduled := f.tasks(t)
			if pending != 1 || scheduled != 0 {
				t.Errorf("tasks: got %d pending %d scheduled, want 1 pending 0 scheduled", pending, scheduled)
			}
			ti, err := f.insp.GetTaskInfo(producer.QueueDefault, id)
			if err != nil {
				t.Fatalf("task %s: %v", id, err)
			}
			if ti.Type != producer.TypeMessageSend {
				t.Errorf("task type: got %q, want %q", ti.Type, producer.TypeMessageSend)
			}
			p, err := producer.DecodeMessageSend(asynq.NewTask(ti.Type, ti.Payload))
			if err != nil {
				t.Fatalf("payload: %v", err)
			}
			if p.ID != id {
				t.Errorf("payload id: got %q, want %q", p.ID, id)
			}
			if got, want := string(p.Msg.MsgType), strings.SplitN(tt.name, " ", 2)[0]; got != want {
				t.Errorf("payload msgtype: got %q, want %q", got, want)
			}
			if p.Msg.Validate() != nil {
				t.Errorf("payload msg: got invalid (%v), want valid", p.Msg.Validate())
			}

			resp, body := f.get(t, "/v1/messages/"+id)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET status: got %d, want %d (body %s)", resp.StatusCode, http.StatusOK, body)
			}
			if !isJSON(resp) {
				t.Errorf("GET Content-Type: got %q, want application/json", resp.Header.Get("Content-Type"))
			}
			var o producer.Outcome
			if err := json.Unmarshal(body, &o); err != nil {
				t.Fatalf("decoding outcome %s: %v", body, err)
			}
			if o.ID != id {
				t.Errorf("outcome id: got %q, want %q", o.ID, id)
			}
			if o.Status != producer.StatusQueued {
				t.Errorf("outcome status: got %q, want %q", o.Status, producer.StatusQueued)
			}
			if o.App != "hr" {
				t.Errorf("outcome app: got %q, want %q", o.App, "hr")
			}
			if o.Recipients != 3 {
				t.Errorf("outcome recipients: got %d, want %d", o.Recipients, 3)
			}
		})
	}
}

func quoted(prefix string, n int) string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf(`"%s%d"`, prefix, i)
	}
	return "[" + strings.Join(s, ",") + "]"
}

func TestSendBadRequest(t *testing.T) {
	valid := messageBody(textMsg)
	tests := []struct {
		name        string
		contentType string
		body        string
		wantStatus  int
		wantCode    string
		wantField   string
		wantInMsg   string
	}{
		{name: "unknown msgtype", body: messageBody(`{"msgtype":"sms","text":{"content":"x"}}`),
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "msg.msgtype", wantInMsg: "sms"},
		{name: "missing msg", body: `{"app":"hr","userid_list":["u1"]}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "msg.msgtype"},
		{name: "over the max of dept ids", body: `{"app":"hr","dept_id_list":` + quoted("", testMaxIDs+1) + `,"msg":` + textMsg + `}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "dept_id_list", wantInMsg: "at most 1000"},
		{name: "over the max of user ids", body: `{"app":"hr","userid_list":` + quoted("u", testMaxIDs+1) + `,"msg":` + textMsg + `}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "userid_list", wantInMsg: "at most 1000"},
		{name: "over the max of users and depts together", body: `{"app":"hr","userid_list":` + quoted("u", 600) +
			`,"dept_id_list":` + quoted("", 401) + `,"msg":` + textMsg + `}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "dept_id_list"},
		{name: "user id not a string", body: `{"app":"hr","userid_list":["u1",2],"msg":` + textMsg + `}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "userid_list[1]"},
		{name: "userid_list an object", body: `{"app":"hr","userid_list":{"a":1},"msg":` + textMsg + `}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "userid_list"},
		{name: "userid_list given twice", body: `{"app":"hr","userid_list":["a"],"userid_list":["b"],"msg":` + textMsg + `}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "userid_list"},
		{name: "bad id in a broadcast", body: `{"app":"hr","userid_list":` + strings.Replace(quoted("u", 300), `"u250"`, `"u 250"`, 1) + `,"msg":` + textMsg + `}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "userid_list[250]"},
		{name: "to_all_user with a broadcast", body: `{"app":"hr","to_all_user":true,"userid_list":` + quoted("u", 101) + `,"msg":` + textMsg + `}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "to_all_user"},
		{name: "user id with comma", body: `{"app":"hr","userid_list":["u1,u2"],"msg":` + textMsg + `}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "userid_list[0]"},
		{name: "3 KB text", body: messageBody(`{"msgtype":"text","text":{"content":"` + strings.Repeat("x", 3000) + `"}}`),
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "msg.text"},
		{name: "missing text content", body: messageBody(`{"msgtype":"text","text":{}}`),
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "msg.text.content"},
		{name: "text object missing", body: messageBody(`{"msgtype":"text"}`),
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "msg.text"},
		{name: "link missing picUrl", body: messageBody(`{"msgtype":"link","link":{"messageUrl":"https://example.com","title":"T","text":"x"}}`),
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "msg.link.picUrl"},
		{name: "action_card with both button forms", body: messageBody(`{"msgtype":"action_card","action_card":{"title":"T","markdown":"m",` +
			`"single_title":"Open","single_url":"https://example.com","btn_orientation":"0","btn_json_list":[{"title":"Y","action_url":"https://example.com"}]}}`),
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "msg.action_card.single_title"},
		{name: "no recipients", body: `{"app":"hr","msg":` + textMsg + `}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "userid_list"},
		{name: "missing app", body: `{"userid_list":["u1"],"msg":` + textMsg + `}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "app"},
		{name: "unknown app", body: `{"app":"nope","userid_list":["u1"],"msg":` + textMsg + `}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "app", wantInMsg: `"nope"`},
		{name: "userid_list not an array", body: `{"app":"hr","userid_list":"u1","msg":` + textMsg + `}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "userid_list", wantInMsg: "array"},
		{name: "content not a string", body: messageBody(`{"msgtype":"text","text":{"content":5}}`),
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "msg.text.content"},
		{name: "unknown top-level field", body: `{"app":"hr","userid_list":["u1"],"extra":1,"msg":` + textMsg + `}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "extra"},
		{name: "malformed JSON", body: `{"app" "hr"}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument},
		{name: "cut short", body: `{"app":"hr",`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument},
		{name: "empty body", body: ``,
			wantStatus: 400, wantCode: api.CodeInvalidArgument},
		{name: "array instead of object", body: `[]`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument},
		{name: "trailing garbage", body: valid + ` x`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument},
		{name: "second object", body: valid + valid,
			wantStatus: 400, wantCode: api.CodeInvalidArgument},
		{name: "bad send_at", body: `{"app":"hr","userid_list":["u1"],"send_at":"tomorrow","msg":` + textMsg + `}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "send_at"},
		{name: "send_at not a string", body: `{"app":"hr","userid_list":["u1"],"send_at":1767225600,"msg":` + textMsg + `}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "send_at"},
		{name: "idempotency_key with a space", body: `{"app":"hr","userid_list":["u1"],"idempotency_key":"a b","msg":` + textMsg + `}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "idempotency_key"},
		{name: "idempotency_key too long", body: `{"app":"hr","userid_list":["u1"],"idempotency_key":"` + strings.Repeat("k", 256) + `","msg":` + textMsg + `}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "idempotency_key"},
		{name: "Content-Type text/plain", contentType: "text/plain", body: valid,
			wantStatus: 415, wantCode: api.CodeUnsupportedType},
		{name: "Content-Type form", contentType: "application/x-www-form-urlencoded", body: valid,
			wantStatus: 415, wantCode: api.CodeUnsupportedType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			h := authJSON()
			if tt.contentType != "" {
				h["Content-Type"] = tt.contentType
			}
			resp, body := f.request(t, http.MethodPost, "/v1/messages", tt.body, h)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status: got %d, want %d (body %s)", resp.StatusCode, tt.wantStatus, body)
			}
			e := apiError(t, resp, body)
			if e.Code != tt.wantCode {
				t.Errorf("error.code: got %q, want %q", e.Code, tt.wantCode)
			}
			if e.Field != tt.wantField {
				t.Errorf("error.field: got %q, want %q (message %q)", e.Field, tt.wantField, e.Message)
			}
			if e.Message == "" {
				t.Errorf("error.message: got %q, want non-empty", e.Message)
			}
			if !strings.Contains(e.Message, tt.wantInMsg) {
				t.Errorf("error.message: got %q, want it to contain %q", e.Message, tt.wantInMsg)
			}
			if got := f.taskCount(t); got != 0 {
				t.Errorf("tasks enqueued: got %d, want 0", got)
			}
			if keys := f.mr.Keys(); len(keys) != 0 {
				t.Errorf("redis keys written: got %v, want none", keys)
			}
		})
	}
}

func TestSendBodyLimit(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantTasks  int
	}{
		{name: "2 KB body over a 1 KB limit",
			body:       messageBody(`{"msgtype":"text","text":{"content":"` + strings.Repeat("x", 2048) + `"}}`),
			wantStatus: http.StatusRequestEntityTooLarge},
		{name: "small valid object then padding over the limit",
			body:       messageBody(textMsg) + strings.Repeat(" ", 2048),
			wantStatus: http.StatusRequestEntityTooLarge},
		{name: "body under the limit", body: messageBody(textMsg), wantStatus: http.StatusAccepted, wantTasks: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setupWith(t, producer.Config{Apps: []string{"hr"}}, api.Config{Tokens: []string{testToken}, MaxBodyBytes: 1024})
			resp, body := f.post(t, tt.body)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status: got %d, want %d (body %s)", resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantStatus == http.StatusRequestEntityTooLarge {
				e := apiError(t, resp, body)
				if e.Code != api.CodeTooLarge {
					t.Errorf("error.code: got %q, want %q", e.Code, api.CodeTooLarge)
				}
			}
			if got := f.taskCount(t); got != tt.wantTasks {
				t.Errorf("tasks enqueued: got %d, want %d", got, tt.wantTasks)
			}
		})
	}
}

func TestAuth(t *testing.T) {
	f := setupWith(t, producer.Config{Apps: []string{"hr"}}, api.Config{Tokens: []string{testToken, "second-token-abcdefgh"}})
	id := f.send(t, messageBody(textMsg))
	tests := []struct {
		name       string
		method     string
		path       string
		auth       string
		wantStatus int
	}{
		{name: "POST without Authorization", method: "POST", path: "/v1/messages", wantStatus: 401},
		{name: "POST wrong token", method: "POST", path: "/v1/messages", auth: "Bearer wrong-token-0123456789", wantStatus: 401},
		{name: "POST prefix of the token", method: "POST", path: "/v1/messages", auth: "Bearer test-token", wantStatus: 401},
		{name: "POST token without scheme", method: "POST", path: "/v1/messages", auth: testToken, wantStatus: 401},
		{name: "POST Basic scheme", method: "POST", path: "/v1/messages", auth: "Basic " + testToken, wantStatus: 401},
		{name: "POST empty Bearer", method: "POST", path: "/v1/messages", auth: "Bearer ", wantStatus: 401},
		{name: "POST right token", method: "POST", path: "/v1/messages", auth: "Bearer " + testToken, wantStatus: 202},
		{name: "POST second token", method: "POST", path: "/v1/messages", auth: "Bearer second-token-abcdefgh", wantStatus: 202},
		{name: "POST right token with extra spaces", method: "POST", path: "/v1/messages", auth: "Bearer  " + testToken + " ", wantStatus: 202},
		// RFC 7235 section 2.1: the auth scheme is case-insensitive.
		{name: "POST lower-case scheme", method: "POST", path: "/v1/messages", auth: "bearer " + testToken, wantStatus: 202},
		{name: "GET status without Authorization", method: "GET", path: "/v1/messages/" + id, wantStatus: 401},
		{name: "GET status wrong token", method: "GET", path: "/v1/messages/" + id, auth: "Bearer nope", wantStatus: 401},
		{name: "GET status right token", method: "GET", path: "/v1/messages/" + id, auth: "Bearer " + testToken, wantStatus: 200},
		{name: "healthz without Authorization", method: "GET", path: "/healthz", wantStatus: 200},
		{name: "readyz without Authorization", method: "GET", path: "/readyz", wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.taskCount(t)
			body := ""
			if tt.method == http.MethodPost {
				body = messageBody(textMsg)
			}
			resp, got := f.request(t, tt.method, tt.path, body,
				map[string]string{"Authorization": tt.auth, "Content-Type": "application/json"})
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status: got %d, want %d (body %s)", resp.StatusCode, tt.wantStatus, got)
			}
			wantTasks := before
			if tt.wantStatus == http.StatusAccepted {
				wantTasks++
			}
			if n := f.taskCount(t); n != wantTasks {
				t.Errorf("tasks: got %d, want %d", n, wantTasks)
			}
			if tt.wantStatus != http.StatusUnauthorized {
				return
			}
			e := apiError(t, resp, got)
			if e.Code != api.CodeUnauthenticated {
				t.Errorf("error.code: got %q, want %q", e.Code, api.CodeUnauthenticated)
			}
			if h := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
				t.Errorf("WWW-Authenticate: got %q, want a Bearer challenge", h)
			}
		})
	}
}

func TestAuthOpenWithoutTokens(t *testing.T) {
	f := setupWith(t, producer.Config{Apps: []string{"hr"}}, api.Config{})
	tests := []struct {
		name string
		auth string
	}{
		{name: "no Authorization"},
		{name: "any token", auth: "Bearer whatever"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.request(t, http.MethodPost, "/v1/messages", messageBody(textMsg),
				map[string]string{"Authorization": tt.auth, "Content-Type": "application/json"})
			id := accepted(t, resp, body)
			resp, body = f.request(t, http.MethodGet, "/v1/messages/"+id, "", map[string]string{"Authorization": tt.auth})
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET status: got %d, want %d (body %s)", resp.StatusCode, http.StatusOK, body)
			}
		})
	}
}

func TestIdempotency(t *testing.T) {
	keyed := func(app, key, content string) string {
		return `{"app":"` + app + `","userid_list":["u1"],"idempotency_key":"` + key +
			`","msg":{"msgtype":"text","text":{"content":"` + content + `"}}}`
	}
	t.Run("same key twice", func(t *testing.T) {
		f := setup(t)
		first := f.send(t, keyed("hr", "order-42", "hello"))
		second := f.send(t, keyed("hr", "order-42", "hello"))
		if second != first {
			t.Errorf("second id: got %q, want %q", second, first)
		}
		if got := f.taskCount(t); got != 1 {
			t.Errorf("tasks: got %d, want 1", got)
		}
	})
	t.Run("same key different message", func(t *testing.T) {
		f := setup(t)
		f.send(t, keyed("hr", "order-42", "hello"))
		resp, body := f.post(t, keyed("hr", "order-42", "goodbye"))
		if resp.StatusCode != http.StatusConflict {
			t.Errorf("status: got %d, want %d (body %s)", resp.StatusCode, http.StatusConflict, body)
		}
		e := apiError(t, resp, body)
		if e.Code != api.CodeConflict {
			t.Errorf("error.code: got %q, want %q", e.Code, api.CodeConflict)
		}
		if e.Field != "idempotency_key" {
			t.Errorf("error.field: got %q, want %q", e.Field, "idempotency_key")
		}
		if got := f.taskCount(t); got != 1 {
			t.Errorf("tasks: got %d, want 1", got)
		}
	})
	t.Run("same key different send_at", func(t *testing.T) {
		f := setup(t)
		f.send(t, keyed("hr", "order-42", "hello"))
		body := strings.Replace(keyed("hr", "order-42", "hello"), `"app"`, `"send_at":"2099-01-01T00:00:00Z","app"`, 1)
		resp, got := f.post(t, body)
		if resp.StatusCode != http.StatusConflict {
			t.Errorf("status: got %d, want %d (body %s)", resp.StatusCode, http.StatusConflict, got)
		}
	})
	t.Run("same key for another app", func(t *testing.T) {
		f := setupWith(t, producer.Config{Apps: []string{"hr", "ops"}}, api.Config{Tokens: []string{testToken}})
		hr := f.send(t, keyed("hr", "order-42", "hello"))
		ops := f.send(t, keyed("ops", "order-42", "goodbye"))
		if ops == hr {
			t.Errorf("ops id: got %q, want an id other than hr's", ops)
		}
		if got := f.taskCount(t); got != 2 {
			t.Errorf("tasks: got %d, want 2", got)
		}
		resp, body := f.get(t, "/v1/messages/"+ops)
		var o producer.Outcome
		if err := json.Unmarshal(body, &o); err != nil {
			t.Fatalf("decoding %s (status %d): %v", body, resp.StatusCode, err)
		}
		if o.App != "ops" {
			t.Errorf("ops outcome app: got %q, want %q", o.App, "ops")
		}
	})
}

func TestSendAt(t *testing.T) {
	tests := []struct {
		name          string
		sendAt        string
		wantPending   int
		wantScheduled int
	}{
		{name: "future", sendAt: time.Now().Add(time.Hour).UTC().Format(time.RFC3339), wantScheduled: 1},
		{name: "future with offset", sendAt: time.Now().Add(48 * time.Hour).In(time.FixedZone("", 8*3600)).Format(time.RFC3339), wantScheduled: 1},
		{name: "past", sendAt: "2020-01-01T00:00:00Z", wantPending: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			id := f.send(t, `{"app":"hr","userid_list":["u1"],"send_at":"`+tt.sendAt+`","msg":`+textMsg+`}`)
			pending, scheduled := f.tasks(t)
			if pending != tt.wantPending {
				t.Errorf("pending: got %d, want %d", pending, tt.wantPending)
			}
			if scheduled != tt.wantScheduled {
				t.Errorf("scheduled: got %d, want %d", scheduled, tt.wantScheduled)
			}
			resp, body := f.get(t, "/v1/messages/"+id)
			var o producer.Outcome
			if err := json.Unmarshal(body, &o); err != nil {
				t.Fatalf("decoding %s (status %d): %v", body, resp.StatusCode, err)
			}
			want, _ := time.Parse(time.RFC3339, tt.sendAt)
			if !o.SendAt.Equal(want) {
				t.Errorf("outcome send_at: got %v, want %v", o.SendAt, want)
			}
		})
	}
}

func TestStatusNotFound(t *testing.T) {
	f := setup(t)
	tests := []struct {
		name string
		path string
	}{
		{name: "unknown id", path: "/v1/messages/0190f0b8-7c2e-7d1a-9e3f-2b4c6d8e0f12"},
		{name: "escaped slash", path: "/v1/messages/a%2Fb"},
		{name: "100 characters", path: "/v1/messages/" + strings.Repeat("a", 100)},
		{name: "braces", path: "/v1/messages/%7Bx%7D"},
		{name: "star", path: "/v1/messages/*"},
		{name: "empty id", path: "/v1/messages/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.get(t, tt.path)
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("status: got %d, want %d (body %s)", resp.StatusCode, http.StatusNotFound, body)
			}
			e := apiError(t, resp, body)
			if e.Code != api.CodeNotFound {
				t.Errorf("error.code: got %q, want %q", e.Code, api.CodeNotFound)
			}
		})
	}
}

func TestUnknownRoute(t *testing.T) {
	f := setup(t)
	tests := []struct {
		name   string
		method string
		path   string
	}{
		{name: "unknown path", method: "GET", path: "/v2/things"},
		{name: "root", method: "GET", path: "/"},
		{name: "messages without id", method: "GET", path: "/v1/messages"},
		{name: "delete a message", method: "DELETE", path: "/v1/messages/abc"},
		{name: "post to healthz", method: "POST", path: "/healthz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.request(t, tt.method, tt.path, "", map[string]string{"Authorization": "Bearer " + testToken})
			if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("status: got %d, want 404 or 405 (body %s)", resp.StatusCode, body)
			}
			apiError(t, resp, body)
		})
	}
}

func TestProbes(t *testing.T) {
	f := setup(t)
	tests := []struct {
		name       string
		path       string
		wantStatus int
	}{
		{name: "healthz", path: "/healthz", wantStatus: 200},
		{name: "readyz", path: "/readyz", wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.request(t, http.MethodGet, tt.path, "", nil)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status: got %d, want %d (body %s)", resp.StatusCode, tt.wantStatus, body)
			}
			if !isJSON(resp) {
				t.Errorf("Content-Type: got %q, want application/json", resp.Header.Get("Content-Type"))
			}
		})
	}
}

func TestRedisDown(t *testing.T) {
	f := setup(t)
	id := f.send(t, messageBody(textMsg))
	addr := f.mr.Addr()
	f.mr.Close()

	leaks := []string{"dial tcp", "connection refused", "127.0.0.1", addr, "outcome:", "producer:"}
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		wantCode   string
	}{
		{name: "healthz still up", method: "GET", path: "/healthz", wantStatus: 200},
		{name: "readyz", method: "GET", path: "/readyz", wantStatus: 503},
		{name: "POST", method: "POST", path: "/v1/messages", body: messageBody(textMsg),
			wantStatus: 503, wantCode: api.CodeUnavailable},
		{name: "POST with idempotency_key", method: "POST", path: "/v1/messages",
			body:       `{"app":"hr","userid_list":["u1"],"idempotency_key":"k1","msg":` + textMsg + `}`,
			wantStatus: 503, wantCode: api.CodeUnavailable},
		{name: "POST invalid is still 400", method: "POST", path: "/v1/messages", body: `{"app":"hr","msg":` + textMsg + `}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument},
		{name: "GET status", method: "GET", path: "/v1/messages/" + id, wantStatus: 503, wantCode: api.CodeUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.request(t, tt.method, tt.path, tt.body, authJSON())
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status: got %d, want %d (body %s)", resp.StatusCode, tt.wantStatus, body)
			}
			if !isJSON(resp) {
				t.Errorf("Content-Type: got %q, want application/json", resp.Header.Get("Content-Type"))
			}
			if tt.wantCode != "" {
				if e := apiError(t, resp, body); e.Code != tt.wantCode {
					t.Errorf("error.code: got %q, want %q", e.Code, tt.wantCode)
				}
			}
			for _, s := range leaks {
				if strings.Contains(string(body), s) {
					t.Errorf("answer %s: got internal text %q, want none", body, s)
				}
			}
		})
	}
}

func TestLogsKeepSecrets(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	f := setupWith(t, producer.Config{Apps: []string{"hr"}}, api.Config{Tokens: []string{testToken}, Logger: zap.New(core)})
	const secret = "salary-of-li-is-secret"
	tests := []struct {
		name       string
		body       string
		auth       string
		redisDown  bool
		wantStatus int
	}{
		{name: "accepted", body: messageBody(`{"msgtype":"text","text":{"content":"` + secret + `"}}`), wantStatus: 202},
		{name: "invalid", body: `{"app":"hr","msg":{"msgtype":"text","text":{"content":"` + secret + `"}}}`, wantStatus: 400},
		{name: "unknown field", body: `{"app":"hr","` + secret + `":1}`, wantStatus: 400},
		{name: "malformed", body: `{"app":"` + secret + `" x}`, wantStatus: 400},
		{name: "wrong token", body: messageBody(textMsg), auth: "Bearer " + secret, wantStatus: 401},
		{name: "redis down", body: `{"app":"hr","userid_list":["u1"],"idempotency_key":"` + secret + `","msg":{"msgtype":"text","text":{"content":"` + secret + `"}}}`,
			redisDown: true, wantStatus: 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.redisDown {
				f.mr.Close()
			}
			logs.TakeAll()
			h := authJSON()
			if tt.auth != "" {
				h["Authorization"] = tt.auth
			}
			resp, body := f.request(t, http.MethodPost, "/v1/messages", tt.body, h)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status: got %d, want %d (body %s)", resp.StatusCode, tt.wantStatus, body)
			}
			entries := logs.TakeAll()
			requestLines := 0
			for _, e := range entries {
				text := e.Message + " " + fmt.Sprint(e.ContextMap())
				for _, s := range []string{testToken, secret} {
					if strings.Contains(text, s) {
						t.Errorf("log line %q: got %q in it, want it left out", text, s)
					}
				}
				if e.Message == "api request" {
					requestLines++
					if got := e.ContextMap()["status"]; got != int64(tt.wantStatus) {
						t.Errorf("logged status: got %v, want %d", got, tt.wantStatus)
					}
				}
			}
			if requestLines != 1 {
				t.Errorf("request log lines: got %d, want 1", requestLines)
			}
		})
	}
}

// send posts body and returns the id of the accepted message.
func (f *fixture) send(t testing.TB, body string) string {
	t.Helper()
	resp, b := f.post(t, body)
	return accepted(t, resp, b)
}
