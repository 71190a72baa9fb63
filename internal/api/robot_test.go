package api_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/dingq/dingq/internal/api"
	"github.com/dingq/dingq/producer"
	"github.com/hibiken/asynq"
)

const robotPath = "/v1/robot-messages"

// robotProducerConfig is the fixture's producer with app hr (and ops),
// custom group robot alerts and app hr's enterprise robot hrbot, as
// cmd/dingq builds it from dingtalk.robots.
func robotProducerConfig() producer.Config {
	return producer.Config{Apps: []string{"hr", "ops"}, MaxRecipients: testMaxIDs,
		Robots: map[string]producer.Robot{"alerts": {}, "hrbot": {App: "hr"}}}
}

// setupRobots starts the API with robotProducerConfig and the test token.
func setupRobots(t testing.TB) *fixture {
	t.Helper()
	return setupWith(t, robotProducerConfig(), api.Config{Tokens: []string{testToken}, MaxRecipients: testMaxIDs})
}

func (f *fixture) postRobot(t testing.TB, body string) (*http.Response, []byte) {
	t.Helper()
	return f.request(t, http.MethodPost, robotPath, body, authJSON())
}

// sendRobot posts body to /v1/robot-messages and returns the id of the
// accepted message.
func (f *fixture) sendRobot(t testing.TB, body string) string {
	t.Helper()
	resp, b := f.postRobot(t, body)
	return accepted(t, resp, b)
}

// allTasks lists the tasks of every lane, pending and scheduled.
func (f *fixture) allTasks(t testing.TB) []*asynq.TaskInfo {
	t.Helper()
	var out []*asynq.TaskInfo
	for _, q := range []string{producer.QueueCritical, producer.QueueDefault, producer.QueueBulk} {
		for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
			f.insp.ListPendingTasks, f.insp.ListScheduledTasks} {
			tasks, err := list(q, asynq.PageSize(1000))
			if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
				t.Fatalf("listing %s: %v", q, err)
			}
			out = append(out, tasks...)
		}
	}
	return out
}

const robotText = `{"msgtype":"text","text":{"content":"disk full"}}`

func groupBody(extra string) string {
	return `{"robot":"alerts",` + extra + `"msg":` + robotText + `}`
}

func otoBody(users string, extra string) string {
	return `{"robot":"hrbot","userIds":` + users + `,` + extra + `"msgKey":"sampleText","msgParam":{"content":"pay day"}}`
}

// acceptedJSON checks a 202 answer's exact JSON.
func acceptedJSON(t testing.TB, resp *http.Response, body []byte, want map[string]any) string {
	t.Helper()
	id := accepted(t, resp, body)
	if !isJSON(resp) {
		t.Errorf("Content-Type: got %q, want application/json", resp.Header.Get("Content-Type"))
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	want["id"] = id
	if !reflect.DeepEqual(got, want) {
		t.Errorf("answer: got %v, want %v", got, want)
	}
	return id
}

func TestRobotSendGroup(t *testing.T) {
	f := setupRobots(t)
	resp, body := f.postRobot(t, `{"robot":"alerts","priority":"critical","msg":{"msgtype":"markdown",`+
		`"markdown":{"title":"db1","text":"## disk full @13800000000"},"at":{"atMobiles":["13800000000"]}}}`)
	id := acceptedJSON(t, resp, body, map[string]any{"status": "queued", "recipients": 1.0})

	tasks := f.allTasks(t)
	if len(tasks) != 1 {
		t.Fatalf("tasks: got %d, want 1", len(tasks))
	}
	ti := tasks[0]
	if ti.ID != id || ti.Type != producer.TypeRobotSend || ti.Queue != producer.QueueCritical {
		t.Errorf("task: id %q type %q queue %q, want id %q type %q queue %q", ti.ID, ti.Type, ti.Queue,
			id, producer.TypeRobotSend, producer.QueueCritical)
	}
	p, err := producer.DecodeRobotSend(asynq.NewTask(ti.Type, ti.Payload))
	if err != nil {
		t.Fatalf("payload: %v", err)
	}
	if p.ID != id || p.Robot != "alerts" || p.Msg.Markdown == nil || p.Msg.Markdown.Title != "db1" ||
		p.Msg.At == nil || !slices.Equal(p.Msg.At.AtMobiles, []string{"13800000000"}) {
		t.Errorf("payload: got %+v", p)
	}

	resp, body = f.get(t, "/v1/messages/"+id)
	o := outcomeOf(t, resp, body, http.StatusOK)
	if o.ID != id || o.Kind != "robot" || o.Robot != "alerts" || o.App != "" || o.Status != producer.StatusQueued ||
		o.Recipients != 1 || o.Broadcast != nil {
		t.Errorf("outcome: got %s, want kind robot, robot alerts, no app, queued, 1 recipient, no broadcast", body)
	}
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["kind"] != "robot" || raw["robot"] != "alerts" {
		t.Errorf("outcome JSON %s: want \"kind\":\"robot\" and \"robot\":\"alerts\"", body)
	}
}

func TestRobotSendEnterprise(t *testing.T) {
	tests := []struct {
		name        string
		users       string
		want        map[string]any
		wantBatches int
	}{
		{name: "45 users", users: quoted("u", 45),
			want: map[string]any{"status": "queued", "recipients": 45.0, "batches": 3.0}, wantBatches: 3},
		{name: "20 users", users: quoted("u", 20),
			want: map[string]any{"status": "queued", "recipients": 20.0, "batches": 1.0}, wantBatches: 1},
		{name: "45 users, 3 given twice", users: strings.TrimSuffix(quoted("u", 45), "]") + `,"u0","u44","u0"]`,
			want: map[string]any{"status": "queued", "recipients": 45.0, "duplicates": 3.0, "batches": 3.0}, wantBatches: 3},
		{name: "key spelled UserIDs", users: quoted("u", 21),
			want: map[string]any{"status": "queued", "recipients": 21.0, "batches": 2.0}, wantBatches: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setupRobots(t)
			b := otoBody(tt.users, "")
			if strings.Contains(tt.name, "UserIDs") {
				b = strings.Replace(b, `"userIds"`, `"UserIDs"`, 1)
			}
			resp, body := f.postRobot(t, b)
			id := acceptedJSON(t, resp, body, tt.want)

			tasks := f.allTasks(t)
			if len(tasks) != tt.wantBatches {
				t.Fatalf("tasks: got %d, want %d", len(tasks), tt.wantBatches)
			}
			var users []string
			for i := range tt.wantBatches {
				ti, err := f.insp.GetTaskInfo(producer.QueueBulk, producer.BatchTaskID(id, fmt.Sprint(i)))
				if err != nil {
					t.Fatalf("batch %d: %v", i, err)
				}
				bp, err := producer.DecodeBatch(asynq.NewTask(ti.Type, ti.Payload))
				if err != nil {
					t.Fatalf("batch %d: %v", i, err)
				}
				if bp.Robot != "hrbot" || bp.App != "hr" || bp.RobotMsg == nil || bp.RobotMsg.MsgKey != "sampleText" ||
					len(bp.UserIDs) > 20 {
					t.Errorf("batch %d: robot %q app %q msg %+v %d users", i, bp.Robot, bp.App, bp.RobotMsg, len(bp.UserIDs))
				}
				users = append(users, bp.UserIDs...)
			}
			var want []string
			if err := json.Unmarshal([]byte(quoted("u", int(tt.want["recipients"].(float64)))), &want); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(users, want) {
				t.Errorf("users of the batches: got %v, want %v", users, want)
			}

			resp, body = f.get(t, "/v1/messages/"+id)
			o := outcomeOf(t, resp, body, http.StatusOK)
			if o.Robot != "hrbot" || o.App != "hr" || o.Broadcast == nil || o.Broadcast.Batches.Total != tt.wantBatches ||
				o.Recipients != len(want) {
				t.Errorf("outcome: got %s, want robot hrbot, app hr, a broadcast of %d batches", body, tt.wantBatches)
			}
		})
	}
}

// TestRobotSendNulls: a JSON null is an absent field, as it is for
// userIds: clients that write null for what they leave out are not refused
// for giving both forms.
func TestRobotSendNulls(t *testing.T) {
	tests := []struct {
		name string
		body string
		want map[string]any
	}{
		{name: "group robot, userIds null", body: `{"robot":"alerts","userIds":null,"msg":` + robotText + `}`,
			want: map[string]any{"status": "queued", "recipients": 1.0}},
		{name: "group robot, msgParam null", body: `{"robot":"alerts","msgParam":null,"msg":` + robotText + `}`,
			want: map[string]any{"status": "queued", "recipients": 1.0}},
		{name: "group robot, every other field null", body: `{"robot":"alerts","userIds":null,"msgKey":null,"msgParam":null,` +
			`"idempotency_key":null,"send_at":null,"priority":null,"msg":` + robotText + `}`,
			want: map[string]any{"status": "queued", "recipients": 1.0}},
		{name: "enterprise robot, msg null", body: `{"robot":"hrbot","msg":null,"userIds":["u1"],"msgKey":"sampleText","msgParam":{"content":"x"}}`,
			want: map[string]any{"status": "queued", "recipients": 1.0, "batches": 1.0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setupRobots(t)
			resp, body := f.postRobot(t, tt.body)
			acceptedJSON(t, resp, body, tt.want)
		})
	}
}

func TestRobotSendBadRequest(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		wantStatus  int
		wantCode    string
		wantField   string
		wantInMsg   string
	}{
		{name: "unknown field", body: groupBody(`"extra":1,`),
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "extra"},
		{name: "a work notification's field", body: groupBody(`"app":"hr",`),
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "app"},
		{name: "robot missing", body: `{"msg":` + robotText + `}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "robot"},
		{name: "robot unknown", body: `{"robot":"nope","msg":` + robotText + `}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "robot", wantInMsg: `"nope"`},
		{name: "robot not a string", body: `{"robot":7,"msg":` + robotText + `}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "robot"},
		{name: "neither msg nor userIds", body: `{"robot":"alerts"}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "msg"},
		{name: "both msg and userIds", body: `{"robot":"hrbot","userIds":["u1"],"msgKey":"sampleText","msgParam":{"content":"x"},"msg":` + robotText + `}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "msg"},
		{name: "msg for an enterprise robot", body: `{"robot":"hrbot","msg":` + robotText + `}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "msg", wantInMsg: "enterprise"},
		{name: "userIds for a group robot", body: `{"robot":"alerts","userIds":["u1"],"msgKey":"sampleText","msgParam":{"content":"x"}}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "userIds", wantInMsg: "group"},
		{name: "msg not an object", body: `{"robot":"alerts","msg":"hello"}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "msg"},
		{name: "msg text empty", body: `{"robot":"alerts","msg":{"msgtype":"text","text":{"content":""}}}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "msg.text.content"},
		{name: "msg msgtype unknown", body: `{"robot":"alerts","msg":{"msgtype":"oa"}}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "msg.msgtype", wantInMsg: "oa"},
		{name: "msgKey unknown", body: `{"robot":"hrbot","userIds":["u1"],"msgKey":"sampleSMS","msgParam":{"content":"x"}}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "msgKey", wantInMsg: "sampleSMS"},
		{name: "msgKey missing", body: `{"robot":"hrbot","userIds":["u1"],"msgParam":{"content":"x"}}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "msgKey"},
		{name: "msgKey not a string", body: `{"robot":"hrbot","userIds":["u1"],"msgKey":1,"msgParam":{"content":"x"}}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "msgKey"},
		{name: "msgParam missing content", body: `{"robot":"hrbot","userIds":["u1"],"msgKey":"sampleText","msgParam":{"text":"x"}}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "msgParam.content"},
		{name: "msgParam a number", body: `{"robot":"hrbot","userIds":["u1"],"msgKey":"sampleText","msgParam":5}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "msgParam"},
		{name: "userIds missing", body: `{"robot":"hrbot","msgKey":"sampleText","msgParam":{"content":"x"}}`,
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "userIds"},
		{name: "userIds not strings", body: otoBody(`["u1","u2",3]`, ""),
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "userIds[2]", wantInMsg: "number"},
		{name: "userIds not an array", body: otoBody(`"u1"`, ""),
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "userIds", wantInMsg: "array"},
		{name: "userIds given twice", body: otoBody(`["u1"]`, `"userIds":["u2"],`),
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "userIds"},
		{name: "user id with a space", body: otoBody(`["u1","u 2"]`, ""),
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "userIds[1]"},
		{name: "over the max of user ids", body: otoBody(quoted("u", testMaxIDs+1), ""),
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "userIds", wantInMsg: "at most 1000"},
		{name: "bad priority", body: groupBody(`"priority":"urgent",`),
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "priority"},
		{name: "bad send_at", body: groupBody(`"send_at":"tomorrow",`),
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "send_at"},
		{name: "idempotency_key with a space", body: otoBody(`["u1"]`, `"idempotency_key":"a b",`),
			wantStatus: 400, wantCode: api.CodeInvalidArgument, wantField: "idempotency_key"},
		{name: "malformed JSON", body: `{"robot" "alerts"}`, wantStatus: 400, wantCode: api.CodeInvalidArgument},
		{name: "empty body", body: ``, wantStatus: 400, wantCode: api.CodeInvalidArgument},
		{name: "array instead of object", body: `[]`, wantStatus: 400, wantCode: api.CodeInvalidArgument},
		{name: "trailing garbage", body: groupBody("") + ` x`, wantStatus: 400, wantCode: api.CodeInvalidArgument},
		{name: "Content-Type text/plain", contentType: "text/plain", body: groupBody(""),
			wantStatus: 415, wantCode: api.CodeUnsupportedType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setupRobots(t)
			h := authJSON()
			if tt.contentType != "" {
				h["Content-Type"] = tt.contentType
			}
			resp, body := f.request(t, http.MethodPost, robotPath, tt.body, h)
			e := wantError(t, resp, body, tt.wantStatus, tt.wantCode, tt.wantField)
			if !strings.Contains(e.Message, tt.wantInMsg) {
				t.Errorf("error.message: got %q, want it to contain %q", e.Message, tt.wantInMsg)
			}
			if keys := f.mr.Keys(); len(keys) != 0 {
				t.Errorf("redis keys written: got %v, want none", keys)
			}
		})
	}
}

// TestRobotSendBodyLimit: as for work notifications, the userIds of an
// enterprise robot's message do not count against the body limit; the
// rest does.
func TestRobotSendBodyLimit(t *testing.T) {
	f := setupWith(t, robotProducerConfig(), api.Config{Tokens: []string{testToken}, MaxBodyBytes: 1024, MaxRecipients: testMaxIDs})
	resp, body := f.postRobot(t, otoBody(quoted("user-", 500), ""))
	acceptedJSON(t, resp, body, map[string]any{"status": "queued", "recipients": 500.0, "batches": 25.0})

	resp, body = f.postRobot(t, `{"robot":"hrbot","userIds":["u1"],"msgKey":"sampleText","msgParam":{"content":"`+
		strings.Repeat("x", 2048)+`"}}`)
	wantError(t, resp, body, http.StatusRequestEntityTooLarge, api.CodeTooLarge, "")
	if n := len(f.allTasks(t)); n != 25 {
		t.Errorf("tasks: got %d, want 25", n)
	}
}

func TestRobotSendIdempotency(t *testing.T) {
	t.Run("same key twice", func(t *testing.T) {
		f := setupRobots(t)
		first := f.sendRobot(t, groupBody(`"idempotency_key":"incident-7",`))
		second := f.sendRobot(t, groupBody(`"idempotency_key":"incident-7",`))
		if second != first {
			t.Errorf("second id: got %q, want %q", second, first)
		}
		if n := len(f.allTasks(t)); n != 1 {
			t.Errorf("tasks: got %d, want 1", n)
		}
	})
	t.Run("enterprise robot, same key twice", func(t *testing.T) {
		f := setupRobots(t)
		first := f.sendRobot(t, otoBody(quoted("u", 45), `"idempotency_key":"payroll-11",`))
		second := f.sendRobot(t, otoBody(quoted("u", 45), `"idempotency_key":"payroll-11",`))
		if second != first {
			t.Errorf("second id: got %q, want %q", second, first)
		}
		if n := len(f.allTasks(t)); n != 3 {
			t.Errorf("tasks: got %d, want 3", n)
		}
	})
	t.Run("same key, other message", func(t *testing.T) {
		f := setupRobots(t)
		f.sendRobot(t, groupBody(`"idempotency_key":"incident-7",`))
		resp, body := f.postRobot(t, `{"robot":"alerts","idempotency_key":"incident-7","msg":{"msgtype":"text","text":{"content":"fixed"}}}`)
		wantError(t, resp, body, http.StatusConflict, api.CodeConflict, "idempotency_key")
		f.sendRobot(t, otoBody(quoted("u", 45), `"idempotency_key":"payroll-11",`))
		resp, body = f.postRobot(t, otoBody(quoted("u", 44), `"idempotency_key":"payroll-11",`))
		wantError(t, resp, body, http.StatusConflict, api.CodeConflict, "idempotency_key")
		if n := len(f.allTasks(t)); n != 4 {
			t.Errorf("tasks: got %d, want 4", n)
		}
	})
	t.Run("same key on an app and a robot", func(t *testing.T) {
		f := setupRobots(t)
		app := f.send(t, `{"app":"hr","userid_list":["u1"],"idempotency_key":"k1","msg":`+textMsg+`}`)
		robot := f.sendRobot(t, otoBody(`["u1"]`, `"idempotency_key":"k1",`))
		group := f.sendRobot(t, groupBody(`"idempotency_key":"k1",`))
		if robot == app || group == app || group == robot {
			t.Errorf("ids: app %s, robot hrbot %s, robot alerts %s: want three", app, robot, group)
		}
	})
}

func TestRobotSendAuth(t *testing.T) {
	f := setupRobots(t)
	tests := []struct {
		name       string
		auth       string
		wantStatus int
	}{
		{name: "without Authorization", wantStatus: 401},
		{name: "wrong token", auth: "Bearer wrong-token-0123456789", wantStatus: 401},
		{name: "token without scheme", auth: testToken, wantStatus: 401},
		{name: "right token", auth: "Bearer " + testToken, wantStatus: 202},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.allTasks(t))
			resp, body := f.request(t, http.MethodPost, robotPath, groupBody(""),
				map[string]string{"Authorization": tt.auth, "Content-Type": "application/json"})
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status: got %d, want %d (body %s)", resp.StatusCode, tt.wantStatus, body)
			}
			want := before
			if tt.wantStatus == http.StatusAccepted {
				want++
			}
			if n := len(f.allTasks(t)); n != want {
				t.Errorf("tasks: got %d, want %d", n, want)
			}
			if tt.wantStatus != http.StatusUnauthorized {
				return
			}
			wantError(t, resp, body, http.StatusUnauthorized, api.CodeUnauthenticated, "")
			if h := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
				t.Errorf("WWW-Authenticate: got %q, want a Bearer challenge", h)
			}
		})
	}
}

// TestRobotRecallRefused: dingq recalls work notifications only: a
// robot's message answers 409, and no recall is queued.
func TestRobotRecallRefused(t *testing.T) {
	f := setupRobots(t)
	group := f.sendRobot(t, groupBody(""))
	oto := f.sendRobot(t, otoBody(quoted("u", 25), ""))
	before := len(f.allTasks(t))
	for name, id := range map[string]string{"group robot": group, "enterprise robot": oto} {
		t.Run(name, func(t *testing.T) {
			resp, body := f.action(t, http.MethodPost, "/v1/messages/"+id+"/recall")
			e := wantError(t, resp, body, http.StatusConflict, api.CodeConflict, "")
			if !strings.Contains(e.Message, "robot") {
				t.Errorf("error.message: got %q, want it to say a robot sent it", e.Message)
			}
		})
	}
	if n := len(f.allTasks(t)); n != before {
		t.Errorf("tasks: got %d after the recalls, want %d", n, before)
	}
}

// TestRobotSendMethodNotAllowed: another method on /v1/robot-messages is
// answered as on /v1/messages: 405 with Allow: POST.
func TestRobotSendMethodNotAllowed(t *testing.T) {
	f := setupRobots(t)
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		t.Run(method, func(t *testing.T) {
			resp, body := f.action(t, method, robotPath)
			wantError(t, resp, body, http.StatusMethodNotAllowed, api.CodeMethod, "")
			if got := resp.Header.Get("Allow"); got != http.MethodPost {
				t.Errorf("Allow: got %q, want %q", got, http.MethodPost)
			}
		})
	}
}

func TestRobotSendRedisDown(t *testing.T) {
	f := setupRobots(t)
	f.mr.Close()
	for name, body := range map[string]string{"group": groupBody(""), "enterprise": otoBody(quoted("u", 25), "")} {
		t.Run(name, func(t *testing.T) {
			resp, got := f.postRobot(t, body)
			wantError(t, resp, got, http.StatusServiceUnavailable, api.CodeUnavailable, "")
		})
	}
	// A bad body is still a 400: validation needs no Redis.
	resp, got := f.postRobot(t, `{"robot":"nope","msg":`+robotText+`}`)
	wantError(t, resp, got, http.StatusBadRequest, api.CodeInvalidArgument, "robot")
}
