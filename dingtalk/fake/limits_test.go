package fake_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/dingtalk/fake"
)

var credB = dingtalk.Credentials{AppKey: appB.Key, AppSecret: appB.Secret}

// usersRequest is a text message from agent to n users named prefix0 to
// prefix(n-1).
func usersRequest(agent int64, prefix string, n int) *dingtalk.SendRequest {
	return &dingtalk.SendRequest{AgentID: agent, UserIDs: userIDs(prefix, n), Msg: dingtalk.TextMessage("hi")}
}

// userIDs returns prefix0 to prefix(n-1).
func userIDs(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint(prefix, i)
	}
	return out
}

// drops returns ids, each dropped with code.
func drops(code string, ids ...string) []fake.Drop {
	out := make([]fake.Drop, len(ids))
	for i, id := range ids {
		out[i] = fake.Drop{ID: id, Code: code}
	}
	return out
}

// send sends req with tok through the real client.
func (e *env) send(tok string, req *dingtalk.SendRequest) (*dingtalk.SendResult, error) {
	return e.client.SendWorkNotification(context.Background(), tok, req)
}

// mustSend sends req with tok and fails the test if it is refused.
func (e *env) mustSend(t *testing.T, tok string, req *dingtalk.SendRequest) int64 {
	t.Helper()
	res, err := e.send(tok, req)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	return res.TaskID
}

// sendResultAnswer is getsendresult's answer, decoded.
type sendResultAnswer struct {
	answer
	SendResult *struct {
		InvalidUserIDList   []string `json:"invalid_user_id_list"`
		ForbiddenUserIDList []string `json:"forbidden_user_id_list"`
		FailedUserIDList    []string `json:"failed_user_id_list"`
		ReadUserIDList      []string `json:"read_user_id_list"`
		UnreadUserIDList    []string `json:"unread_user_id_list"`
		InvalidDeptIDList   []string `json:"invalid_dept_id_list"`
		ForbiddenList       []struct {
			Code   string `json:"code"`
			Count  int    `json:"count"`
			UserID string `json:"userid"`
		} `json:"forbidden_list"`
	} `json:"send_result"`
}

// sendResult calls getsendresult with tok and body, and returns its answer
// decoded and as text.
func (e *env) sendResult(t *testing.T, tok, body string) (sendResultAnswer, string) {
	t.Helper()
	path := fake.PathGetSendResult
	if tok != "" {
		path += "?access_token=" + url.QueryEscape(tok)
	}
	status, _, text := e.raw(t, http.MethodPost, path, body)
	var a sendResultAnswer
	if err := json.Unmarshal([]byte(text), &a); err != nil || status != http.StatusOK {
		t.Fatalf("getsendresult: HTTP %d %s", status, text)
	}
	return a, text
}

// result calls getsendresult for a task of appA and fails the test unless
// it answers ok.
func (e *env) result(t *testing.T, tok string, task int64) sendResultAnswer {
	t.Helper()
	a, text := e.sendResult(t, tok, fmt.Sprintf(`{"agent_id":%d,"task_id":%d}`, appA.AgentID, task))
	if a.code() != 0 || a.SendResult == nil || a.RequestID == "" {
		t.Fatalf("getsendresult for task %d: %s, want errcode 0 with send_result and request_id", task, text)
	}
	return a
}

func TestLimitCallsPerSecond(t *testing.T) {
	e := setup(t, &fake.Options{Limits: &fake.Limits{CallsPerSecond: 20}})
	tok := e.token(t, credA)
	for i := range 20 {
		if _, err := e.send(tok, textRequest(appA.AgentID, fmt.Sprint(i))); err != nil {
			t.Fatalf("send %d: %v", i+1, err)
		}
	}

	tests := []struct {
		name    string
		advance time.Duration // before the call
		want    int           // errcode
	}{
		{name: "21st in the same instant", want: 90018},
		{name: "999ms later", advance: 999 * time.Millisecond, want: 90018},
		{name: "1s after the first 20", advance: time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.clock.Advance(tt.advance)
			_, err := e.send(tok, textRequest(appA.AgentID, tt.name))
			if tt.want == 0 {
				if err != nil {
					t.Fatalf("send: %v, want accepted", err)
				}
				return
			}
			de := asError(t, err)
			if de.Code != tt.want || de.HTTPStatus != 200 || de.Message != "接口调用超过限流，请降低调用频率" || de.RequestID == "" {
				t.Errorf("got %v (HTTP %d), want errcode %d at HTTP 200 with DingTalk's message and a request_id", de, de.HTTPStatus, tt.want)
			}
			if got := dingtalk.Classify(err); got != dingtalk.ClassThrottled {
				t.Errorf("Classify = %s, want throttled", got)
			}
			if got, ok := dingtalk.RetryAfter(err); got != time.Second || !ok {
				t.Errorf("RetryAfter = %s, %t; want 1s", got, ok)
			}
			if c := e.lastCall(t); c.ErrCode != tt.want || c.Limit != "calls_per_second" || c.Fault != "" || c.App != appA.Key {
				t.Errorf("call = %+v, want errcode %d limit calls_per_second, no fault, app %q", c, tt.want, appA.Key)
			}
		})
	}
	st := e.fake.Stats()
	if got, want := st.Throttled, 2; got != want {
		t.Errorf("Stats().Throttled = %d, want %d", got, want)
	}
	if got, want := st.Sent, 21; got != want {
		t.Errorf("Stats().Sent = %d, want %d: throttled calls are not sends", got, want)
	}
	if got, want := st.MaxCallsPerSecond[appA.Key], 20; got != want {
		t.Errorf("Stats().MaxCallsPerSecond[A] = %d, want %d", got, want)
	}
}

func TestLimitCallsPerSecondScope(t *testing.T) {
	tests := []struct {
		name string
		// run makes calls in one instant; they must all be accepted, and
		// then the call it returns must be throttled (nil: none).
		run func(t *testing.T, e *env) func() error
	}{
		{name: "two apps each get their own 20", run: func(t *testing.T, e *env) func() error {
			tokA, tokB := e.token(t, credA), e.token(t, credB)
			for i := range 20 {
				e.mustSend(t, tokA, textRequest(appA.AgentID, fmt.Sprint("a", i)))
				e.mustSend(t, tokB, textRequest(5, fmt.Sprint("b", i)))
			}
			return func() error { _, err := e.send(tokB, textRequest(5, "b21")); return err }
		}},
		{name: "each API gets its own 20", run: func(t *testing.T, e *env) func() error {
			tok := e.token(t, credA)
			var task int64
			for i := range 20 {
				task = e.mustSend(t, tok, textRequest(appA.AgentID, fmt.Sprint(i)))
			}
			for range 20 {
				e.result(t, tok, task)
			}
			return func() error { _, err := e.send(tok, textRequest(appA.AgentID, "21st")); return err }
		}},
		{name: "gettoken is exempt", run: func(t *testing.T, e *env) func() error {
			for range 100 {
				e.token(t, credA)
			}
			return nil
		}},
		{name: "calls refused for other reasons count", run: func(t *testing.T, e *env) func() error {
			tok := e.token(t, credA)
			for range 20 {
				if _, err := e.send(tok, textRequest(appA.AgentID+1, "bad agent")); asError(t, err).Code != 40056 {
					t.Fatalf("send with a bad agent_id: %v, want 40056", err)
				}
			}
			return func() error { _, err := e.send(tok, textRequest(appA.AgentID, "good")); return err }
		}},
		{name: "calls without a known app are not limited", run: func(t *testing.T, e *env) func() error {
			for range 30 {
				if _, err := e.send("nosuchtoken", textRequest(appA.AgentID, "x")); dingtalk.Classify(err) != dingtalk.ClassTokenInvalid {
					t.Fatalf("send with an unknown token: %v, want token invalid", err)
				}
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, &fake.Options{Limits: &fake.Limits{CallsPerSecond: 20}})
			next := tt.run(t, e)
			if next != nil {
				if err := next(); dingtalk.Classify(err) != dingtalk.ClassThrottled || asError(t, err).Code != 90018 {
					t.Errorf("call over the limit: %v, want 90018", err)
				}
			}
			want := map[bool]int{true: 1}[next != nil]
			if got := e.fake.Stats().Throttled; got != want {
				t.Errorf("Stats().Throttled = %d, want %d", got, want)
			}
		})
	}
}

func TestLimitRecipientsPerMinute(t *testing.T) {
	e := setup(t, &fake.Options{Limits: &fake.Limits{RecipientsPerMinute: 5000}})
	tok := e.token(t, credA)
	var tasks []int64
	// 60 calls of 100 users in one minute: one a second.
	for i := range 60 {
		if i > 0 {
			e.clock.Advance(time.Second)
		}
		tasks = append(tasks, e.mustSend(t, tok, usersRequest(appA.AgentID, fmt.Sprintf("c%d-u", i), 100)))
	}
	sent := e.fake.Sent()
	for i, m := range sent {
		if got, want := len(m.Dropped), map[bool]int{true: 100}[i >= 50]; got != want {
			t.Errorf("send %d dropped %d recipients, want %d", i+1, got, want)
		}
	}
	if got, want := sent[59].Dropped, drops("143103", userIDs("c59-u", 100)...); !slices.Equal(got, want) {
		t.Errorf("send 60 dropped %v, want every recipient with code 143103", got)
	}

	tests := []struct {
		name          string
		task          int64
		wantUnread    []string
		wantForbidden []string
	}{
		{name: "first call", task: tasks[0], wantUnread: userIDs("c0-u", 100), wantForbidden: []string{}},
		{name: "50th call", task: tasks[49], wantUnread: userIDs("c49-u", 100), wantForbidden: []string{}},
		{name: "51st call", task: tasks[50], wantUnread: []string{}, wantForbidden: userIDs("c50-u", 100)},
		{name: "60th call", task: tasks[59], wantUnread: []string{}, wantForbidden: userIDs("c59-u", 100)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.result(t, tok, tt.task).SendResult
			if !slices.Equal(r.UnreadUserIDList, tt.wantUnread) {
				t.Errorf("unread_user_id_list = %v, want %v", r.UnreadUserIDList, tt.wantUnread)
			}
			if !slices.Equal(r.ForbiddenUserIDList, tt.wantForbidden) {
				t.Errorf("forbidden_user_id_list = %v, want %v", r.ForbiddenUserIDList, tt.wantForbidden)
			}
			if got, want := len(r.ForbiddenList), len(tt.wantForbidden); got != want {
				t.Fatalf("forbidden_list has %d entries, want %d", got, want)
			}
			for i, f := range r.ForbiddenList {
				if f.Code != "143103" || f.Count != 1 || f.UserID != tt.wantForbidden[i] {
					t.Errorf("forbidden_list[%d] = %+v, want code 143103 count 1 userid %s", i, f, tt.wantForbidden[i])
				}
			}
			for name, l := range map[string][]string{"invalid_user_id_list": r.InvalidUserIDList, "failed_user_id_list": r.FailedUserIDList,
				"read_user_id_list": r.ReadUserIDList, "invalid_dept_id_list": r.InvalidDeptIDList} {
				if l == nil || len(l) != 0 {
					t.Errorf("%s = %v, want []", name, l)
				}
			}
		})
	}

	st := e.fake.Stats()
	if got, want := st.Dropped[appA.Key], 1000; got != want {
		t.Errorf("Stats().Dropped[A] = %d, want %d", got, want)
	}
	if got, want := st.MaxRecipientsPerMinute[appA.Key], 5000; got != want {
		t.Errorf("Stats().MaxRecipientsPerMinute[A] = %d, want %d", got, want)
	}
	if got, want := st.Sent, 60; got != want {
		t.Errorf("Stats().Sent = %d, want %d: a call with its recipients dropped is still accepted", got, want)
	}
	if st.Throttled != 0 {
		t.Errorf("Stats().Throttled = %d, want 0: dropping is silent", st.Throttled)
	}
}

func TestLimitRecipientsPerMinuteWindow(t *testing.T) {
	// The first call is at t0, the 50th at t0+49s; the budget is used up.
	// Each step sends 100 users after advancing the clock.
	tests := []struct {
		name        string
		advance     time.Duration
		wantDropped int
	}{
		{name: "t0+59s: still full", advance: 10 * time.Second, wantDropped: 100},
		{name: "t0+59.999s: still full", advance: 999 * time.Millisecond, wantDropped: 100},
		{name: "t0+60s: the first call's 100 are back", advance: time.Millisecond},
		{name: "t0+60s again: full", wantDropped: 100},
		{name: "t0+61s: the second call's 100 are back", advance: time.Second},
		{name: "t0+2m: room again", advance: 59 * time.Second},
	}
	// The same message to the same users every time: only the limit of
	// recipients per minute is under test.
	e := setup(t, &fake.Options{Limits: &fake.Limits{RecipientsPerMinute: 5000}, NoDailyLimits: true})
	tok := e.token(t, credA)
	for i := range 50 {
		if i > 0 {
			e.clock.Advance(time.Second)
		}
		e.mustSend(t, tok, usersRequest(appA.AgentID, "u", 100))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.clock.Advance(tt.advance)
			e.mustSend(t, tok, usersRequest(appA.AgentID, "u", 100))
			sent := e.fake.Sent()
			if got := len(sent[len(sent)-1].Dropped); got != tt.wantDropped {
				t.Errorf("dropped %d, want %d", got, tt.wantDropped)
			}
		})
	}
	if got, want := e.fake.Stats().MaxRecipientsPerMinute[appA.Key], 5000; got != want {
		t.Errorf("Stats().MaxRecipientsPerMinute[A] = %d, want %d", got, want)
	}
}

func TestLimitRecipientsPartialDrop(t *testing.T) {
	e := setup(t, &fake.Options{Limits: &fake.Limits{RecipientsPerMinute: 150}})
	tok := e.token(t, credA)
	tokB := e.token(t, credB)
	e.mustSend(t, tok, usersRequest(appA.AgentID, "first", 100))
	// Another app has its own budget.
	e.mustSend(t, tokB, usersRequest(5, "b", 100))
	req := usersRequest(appA.AgentID, "u", 48)
	req.DeptIDs = []string{"1", "2", "3", "4"}
	task := e.mustSend(t, tok, req)

	// 50 fit: the 48 users and the first 2 departments.
	wantDropped := []string{"3", "4"}
	m := e.fake.Sent()[2]
	if want := drops("143103", wantDropped...); !slices.Equal(m.Dropped, want) {
		t.Errorf("Sent.Dropped = %v, want %v", m.Dropped, want)
	}
	r := e.result(t, tok, task).SendResult
	if got, want := r.UnreadUserIDList, userIDs("u", 48); !slices.Equal(got, want) {
		t.Errorf("unread_user_id_list = %v, want %v", got, want)
	}
	if !slices.Equal(r.ForbiddenUserIDList, wantDropped) || len(r.ForbiddenList) != 2 || r.ForbiddenList[1].UserID != "4" || r.ForbiddenList[1].Code != "143103" {
		t.Errorf("forbidden_user_id_list = %v, forbidden_list = %+v; want departments 3 and 4 with code 143103", r.ForbiddenUserIDList, r.ForbiddenList)
	}

	// Still full a second before the window slides past t0.
	e.clock.Advance(59 * time.Second)
	e.mustSend(t, tok, usersRequest(appA.AgentID, "late", 3))
	// At t0+60s the 150 of t0 are back; users over the limit: the first
	// ones that fit are kept.
	e.clock.Advance(time.Second)
	e.mustSend(t, tok, usersRequest(appA.AgentID, "v", 100))
	task = e.mustSend(t, tok, usersRequest(appA.AgentID, "w", 60))
	r = e.result(t, tok, task).SendResult
	if got, want := r.UnreadUserIDList, userIDs("w", 50); !slices.Equal(got, want) {
		t.Errorf("unread_user_id_list = %v, want %v", got, want)
	}
	if got, want := r.ForbiddenUserIDList, userIDs("w", 60)[50:]; !slices.Equal(got, want) {
		t.Errorf("forbidden_user_id_list = %v, want %v", got, want)
	}

	st := e.fake.Stats()
	want := map[string]int{appA.Key: 2 + 3 + 10}
	if fmt.Sprint(st.Dropped) != fmt.Sprint(want) {
		t.Errorf("Stats().Dropped = %v, want %v", st.Dropped, want)
	}
	if got, want := st.MaxRecipientsPerMinute, map[string]int{appA.Key: 150, appB.Key: 100}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Stats().MaxRecipientsPerMinute = %v, want %v", got, want)
	}
	_, _, text := e.raw(t, http.MethodGet, fake.PathAdminSent, "")
	if want := `"dropped":[{"id":"3","code":"143103"},{"id":"4","code":"143103"}]`; !strings.Contains(text, want) {
		t.Errorf("GET %s = %s, want %s", fake.PathAdminSent, text, want)
	}
	if got, want := st.DroppedByCode, map[string]int{"143103": 15}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Stats().DroppedByCode = %v, want %v", got, want)
	}
}

func TestStatsMaxRates(t *testing.T) {
	// No limits: the stats still say how fast each app went.
	e := setup(t, &fake.Options{NoDailyLimits: true})
	tokA, tokB := e.token(t, credA), e.token(t, credB)
	steps := []struct {
		advance time.Duration
		tok     string
		agent   int64
		sends   int
	}{
		{tok: tokA, agent: appA.AgentID, sends: 5},                                  // t0: 5 in the last second
		{advance: 500 * time.Millisecond, tok: tokA, agent: appA.AgentID, sends: 5}, // t0+0.5s: 10
		{advance: 600 * time.Millisecond, tok: tokA, agent: appA.AgentID, sends: 3}, // t0+1.1s: 8
		{tok: tokB, agent: 5, sends: 1},
		{advance: 70 * time.Second, tok: tokA, agent: appA.AgentID, sends: 2}, // t0+71.1s: 2
	}
	for _, s := range steps {
		e.clock.Advance(s.advance)
		for range s.sends {
			e.mustSend(t, s.tok, textRequest(s.agent, "x")) // 2 users each
		}
	}
	st := e.fake.Stats()
	tests := []struct {
		name string
		got  map[string]int
		want map[string]int
	}{
		{name: "max_calls_per_second", got: st.MaxCallsPerSecond, want: map[string]int{appA.Key: 10, appB.Key: 1}},
		{name: "max_recipients_per_minute", got: st.MaxRecipientsPerMinute, want: map[string]int{appA.Key: 26, appB.Key: 2}},
		{name: "dropped", got: st.Dropped, want: map[string]int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if fmt.Sprint(tt.got) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}

	t.Run("JSON of a new fake", func(t *testing.T) {
		e := setup(t, nil)
		_, _, text := e.raw(t, http.MethodGet, fake.PathAdminStats, "")
		want := `"throttled":0,"ip_banned":0,"max_calls_per_second":{},"max_recipients_per_minute":{},"dropped":{},"dropped_by_code":{},"recalled":0,` +
			`"limits":{"calls_per_second":0,"recipients_per_minute":0,"calls_per_20s":0}}`
		if !strings.HasSuffix(strings.TrimSpace(text), want) {
			t.Errorf("stats = %s, want it to end with %s", text, want)
		}
	})
	t.Run("Reset forgets them, keeps the limits", func(t *testing.T) {
		e := setup(t, &fake.Options{Limits: &fake.DefaultLimits})
		e.mustSend(t, e.token(t, credA), textRequest(appA.AgentID, "x"))
		e.fake.Reset()
		st := e.fake.Stats()
		if len(st.MaxCallsPerSecond)+len(st.MaxRecipientsPerMinute) != 0 || st.Limits != fake.DefaultLimits {
			t.Errorf("stats after Reset = %+v, want no rates and the default limits", st)
		}
	})
}

func TestLimitCallsPer20s(t *testing.T) {
	e := setup(t, &fake.Options{Limits: &fake.Limits{CallsPer20s: 10, Ban: fake.Duration(2 * time.Minute)}})
	tok := e.token(t, credA) // 1
	for range 4 {            // 5
		e.mustSend(t, tok, textRequest(appA.AgentID, "x"))
	}
	e.clock.Advance(10 * time.Second)
	for range 4 { // 9
		e.token(t, credB)
	}
	e.raw(t, http.MethodGet, "/nosuch", "") // 10: every call counts
	e.clock.Advance(10 * time.Second)
	// t0+20s: the first 5 calls have left the window.
	for range 5 {
		e.mustSend(t, tok, textRequest(appA.AgentID, "x"))
	}

	tests := []struct {
		name    string
		advance time.Duration
		call    func() error
		wantBan bool
	}{
		{name: "the 11th call in 20s starts the ban", call: func() error {
			_, err := e.client.GetToken(context.Background(), credA)
			return err
		}, wantBan: true},
		{name: "sends are banned", advance: time.Minute, call: func() error {
			_, err := e.send(tok, textRequest(appA.AgentID, "x"))
			return err
		}, wantBan: true},
		{name: "until the last instant", advance: time.Minute - time.Nanosecond, call: func() error {
			_, err := e.send(tok, textRequest(appA.AgentID, "x"))
			return err
		}, wantBan: true},
		{name: "the ban ends after 2m", advance: time.Nanosecond, call: func() error {
			_, err := e.send(tok, textRequest(appA.AgentID, "x"))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.clock.Advance(tt.advance)
			err := tt.call()
			if !tt.wantBan {
				if err != nil {
					t.Fatalf("call: %v, want accepted", err)
				}
				return
			}
			if de := asError(t, err); !de.IPBanned || de.Wait != 2*time.Minute || de.HTTPStatus != 200 {
				t.Errorf("got %v (IPBanned %t, wait %s), want an IP ban of 2m at HTTP 200", err, de.IPBanned, de.Wait)
			}
			if got := dingtalk.Classify(err); got != dingtalk.ClassThrottled {
				t.Errorf("Classify = %s, want throttled", got)
			}
			if got, ok := dingtalk.RetryAfter(err); got != 2*time.Minute || !ok {
				t.Errorf("RetryAfter = %s, %t; want 2m0s", got, ok)
			}
			if c := e.lastCall(t); c.ErrCode != 0 || c.Status != 0 || c.Limit != "calls_per_20s" || c.Fault != "" {
				t.Errorf("call = %+v, want errcode 0, limit calls_per_20s, no fault", c)
			}
		})
	}
	st := e.fake.Stats()
	if got, want := st.IPBanned, 3; got != want {
		t.Errorf("Stats().IPBanned = %d, want %d", got, want)
	}
	if got, want := st.Sent, 10; got != want {
		t.Errorf("Stats().Sent = %d, want %d: banned sends have no effect", got, want)
	}
	if st.Throttled != 0 {
		t.Errorf("Stats().Throttled = %d, want 0", st.Throttled)
	}
}

func TestLimitIPBanBody(t *testing.T) {
	tests := []struct {
		name string
		ban  time.Duration
		want string
	}{
		{name: "default", want: `{"status":1111,"wait":5,"punish":"deny"}`},
		{name: "whole minutes", ban: 2 * time.Minute, want: `{"status":1111,"wait":2,"punish":"deny"}`},
		{name: "rounded up", ban: 90 * time.Second, want: `{"status":1111,"wait":2,"punish":"deny"}`},
		{name: "at least a minute", ban: 10 * time.Second, want: `{"status":1111,"wait":1,"punish":"deny"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, &fake.Options{Limits: &fake.Limits{CallsPer20s: 1, Ban: fake.Duration(tt.ban)}})
			e.token(t, credA)
			for _, path := range []string{tokenPath(credA), sendPath("x"), "/nosuch"} {
				status, a, text := e.raw(t, http.MethodGet, path, "")
				if status != http.StatusOK || text != tt.want || a.ErrCode != nil {
					t.Errorf("GET %s: HTTP %d %s, want 200 %s", path, status, text, tt.want)
				}
			}
			ban := tt.ban
			if ban == 0 {
				ban = fake.DefaultBan
			}
			e.clock.Advance(ban)
			e.token(t, credA)
		})
	}
}

func TestLimitsNotCountingFaults(t *testing.T) {
	tests := []struct {
		name   string
		limits fake.Limits
		fault  fake.Fault
	}{
		{name: "per app", limits: fake.Limits{CallsPerSecond: 2},
			fault: fake.Fault{Path: dingtalk.PathAsyncSendV2, Code: -1, Times: 5}},
		{name: "90018 fault is not throttling by the limits", limits: fake.Limits{CallsPerSecond: 2},
			fault: fake.Fault{Path: dingtalk.PathAsyncSendV2, Code: 90018, Times: 5}},
		{name: "per IP", limits: fake.Limits{CallsPer20s: 3},
			fault: fake.Fault{IPBan: true, Times: 5}},
		{name: "per IP, status", limits: fake.Limits{CallsPer20s: 3},
			fault: fake.Fault{Status: 502, Times: 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, &fake.Options{Limits: &tt.limits})
			tok := e.token(t, credA) // the per-IP limit counts it
			e.addFault(t, tt.fault)
			for range 5 {
				if _, err := e.send(tok, textRequest(appA.AgentID, "x")); err == nil {
					t.Fatal("faulted send: no error")
				}
			}
			// The limits let through what they would on a fresh fake.
			for i := range 2 {
				if _, err := e.send(tok, textRequest(appA.AgentID, "x")); err != nil {
					t.Fatalf("send %d after the faults: %v", i+1, err)
				}
			}
			if _, err := e.send(tok, textRequest(appA.AgentID, "x")); dingtalk.Classify(err) != dingtalk.ClassThrottled {
				t.Errorf("send over the limit: %v, want throttled", err)
			}
			st := e.fake.Stats()
			if st.Faulted != 5 || st.Throttled+st.IPBanned != 1 {
				t.Errorf("stats = %+v, want 5 faulted, 1 refused by the limits", st)
			}
		})
	}
}

func TestNoLimits(t *testing.T) {
	tests := []struct {
		name   string
		limits *fake.Limits
	}{
		{name: "nil"},
		{name: "zero", limits: &fake.Limits{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 1000
			e := setup(t, &fake.Options{Limits: tt.limits, NoDailyLimits: true})
			tok := e.token(t, credA)
			for i := range n {
				e.token(t, credA)
				if _, err := e.send(tok, usersRequest(appA.AgentID, "u", 100)); err != nil {
					t.Fatalf("send %d in the same instant: %v", i+1, err)
				}
			}
			st := e.fake.Stats()
			if st.Sent != n || st.Throttled != 0 || st.IPBanned != 0 || len(st.Dropped) != 0 {
				t.Errorf("stats = %+v, want %d sends, nothing refused or dropped", st, n)
			}
			if got, want := st.MaxCallsPerSecond[appA.Key], n; got != want {
				t.Errorf("MaxCallsPerSecond[A] = %d, want %d", got, want)
			}
			if got, want := st.MaxRecipientsPerMinute[appA.Key], 100*n; got != want {
				t.Errorf("MaxRecipientsPerMinute[A] = %d, want %d", got, want)
			}
		})
	}
}

func TestSetLimits(t *testing.T) {
	tests := []struct {
		name   string
		limits fake.Limits
		want   string // the error; "" for none
	}{
		{name: "zero", limits: fake.Limits{}},
		{name: "default", limits: fake.DefaultLimits},
		{name: "every field", limits: fake.Limits{CallsPerSecond: 1, RecipientsPerMinute: 2, CallsPer20s: 3, Ban: fake.Duration(time.Second)}},
		{name: "negative calls_per_second", limits: fake.Limits{CallsPerSecond: -1},
			want: "limits: calls_per_second must be >= 0, got -1"},
		{name: "negative recipients_per_minute", limits: fake.Limits{RecipientsPerMinute: -5},
			want: "limits: recipients_per_minute must be >= 0, got -5"},
		{name: "negative calls_per_20s", limits: fake.Limits{CallsPer20s: -2},
			want: "limits: calls_per_20s must be >= 0, got -2"},
		{name: "negative ban", limits: fake.Limits{Ban: fake.Duration(-time.Second)},
			want: "limits: ban must be >= 0, got -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := fake.Limits{CallsPerSecond: 7}
			f := fake.New(nil, &fake.Options{Limits: &before})
			err := f.SetLimits(tt.limits)
			want := tt.limits
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("SetLimits: %v, want nil", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Fatalf("SetLimits: %v, want %q", err, tt.want)
			case tt.want != "":
				want = before
			}
			if got := f.Limits(); got != want {
				t.Errorf("Limits() = %+v, want %+v", got, want)
			}
			if got := f.Stats().Limits; got != want {
				t.Errorf("Stats().Limits = %+v, want %+v", got, want)
			}
		})
	}

	t.Run("New panics on invalid limits", func(t *testing.T) {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "calls_per_20s") {
				t.Errorf("recovered %v, want a panic naming calls_per_20s", r)
			}
		}()
		fake.New(nil, &fake.Options{Limits: &fake.Limits{CallsPer20s: -1}})
	})
}

func TestSetLimitsAtRuntime(t *testing.T) {
	e := setup(t, nil)
	tok := e.token(t, credA)
	steps := []struct {
		name         string
		limits       fake.Limits
		wantAccepted int // of 30 sends in the same instant
	}{
		{name: "none", wantAccepted: 30},
		{name: "20 a second: the calls made without it are not counted", limits: fake.Limits{CallsPerSecond: 20}, wantAccepted: 20},
		{name: "25 a second: 5 more", limits: fake.Limits{CallsPerSecond: 25}, wantAccepted: 5},
		{name: "off again", wantAccepted: 30},
	}
	for _, tt := range steps {
		t.Run(tt.name, func(t *testing.T) {
			if err := e.fake.SetLimits(tt.limits); err != nil {
				t.Fatal(err)
			}
			accepted := 0
			for range 30 {
				_, err := e.send(tok, textRequest(appA.AgentID, "x"))
				switch {
				case err == nil:
					accepted++
				case dingtalk.Classify(err) != dingtalk.ClassThrottled:
					t.Fatalf("send: %v, want ok or throttled", err)
				}
			}
			if accepted != tt.wantAccepted {
				t.Errorf("%d sends accepted, want %d", accepted, tt.wantAccepted)
			}
		})
	}
}

func TestAdminLimits(t *testing.T) {
	e := setup(t, nil)
	tests := []struct {
		name       string
		method     string
		body       string
		wantStatus int
		wantText   string // in the answer
		wantLimits string // GET /_fake/limits afterwards
	}{
		{name: "none at first", method: http.MethodGet, wantStatus: 200,
			wantLimits: `{"calls_per_second":0,"recipients_per_minute":0,"calls_per_20s":0}`},
		{name: "set", method: http.MethodPut, body: `{"calls_per_second":20,"recipients_per_minute":5000,"calls_per_20s":10000,"ban":"1m"}`,
			wantStatus: 200, wantText: `{"errcode":0,"errmsg":"ok"}`,
			wantLimits: `{"calls_per_second":20,"recipients_per_minute":5000,"calls_per_20s":10000,"ban":"1m0s"}`},
		{name: "fields left out turn limits off", method: http.MethodPut, body: `{"calls_per_second":3}`,
			wantStatus: 200, wantText: `{"errcode":0,"errmsg":"ok"}`,
			wantLimits: `{"calls_per_second":3,"recipients_per_minute":0,"calls_per_20s":0}`},
		{name: "negative", method: http.MethodPut, body: `{"recipients_per_minute":-1}`,
			wantStatus: 400, wantText: "limits: recipients_per_minute must be >= 0, got -1"},
		{name: "malformed JSON", method: http.MethodPut, body: `{"calls_per_second":`,
			wantStatus: 400, wantText: "limits: decoding JSON: "},
		{name: "unknown field", method: http.MethodPut, body: `{"qps":5}`,
			wantStatus: 400, wantText: `unknown field "qps"`},
		{name: "wrong type", method: http.MethodPut, body: `{"calls_per_second":"5"}`,
			wantStatus: 400, wantText: "limits: decoding JSON: "},
		{name: "bad ban", method: http.MethodPut, body: `{"ban":"soon"}`,
			wantStatus: 400, wantText: `duration "soon"`},
		{name: "two objects", method: http.MethodPut, body: `{}{}`,
			wantStatus: 400, wantText: "limits: decoding JSON: data after the object"},
		{name: "empty body", method: http.MethodPut,
			wantStatus: 400, wantText: "limits: empty body, want Limits as a JSON object"},
		{name: "POST", method: http.MethodPost, body: `{}`,
			wantStatus: 405, wantText: "method not allowed"},
		{name: "unchanged by refusals", method: http.MethodGet, wantStatus: 200,
			wantLimits: `{"calls_per_second":3,"recipients_per_minute":0,"calls_per_20s":0}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, text := e.raw(t, tt.method, fake.PathAdminLimits, tt.body)
			if status != tt.wantStatus || !strings.Contains(text, tt.wantText) {
				t.Errorf("%s: got HTTP %d %s, want %d with %q", tt.method, status, text, tt.wantStatus, tt.wantText)
			}
			if tt.wantLimits != "" {
				_, _, got := e.raw(t, http.MethodGet, fake.PathAdminLimits, "")
				if strings.TrimSpace(got) != tt.wantLimits {
					t.Errorf("limits\n got %s\nwant %s", got, tt.wantLimits)
				}
			}
		})
	}

	t.Run("in force and in the stats", func(t *testing.T) {
		tok := e.token(t, credA)
		for range 3 {
			e.mustSend(t, tok, textRequest(appA.AgentID, "x"))
		}
		if _, err := e.send(tok, textRequest(appA.AgentID, "x")); dingtalk.Classify(err) != dingtalk.ClassThrottled {
			t.Errorf("4th send: %v, want throttled", err)
		}
		_, _, text := e.raw(t, http.MethodGet, fake.PathAdminStats, "")
		if want := `"throttled":1,`; !strings.Contains(text, want) {
			t.Errorf("stats = %s, want %s", text, want)
		}
		if want := `"limits":{"calls_per_second":3,`; !strings.Contains(text, want) {
			t.Errorf("stats = %s, want %s", text, want)
		}
	})
	t.Run("405 names the methods", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodDelete, e.url+fake.PathAdminLimits, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Allow"); resp.StatusCode != 405 || got != "GET, PUT" {
			t.Errorf("got HTTP %d Allow %q, want 405 Allow \"GET, PUT\"", resp.StatusCode, got)
		}
	})
	for _, c := range e.fake.Calls() {
		if strings.HasPrefix(c.Path, "/_fake/") {
			t.Errorf("admin call recorded: %+v", c)
		}
	}
}

func TestGetSendResult(t *testing.T) {
	e := setup(t, nil)
	tokA, tokB := e.token(t, credA), e.token(t, credB)
	taskA := e.mustSend(t, tokA, textRequest(appA.AgentID, "x"))
	taskB := e.mustSend(t, tokB, textRequest(5, "x"))

	a := e.result(t, tokA, taskA)
	if got, want := a.SendResult.UnreadUserIDList, []string{"u1", "u2"}; !slices.Equal(got, want) {
		t.Errorf("unread_user_id_list = %v, want %v", got, want)
	}
	_, text := e.sendResult(t, tokA, fmt.Sprintf(`{"agent_id":%d,"task_id":%d}`, appA.AgentID, taskA))
	want := `{"errcode":0,"errmsg":"ok","send_result":{"invalid_user_id_list":[],"forbidden_user_id_list":[],` +
		`"failed_user_id_list":[],"read_user_id_list":[],"unread_user_id_list":["u1","u2"],"invalid_dept_id_list":[],"forbidden_list":[]},"request_id":"`
	if !strings.HasPrefix(text, want) {
		t.Errorf("answer\n got %s\nwant %s…", text, want)
	}

	tests := []struct {
		name     string
		tok      string
		body     string
		wantCode int
		wantSub  string
	}{
		{name: "unknown task", tok: tokA, body: fmt.Sprintf(`{"agent_id":%d,"task_id":%d}`, appA.AgentID, taskB+1), wantCode: 400002},
		{name: "task before the first", tok: tokA, body: fmt.Sprintf(`{"agent_id":%d,"task_id":1}`, appA.AgentID), wantCode: 400002},
		{name: "another app's task", tok: tokA, body: fmt.Sprintf(`{"agent_id":%d,"task_id":%d}`, appA.AgentID, taskB), wantCode: 400002},
		{name: "another agent's task", tok: tokB, body: fmt.Sprintf(`{"agent_id":6,"task_id":%d}`, taskB), wantCode: 400002},
		{name: "wrong agent_id", tok: tokA, body: fmt.Sprintf(`{"agent_id":1,"task_id":%d}`, taskA), wantCode: 40056},
		{name: "no agent_id", tok: tokA, body: fmt.Sprintf(`{"task_id":%d}`, taskA), wantCode: 40035},
		{name: "no task_id", tok: tokA, body: fmt.Sprintf(`{"agent_id":%d}`, appA.AgentID), wantCode: 40035},
		{name: "malformed JSON", tok: tokA, body: `{"agent_id":`, wantCode: 400002},
		{name: "no body", tok: tokA, wantCode: 400002},
		{name: "no token", body: fmt.Sprintf(`{"agent_id":%d,"task_id":%d}`, appA.AgentID, taskA), wantCode: 88, wantSub: "40000"},
		{name: "bad token", tok: "nosuch", body: fmt.Sprintf(`{"agent_id":%d,"task_id":%d}`, appA.AgentID, taskA), wantCode: 88, wantSub: "40014"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, text := e.sendResult(t, tt.tok, tt.body)
			if a.code() != tt.wantCode || a.SubCode != tt.wantSub || a.RequestID == "" || a.SendResult != nil {
				t.Errorf("got %s, want errcode %d sub_code %q with a request_id", text, tt.wantCode, tt.wantSub)
			}
		})
	}

	t.Run("last 24 hours only", func(t *testing.T) {
		e.clock.Advance(fake.SendResultRetention)
		e.result(t, e.token(t, credA), taskA)
		e.clock.Advance(time.Nanosecond)
		a, text := e.sendResult(t, e.token(t, credA), fmt.Sprintf(`{"agent_id":%d,"task_id":%d}`, appA.AgentID, taskA))
		if a.code() != 400002 {
			t.Errorf("got %s, want errcode 400002", text)
		}
	})
	t.Run("faults can target it", func(t *testing.T) {
		e.addFault(t, fake.Fault{Path: fake.PathGetSendResult, Code: -1, Times: 1})
		a, text := e.sendResult(t, e.token(t, credA), fmt.Sprintf(`{"agent_id":%d,"task_id":%d}`, appA.AgentID, taskA))
		if a.code() != -1 {
			t.Errorf("got %s, want errcode -1", text)
		}
		if c := e.lastCall(t); c.Path != fake.PathGetSendResult || c.Fault != "code -1" {
			t.Errorf("call = %+v, want the faulted getsendresult", c)
		}
	})
	t.Run("GET is an invalid method", func(t *testing.T) {
		_, a, text := e.raw(t, http.MethodGet, fake.PathGetSendResult, "")
		if a.code() != 22 {
			t.Errorf("got %s, want errcode 22", text)
		}
	})
}
