package fake_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/dingtalk/fake"
)

// topapi calls a topapi path with tok ("" for none) and body, and returns
// the answer decoded into v (if not nil) and as text.
func (e *env) topapi(t *testing.T, path, tok, body string, v any) (answer, string) {
	t.Helper()
	if tok != "" {
		path += "?access_token=" + url.QueryEscape(tok)
	}
	status, a, text := e.raw(t, http.MethodPost, path, body)
	if status != http.StatusOK {
		t.Fatalf("POST %s: HTTP %d %s", path, status, text)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(text), v); err != nil {
			t.Fatalf("POST %s: %v in %s", path, err, text)
		}
	}
	return a, text
}

// longLived is a token lifetime for tests whose clock runs for days.
const longLived = 30 * 24 * time.Hour

// progressAnswer is getsendprogress's answer, decoded.
type progressAnswer struct {
	Progress *struct {
		ProgressInPercent int64 `json:"progress_in_percent"`
		Status            int   `json:"status"`
	} `json:"progress"`
}

// taskBody is the body naming a task of appA.
func taskBody(field string, task int64) string {
	return fmt.Sprintf(`{"agent_id":%d,%q:%d}`, appA.AgentID, field, task)
}

// outcomes tells, by user id (or dept id), what a send_result says of it:
// a Fate's name, or for a forbidden recipient "forbidden_daily" (143105),
// "forbidden_same" (143106) or the code itself for any other. It fails the
// test if a recipient is listed twice or forbidden_list disagrees with
// forbidden_user_id_list.
func outcomes(t *testing.T, a sendResultAnswer) map[string]string {
	t.Helper()
	r := a.SendResult
	out := map[string]string{}
	add := func(id, what string) {
		if old, ok := out[id]; ok {
			t.Errorf("%s is %s and %s", id, old, what)
		}
		out[id] = what
	}
	for what, l := range map[fake.Fate][]string{fake.FateInvalid: r.InvalidUserIDList, fake.FateFailed: r.FailedUserIDList,
		fake.FateRead: r.ReadUserIDList, fake.FateUnread: r.UnreadUserIDList} {
		for _, id := range l {
			add(id, string(what))
		}
	}
	if len(r.ForbiddenList) != len(r.ForbiddenUserIDList) {
		t.Fatalf("forbidden_list has %d entries, forbidden_user_id_list %d", len(r.ForbiddenList), len(r.ForbiddenUserIDList))
	}
	for i, f := range r.ForbiddenList {
		if f.UserID != r.ForbiddenUserIDList[i] || f.Count != 1 {
			t.Errorf("forbidden_list[%d] = %+v, want userid %s count 1", i, f, r.ForbiddenUserIDList[i])
		}
		what := f.Code
		switch f.Code {
		case dingtalk.ForbiddenDaily:
			what = string(fake.FateForbiddenDaily)
		case dingtalk.ForbiddenSameContent:
			what = string(fake.FateForbiddenSame)
		}
		add(f.UserID, what)
	}
	return out
}

func TestGetSendProgress(t *testing.T) {
	tests := []struct {
		name        string
		delivery    time.Duration
		advance     time.Duration // after the send, in total
		wantPercent int64
		wantStatus  int
	}{
		{name: "no delivery time: done at once", wantPercent: 100, wantStatus: 2},
		{name: "no delivery time: done later", advance: time.Hour, wantPercent: 100, wantStatus: 2},
		{name: "at the send: not started", delivery: 10 * time.Second, wantPercent: 0, wantStatus: 0},
		{name: "under 1%: not started", delivery: 10 * time.Second, advance: 99 * time.Millisecond, wantPercent: 0, wantStatus: 0},
		{name: "1%: processing", delivery: 10 * time.Second, advance: 100 * time.Millisecond, wantPercent: 1, wantStatus: 1},
		{name: "half way", delivery: 10 * time.Second, advance: 5 * time.Second, wantPercent: 50, wantStatus: 1},
		{name: "just before", delivery: 10 * time.Second, advance: 10*time.Second - time.Nanosecond, wantPercent: 99, wantStatus: 1},
		{name: "delivered", delivery: 10 * time.Second, advance: 10 * time.Second, wantPercent: 100, wantStatus: 2},
		{name: "long after", delivery: 10 * time.Second, advance: 23 * time.Hour, wantPercent: 100, wantStatus: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, &fake.Options{DeliveryTime: tt.delivery, TokenLifetime: longLived})
			tok := e.token(t, credA)
			task := e.mustSend(t, tok, textRequest(appA.AgentID, "x"))
			e.clock.Advance(tt.advance)
			var p progressAnswer
			a, text := e.topapi(t, fake.PathGetSendProgress, tok, taskBody("task_id", task), &p)
			if a.code() != 0 || a.ErrMsg != "ok" || a.RequestID == "" || p.Progress == nil {
				t.Fatalf("got %s, want errcode 0 with progress and request_id", text)
			}
			if p.Progress.ProgressInPercent != tt.wantPercent || p.Progress.Status != tt.wantStatus {
				t.Errorf("progress = %+v, want %d%% status %d", *p.Progress, tt.wantPercent, tt.wantStatus)
			}
		})
	}

	t.Run("shape", func(t *testing.T) {
		e := setup(t, nil)
		tok := e.token(t, credA)
		task := e.mustSend(t, tok, textRequest(appA.AgentID, "x"))
		_, text := e.topapi(t, fake.PathGetSendProgress, tok, taskBody("task_id", task), nil)
		want := `{"errcode":0,"errmsg":"ok","progress":{"progress_in_percent":100,"status":2},"request_id":"`
		if !strings.HasPrefix(text, want) {
			t.Errorf("answer\n got %s\nwant %s…", text, want)
		}
	})
}

// TestTaskEndpointErrors checks the refusals getsendprogress, getsendresult
// and recall share.
func TestTaskEndpointErrors(t *testing.T) {
	endpoints := []struct {
		path, field string
	}{
		{fake.PathGetSendProgress, "task_id"},
		{fake.PathGetSendResult, "task_id"},
		{fake.PathRecall, "msg_task_id"},
	}
	for _, ep := range endpoints {
		t.Run(ep.path[strings.LastIndex(ep.path, "/")+1:], func(t *testing.T) {
			e := setup(t, nil)
			tokA, tokB := e.token(t, credA), e.token(t, credB)
			taskA := e.mustSend(t, tokA, textRequest(appA.AgentID, "x"))
			taskB := e.mustSend(t, tokB, textRequest(5, "x"))
			other := "task_id"
			if ep.field == "task_id" {
				other = "msg_task_id"
			}
			tests := []struct {
				name     string
				tok      string
				body     string
				wantCode int
				wantSub  string
				wantMsg  string // in errmsg
			}{
				{name: "unknown task", tok: tokA, body: taskBody(ep.field, taskB+1), wantCode: 400002, wantMsg: ep.field},
				{name: "task before the first", tok: tokA, body: taskBody(ep.field, 1), wantCode: 400002},
				{name: "another app's task", tok: tokA, body: taskBody(ep.field, taskB), wantCode: 400002},
				{name: "another agent's task", tok: tokB, body: fmt.Sprintf(`{"agent_id":6,%q:%d}`, ep.field, taskB), wantCode: 400002},
				{name: "wrong agent_id", tok: tokA, body: fmt.Sprintf(`{"agent_id":1,%q:%d}`, ep.field, taskA), wantCode: 40056},
				{name: "no agent_id", tok: tokA, body: fmt.Sprintf(`{%q:%d}`, ep.field, taskA), wantCode: 40035, wantMsg: "agent_id"},
				{name: "no " + ep.field, tok: tokA, body: fmt.Sprintf(`{"agent_id":%d}`, appA.AgentID), wantCode: 40035, wantMsg: "缺少参数 " + ep.field},
				{name: other + " in place of " + ep.field, tok: tokA, body: taskBody(other, taskA), wantCode: 40035, wantMsg: "缺少参数 " + ep.field},
				{name: "malformed JSON", tok: tokA, body: `{"agent_id":`, wantCode: 400002},
				{name: "no body", tok: tokA, wantCode: 400002},
				{name: "no token", body: taskBody(ep.field, taskA), wantCode: 88, wantSub: "40000"},
				{name: "bad token", tok: "nosuch", body: taskBody(ep.field, taskA), wantCode: 88, wantSub: "40014"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					a, text := e.topapi(t, ep.path, tt.tok, tt.body, nil)
					if a.code() != tt.wantCode || a.SubCode != tt.wantSub || a.RequestID == "" || !strings.Contains(a.ErrMsg, tt.wantMsg) {
						t.Errorf("got %s, want errcode %d sub_code %q errmsg with %q and a request_id", text, tt.wantCode, tt.wantSub, tt.wantMsg)
					}
				})
			}
			t.Run("last 24 hours only", func(t *testing.T) {
				e.clock.Advance(fake.SendResultRetention)
				tok := e.token(t, credA)
				if a, text := e.topapi(t, ep.path, tok, taskBody(ep.field, taskA), nil); a.code() != 0 {
					t.Errorf("24 h after the send: %s, want errcode 0", text)
				}
				e.clock.Advance(time.Nanosecond)
				if a, text := e.topapi(t, ep.path, tok, taskBody(ep.field, taskA), nil); a.code() != 400002 {
					t.Errorf("after 24 h: %s, want errcode 400002", text)
				}
			})
			t.Run("GET is an invalid method", func(t *testing.T) {
				if _, a, text := e.raw(t, http.MethodGet, ep.path, ""); a.code() != 22 {
					t.Errorf("got %s, want errcode 22", text)
				}
			})
			t.Run("counted by calls_per_second", func(t *testing.T) {
				e := setup(t, &fake.Options{Limits: &fake.Limits{CallsPerSecond: 2}})
				tok := e.token(t, credA)
				task := e.mustSend(t, tok, textRequest(appA.AgentID, "x"))
				for i, want := range []int{0, 0, 90018} {
					if a, text := e.topapi(t, ep.path, tok, taskBody(ep.field, task), nil); a.code() != want {
						t.Errorf("call %d: %s, want errcode %d", i+1, text, want)
					}
				}
			})
			t.Run("faults can target it", func(t *testing.T) {
				e.addFault(t, fake.Fault{Path: ep.path, Code: -1, Times: 1})
				if a, text := e.topapi(t, ep.path, tokB, fmt.Sprintf(`{"agent_id":5,%q:%d}`, ep.field, taskB), nil); a.code() != -1 {
					t.Errorf("got %s, want errcode -1", text)
				}
			})
		})
	}
}

// testResults are the Results of the fraction tests.
var testResults = fake.Results{Invalid: .1, ForbiddenDaily: .05, ForbiddenSame: .05, Failed: .02, Read: .5}

func TestGetSendResultFractions(t *testing.T) {
	const n = 10000
	e := setup(t, &fake.Options{Results: &testResults})
	tok := e.token(t, credA)
	users := userIDs("user", n)
	got := map[string]string{}
	for i := 0; i < n; i += dingtalk.MaxUserIDs {
		task := e.mustSend(t, tok, &dingtalk.SendRequest{AgentID: appA.AgentID, UserIDs: users[i : i+dingtalk.MaxUserIDs], Msg: dingtalk.TextMessage("hi")})
		for id, what := range outcomes(t, e.result(t, tok, task)) {
			got[id] = what
		}
	}
	if len(got) != n {
		t.Fatalf("send_result lists %d users, want %d", len(got), n)
	}
	counts := map[fake.Fate]int{}
	for _, id := range users {
		want := testResults.Fate(id)
		counts[want]++
		if got[id] != string(want) {
			t.Errorf("%s: send_result says %s, Fate says %s", id, got[id], want)
		}
	}
	t.Logf("fates of %d users: %v", n, counts)
	delivered := counts[fake.FateRead] + counts[fake.FateUnread]
	tests := []struct {
		fate fake.Fate
		of   int // the count is a fraction of these
		want float64
	}{
		{fake.FateInvalid, n, testResults.Invalid},
		{fake.FateForbiddenDaily, n, testResults.ForbiddenDaily},
		{fake.FateForbiddenSame, n, testResults.ForbiddenSame},
		{fake.FateFailed, n, testResults.Failed},
		{fake.FateRead, delivered, testResults.Read},
		{fake.FateUnread, delivered, 1 - testResults.Read},
	}
	for _, tt := range tests {
		t.Run(string(tt.fate), func(t *testing.T) {
			if f := float64(counts[tt.fate]) / float64(tt.of); math.Abs(f-tt.want) > .02 {
				t.Errorf("%d of %d users (%.4f), want %.2f ± .02", counts[tt.fate], tt.of, f, tt.want)
			}
		})
	}
	// The silent limits dropped nobody: each user got one message.
	if st := e.fake.Stats(); len(st.Dropped)+len(st.DroppedByCode) != 0 {
		t.Errorf("Stats().Dropped = %v, DroppedByCode = %v; want none", st.Dropped, st.DroppedByCode)
	}
}

func TestResultsFate(t *testing.T) {
	tests := []struct {
		name    string
		results fake.Results
		want    fake.Fate // of every user
	}{
		{name: "zero: unread", want: fake.FateUnread},
		{name: "all read", results: fake.Results{Read: 1}, want: fake.FateRead},
		{name: "all invalid", results: fake.Results{Invalid: 1, Read: 1}, want: fake.FateInvalid},
		{name: "all forbidden_daily", results: fake.Results{ForbiddenDaily: 1}, want: fake.FateForbiddenDaily},
		{name: "all forbidden_same", results: fake.Results{ForbiddenSame: 1}, want: fake.FateForbiddenSame},
		{name: "all failed", results: fake.Results{Failed: 1}, want: fake.FateFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, id := range userIDs("u", 1000) {
				if got := tt.results.Fate(id); got != tt.want {
					t.Fatalf("Fate(%s) = %s, want %s", id, got, tt.want)
				}
			}
		})
	}
	t.Run("the user id alone decides", func(t *testing.T) {
		more := testResults
		more.Read = .7
		for _, id := range userIDs("x", 1000) {
			fate := testResults.Fate(id)
			if again := testResults.Fate(id); again != fate {
				t.Fatalf("Fate(%s) = %s, then %s", id, fate, again)
			}
			// More read: the users read stay read.
			if got := more.Fate(id); fate == fake.FateRead && got != fake.FateRead {
				t.Fatalf("Fate(%s) = %s, but %s with more read", id, fate, got)
			}
		}
	})
}

func TestGetSendResultDeterministic(t *testing.T) {
	e := setup(t, &fake.Options{Results: &testResults})
	tok := e.token(t, credA)
	users := userIDs("d", 100)
	first := e.mustSend(t, tok, &dingtalk.SendRequest{AgentID: appA.AgentID, UserIDs: users, Msg: dingtalk.TextMessage("one")})
	second := e.mustSend(t, tok, &dingtalk.SendRequest{AgentID: appA.AgentID, UserIDs: users, Msg: dingtalk.TextMessage("two")})
	r1, r2 := e.result(t, tok, first), e.result(t, tok, second)
	if a, b := fmt.Sprint(r1.SendResult), fmt.Sprint(r2.SendResult); a != b {
		t.Errorf("two tasks to the same users differ:\n%s\n%s", a, b)
	}
	// Results changed later apply to later tasks alone.
	if err := e.fake.SetResults(fake.Results{}); err != nil {
		t.Fatal(err)
	}
	if r := e.result(t, tok, first); fmt.Sprint(r.SendResult) != fmt.Sprint(r1.SendResult) {
		t.Errorf("task sent before SetResults changed:\n%s\n%s", fmt.Sprint(r.SendResult), fmt.Sprint(r1.SendResult))
	}
	third := e.mustSend(t, tok, &dingtalk.SendRequest{AgentID: appA.AgentID, UserIDs: users, Msg: dingtalk.TextMessage("three")})
	if r := e.result(t, tok, third).SendResult; !slices.Equal(r.UnreadUserIDList, users) {
		t.Errorf("task sent after SetResults(zero): unread %v, want every user", r.UnreadUserIDList)
	}
}

// sendTo sends a text with content to users as appA and returns the task.
func (e *env) sendTo(t *testing.T, tok, content string, users ...string) int64 {
	t.Helper()
	return e.mustSend(t, tok, &dingtalk.SendRequest{AgentID: appA.AgentID, UserIDs: users, Msg: dingtalk.TextMessage(content)})
}

func TestDailySameContent(t *testing.T) {
	// The clock starts at 2025-01-02 03:04:05 UTC, 11:04:05 in China; the
	// next China day starts at 16:00 UTC.
	e := setup(t, &fake.Options{TokenLifetime: longLived})
	tok := e.token(t, credA)
	steps := []struct {
		name    string
		advance time.Duration
		content string
		users   []string
		raw     string // a body to send in place of content and users
		want    map[string]string
	}{
		{name: "first", content: "hello", users: []string{"u1", "u2"},
			want: map[string]string{"u1": "unread", "u2": "unread"}},
		{name: "same content again", content: "hello", users: []string{"u1", "u3"},
			want: map[string]string{"u1": "forbidden_same", "u3": "unread"}},
		{name: "other content", content: "other", users: []string{"u1"},
			want: map[string]string{"u1": "unread"}},
		{name: "same content, other spacing and field order",
			raw:  fmt.Sprintf(`{ "msg" : {"text":{"content":"hello"}, "msgtype":"text"}, "userid_list":"u2,u4", "agent_id":%d }`, appA.AgentID),
			want: map[string]string{"u2": "forbidden_same", "u4": "unread"}},
		{name: "twice in one call", content: "twice", users: []string{"u5", "u5"},
			want: map[string]string{"u5": "unread+forbidden_same"}},
		{name: "one second before China's midnight", advance: 12*time.Hour + 55*time.Minute + 54*time.Second, content: "hello", users: []string{"u1"},
			want: map[string]string{"u1": "forbidden_same"}},
		{name: "China's next day", advance: time.Second, content: "hello", users: []string{"u1", "u2"},
			want: map[string]string{"u1": "unread", "u2": "unread"}},
		{name: "and again that day", content: "hello", users: []string{"u2"},
			want: map[string]string{"u2": "forbidden_same"}},
	}
	for _, tt := range steps {
		t.Run(tt.name, func(t *testing.T) {
			e.clock.Advance(tt.advance)
			var task int64
			if tt.raw != "" {
				_, a, text := e.raw(t, http.MethodPost, sendPath(tok), tt.raw)
				if a.code() != 0 {
					t.Fatalf("send: %s", text)
				}
				task = a.TaskID
			} else {
				task = e.sendTo(t, tok, tt.content, tt.users...)
			}
			r := e.result(t, tok, task).SendResult
			got := map[string]string{}
			for _, id := range r.UnreadUserIDList {
				got[id] = join(got[id], "unread")
			}
			for _, f := range r.ForbiddenList {
				if f.Code != dingtalk.ForbiddenSameContent {
					t.Errorf("forbidden_list has %+v, want code 143106", f)
				}
				got[f.UserID] = join(got[f.UserID], "forbidden_same")
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("send_result says %v, want %v", got, tt.want)
			}
			for _, d := range e.fake.Sent()[len(e.fake.Sent())-1].Dropped {
				if d.Code != dingtalk.ForbiddenSameContent || tt.want[d.ID] == "unread" {
					t.Errorf("Sent.Dropped has %+v, want only users forbidden_same with code 143106", d)
				}
			}
		})
	}
	st := e.fake.Stats()
	if got, want := st.DroppedByCode, map[string]int{"143106": 5}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Stats().DroppedByCode = %v, want %v", got, want)
	}
	if got, want := st.Dropped, map[string]int{appA.Key: 5}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Stats().Dropped = %v, want %v", got, want)
	}

	t.Run("apps count apart", func(t *testing.T) {
		tokB := e.token(t, credB)
		e.mustSend(t, tokB, &dingtalk.SendRequest{AgentID: 5, UserIDs: []string{"u2"}, Msg: dingtalk.TextMessage("hello")})
		if d := e.fake.Sent()[len(e.fake.Sent())-1].Dropped; len(d) != 0 {
			t.Errorf("another app's same content dropped %v, want none", d)
		}
	})
	t.Run("Reset forgets the day", func(t *testing.T) {
		e.fake.Reset()
		tok := e.token(t, credA)
		e.sendTo(t, tok, "hello", "u2")
		if d := e.fake.Sent()[0].Dropped; len(d) != 0 {
			t.Errorf("after Reset: dropped %v, want none", d)
		}
	})
}

// join joins two outcomes with "+", a being "" for none yet.
func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "+" + b
}

func TestDailyMessagesPerUser(t *testing.T) {
	e := setup(t, &fake.Options{TokenLifetime: longLived})
	tok := e.token(t, credA)
	for i := range fake.DailyMessagesPerUser {
		users := []string{"busy"}
		if i == 0 {
			users = append(users, "calm")
		}
		e.sendTo(t, tok, fmt.Sprint("message ", i), users...)
	}
	for i, m := range e.fake.Sent() {
		if len(m.Dropped) != 0 {
			t.Fatalf("message %d dropped %v, want none of the first %d", i+1, m.Dropped, fake.DailyMessagesPerUser)
		}
	}
	tests := []struct {
		name    string
		advance time.Duration
		content string
		want    []fake.Drop
	}{
		{name: "501st", content: "one more", want: drops("143105", "busy")},
		{name: "502nd", content: "and another", want: drops("143105", "busy")},
		{name: "same content first", content: "message 7", want: drops("143106", "busy")},
		{name: "next day", advance: 24 * time.Hour, content: "one more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.clock.Advance(tt.advance)
			task := e.sendTo(t, tok, tt.content, "busy", "calm")
			sent := e.fake.Sent()
			if got := sent[len(sent)-1].Dropped; !slices.Equal(got, tt.want) {
				t.Errorf("dropped %v, want %v", got, tt.want)
			}
			r := e.result(t, tok, task).SendResult
			wantUnread := []string{"calm"}
			if len(tt.want) == 0 {
				wantUnread = []string{"busy", "calm"}
			}
			if !slices.Equal(r.UnreadUserIDList, wantUnread) {
				t.Errorf("unread_user_id_list = %v, want %v", r.UnreadUserIDList, wantUnread)
			}
			for i, d := range tt.want {
				if f := r.ForbiddenList[i]; f.UserID != d.ID || f.Code != d.Code {
					t.Errorf("forbidden_list[%d] = %+v, want %+v", i, f, d)
				}
			}
		})
	}
	if got, want := e.fake.Stats().DroppedByCode, map[string]int{"143105": 2, "143106": 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Stats().DroppedByCode = %v, want %v", got, want)
	}
}

func TestNoDailyLimits(t *testing.T) {
	e := setup(t, &fake.Options{NoDailyLimits: true})
	tok := e.token(t, credA)
	for range fake.DailyMessagesPerUser + 10 {
		e.sendTo(t, tok, "the same", "u1", "u1")
	}
	st := e.fake.Stats()
	if st.Sent != fake.DailyMessagesPerUser+10 || len(st.Dropped)+len(st.DroppedByCode) != 0 {
		t.Errorf("stats = %+v, want %d sends, none dropped", st, fake.DailyMessagesPerUser+10)
	}
	r := e.result(t, tok, fake.FirstTaskID+int64(fake.DailyMessagesPerUser))
	if got := r.SendResult.UnreadUserIDList; !slices.Equal(got, []string{"u1", "u1"}) {
		t.Errorf("unread_user_id_list = %v, want [u1 u1]", got)
	}
}

func TestSilentLimitsTogether(t *testing.T) {
	// Every delivered user is invalid: a dropped user is forbidden with the
	// limit's code whatever its fate.
	e := setup(t, &fake.Options{Limits: &fake.Limits{RecipientsPerMinute: 3}, Results: &fake.Results{Invalid: 1}})
	tok := e.token(t, credA)
	first := e.sendTo(t, tok, "a", "u1", "u2")
	// 1 recipient of 5 fits the minute: u1, whom the daily limit drops.
	req := &dingtalk.SendRequest{AgentID: appA.AgentID, UserIDs: []string{"u1", "u3", "u4", "u5"}, DeptIDs: []string{"d1"}, Msg: dingtalk.TextMessage("a")}
	second := e.mustSend(t, tok, req)

	want := []fake.Drop{{ID: "u1", Code: "143106"}, {ID: "u3", Code: "143103"}, {ID: "u4", Code: "143103"}, {ID: "u5", Code: "143103"}, {ID: "d1", Code: "143103"}}
	if got := e.fake.Sent()[1].Dropped; !slices.Equal(got, want) {
		t.Errorf("Sent.Dropped = %v, want %v", got, want)
	}
	if r := e.result(t, tok, first).SendResult; !slices.Equal(r.InvalidUserIDList, []string{"u1", "u2"}) || len(r.ForbiddenList) != 0 {
		t.Errorf("first task: %+v, want u1 and u2 invalid", *r)
	}
	r := e.result(t, tok, second).SendResult
	if len(r.InvalidUserIDList)+len(r.UnreadUserIDList) != 0 || len(r.ForbiddenList) != len(want) {
		t.Fatalf("second task: %+v, want every recipient forbidden", *r)
	}
	for i, d := range want {
		if f := r.ForbiddenList[i]; f.UserID != d.ID || f.Code != d.Code || r.ForbiddenUserIDList[i] != d.ID {
			t.Errorf("forbidden_list[%d] = %+v, want %+v", i, f, d)
		}
	}
	st := e.fake.Stats()
	if got, want := st.DroppedByCode, map[string]int{"143103": 4, "143106": 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Stats().DroppedByCode = %v, want %v", got, want)
	}
	if got, want := st.Dropped, map[string]int{appA.Key: 5}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Stats().Dropped = %v, want %v", got, want)
	}
	// The minute counts the recipients it let through, u1 included.
	if got, want := st.MaxRecipientsPerMinute[appA.Key], 3; got != want {
		t.Errorf("Stats().MaxRecipientsPerMinute[A] = %d, want %d", got, want)
	}
}

func TestRecall(t *testing.T) {
	e := setup(t, nil)
	tok := e.token(t, credA)
	task := e.sendTo(t, tok, "oops", "u1")
	other := e.sendTo(t, tok, "fine", "u1")
	t0 := e.clock.Now()
	steps := []struct {
		name    string
		advance time.Duration
		task    int64
		want    int
	}{
		{name: "recall", advance: time.Minute, task: task},
		{name: "again: ok, the first time kept", advance: time.Minute, task: task},
		{name: "unknown task", task: other + 1, want: 400002},
	}
	for _, tt := range steps {
		t.Run(tt.name, func(t *testing.T) {
			e.clock.Advance(tt.advance)
			a, text := e.topapi(t, fake.PathRecall, tok, taskBody("msg_task_id", tt.task), nil)
			if a.code() != tt.want || a.RequestID == "" {
				t.Errorf("got %s, want errcode %d with a request_id", text, tt.want)
			}
			if tt.want == 0 && !strings.HasPrefix(text, `{"errcode":0,"errmsg":"ok","request_id":"`) {
				t.Errorf("got %s, want errcode, errmsg and request_id alone", text)
			}
		})
	}
	sent := e.fake.Sent()
	if got, want := sent[0].Recalled, t0.Add(time.Minute); !got.Equal(want) {
		t.Errorf("Sent[0].Recalled = %v, want %v", got, want)
	}
	if !sent[1].Recalled.IsZero() {
		t.Errorf("Sent[1].Recalled = %v, want zero", sent[1].Recalled)
	}
	if got := e.fake.Stats().Recalled; got != 1 {
		t.Errorf("Stats().Recalled = %d, want 1", got)
	}
	_, _, text := e.raw(t, http.MethodGet, fake.PathAdminSent, "")
	if n := strings.Count(text, `"recalled":"`); n != 1 {
		t.Errorf("GET %s shows %d recalled, want 1: %s", fake.PathAdminSent, n, text)
	}
	// A recalled task is still known to getsendresult.
	if r := e.result(t, tok, task).SendResult; !slices.Equal(r.UnreadUserIDList, []string{"u1"}) {
		t.Errorf("getsendresult of the recalled task: unread %v, want [u1]", r.UnreadUserIDList)
	}
	t.Run("too old", func(t *testing.T) {
		e.clock.Advance(fake.SendResultRetention)
		if a, text := e.topapi(t, fake.PathRecall, e.token(t, credA), taskBody("msg_task_id", other), nil); a.code() != 400002 {
			t.Errorf("got %s, want errcode 400002", text)
		}
		if got := e.fake.Stats().Recalled; got != 1 {
			t.Errorf("Stats().Recalled = %d, want 1", got)
		}
	})
	t.Run("Reset forgets", func(t *testing.T) {
		e.fake.Reset()
		if got := e.fake.Stats().Recalled; got != 0 {
			t.Errorf("Stats().Recalled = %d after Reset, want 0", got)
		}
	})
}

func TestSetResults(t *testing.T) {
	tests := []struct {
		name    string
		results fake.Results
		want    string // the error; "" for none
	}{
		{name: "zero"},
		{name: "every field", results: testResults},
		{name: "sum of 1", results: fake.Results{Invalid: .1, ForbiddenDaily: .2, ForbiddenSame: .3, Failed: .4, Read: 1}},
		{name: "negative invalid", results: fake.Results{Invalid: -.1}, want: "results: invalid must be in [0, 1], got -0.1"},
		{name: "forbidden_daily over 1", results: fake.Results{ForbiddenDaily: 1.5}, want: "results: forbidden_daily must be in [0, 1], got 1.5"},
		{name: "NaN forbidden_same", results: fake.Results{ForbiddenSame: math.NaN()}, want: "results: forbidden_same must be in [0, 1], got NaN"},
		{name: "negative failed", results: fake.Results{Failed: -1}, want: "results: failed must be in [0, 1], got -1"},
		{name: "read over 1", results: fake.Results{Read: 2}, want: "results: read must be in [0, 1], got 2"},
		{name: "sum over 1", results: fake.Results{Invalid: .5, ForbiddenDaily: .3, Failed: .3},
			want: "results: invalid + forbidden_daily + forbidden_same + failed must be at most 1, got 1.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := fake.Results{Read: .25}
			f := fake.New(nil, &fake.Options{Results: &before})
			err := f.SetResults(tt.results)
			want := tt.results
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("SetResults: %v, want nil", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Fatalf("SetResults: %v, want %q", err, tt.want)
			case tt.want != "":
				want = before
			}
			if got := f.Results(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("Results() = %+v, want %+v", got, want)
			}
		})
	}
	t.Run("New panics on invalid results", func(t *testing.T) {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "read") {
				t.Errorf("recovered %v, want a panic naming read", r)
			}
		}()
		fake.New(nil, &fake.Options{Results: &fake.Results{Read: -1}})
	})
}

func TestAdminResults(t *testing.T) {
	e := setup(t, nil)
	tests := []struct {
		name        string
		method      string
		body        string
		wantStatus  int
		wantText    string // in the answer
		wantResults string // GET /_fake/results afterwards
	}{
		{name: "zero at first", method: http.MethodGet, wantStatus: 200,
			wantResults: `{"invalid":0,"forbidden_daily":0,"forbidden_same":0,"failed":0,"read":0}`},
		{name: "set", method: http.MethodPut, body: `{"invalid":0.1,"forbidden_daily":0.05,"forbidden_same":0.05,"failed":0.02,"read":0.5}`,
			wantStatus: 200, wantText: `{"errcode":0,"errmsg":"ok"}`,
			wantResults: `{"invalid":0.1,"forbidden_daily":0.05,"forbidden_same":0.05,"failed":0.02,"read":0.5}`},
		{name: "fields left out are 0", method: http.MethodPut, body: `{"read":1}`,
			wantStatus: 200, wantText: `{"errcode":0,"errmsg":"ok"}`,
			wantResults: `{"invalid":0,"forbidden_daily":0,"forbidden_same":0,"failed":0,"read":1}`},
		{name: "bad fraction", method: http.MethodPut, body: `{"failed":1.5}`,
			wantStatus: 400, wantText: "results: failed must be in [0, 1], got 1.5"},
		{name: "sum over 1", method: http.MethodPut, body: `{"invalid":0.6,"forbidden_same":0.6}`,
			wantStatus: 400, wantText: "results: invalid + forbidden_daily + forbidden_same + failed must be at most 1"},
		{name: "unknown field", method: http.MethodPut, body: `{"unread":0.5}`,
			wantStatus: 400, wantText: `unknown field "unread"`},
		{name: "wrong type", method: http.MethodPut, body: `{"read":"half"}`,
			wantStatus: 400, wantText: "results: decoding JSON: "},
		{name: "empty body", method: http.MethodPut,
			wantStatus: 400, wantText: "results: empty body, want Results as a JSON object"},
		{name: "POST", method: http.MethodPost, body: `{}`,
			wantStatus: 405, wantText: "method not allowed"},
		{name: "unchanged by refusals", method: http.MethodGet, wantStatus: 200,
			wantResults: `{"invalid":0,"forbidden_daily":0,"forbidden_same":0,"failed":0,"read":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, text := e.raw(t, tt.method, fake.PathAdminResults, tt.body)
			if status != tt.wantStatus || !strings.Contains(text, tt.wantText) {
				t.Errorf("%s: got HTTP %d %s, want %d with %q", tt.method, status, text, tt.wantStatus, tt.wantText)
			}
			if tt.wantResults != "" {
				_, _, got := e.raw(t, http.MethodGet, fake.PathAdminResults, "")
				if strings.TrimSpace(got) != tt.wantResults {
					t.Errorf("results\n got %s\nwant %s", got, tt.wantResults)
				}
			}
		})
	}
	t.Run("in force", func(t *testing.T) {
		tok := e.token(t, credA)
		task := e.sendTo(t, tok, "x", "u1", "u2")
		if r := e.result(t, tok, task).SendResult; !slices.Equal(r.ReadUserIDList, []string{"u1", "u2"}) {
			t.Errorf("read_user_id_list = %v, want [u1 u2]", r.ReadUserIDList)
		}
	})
	for _, c := range e.fake.Calls() {
		if strings.HasPrefix(c.Path, "/_fake/") {
			t.Errorf("admin call recorded: %+v", c)
		}
	}
}
