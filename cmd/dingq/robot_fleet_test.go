package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/dingtalk/fake"
	"github.com/dingq/dingq/producer"
)

// The robot fleet test runs what issue 10 promises with real processes:
// fake-dingtalk with signing robots and an enterprise robot, two workers,
// the api and redis-server. The robots' minute is shortened to
// robotWindow in both the fake and dingq's config.

const robotWindow = 4 * time.Second

func (fl *fleet) robots() fake.RobotRecords {
	fl.t.Helper()
	var r fake.RobotRecords
	getJSON(fl.t, fl.fakeURL+fake.PathAdminRobots, &r)
	return r
}

// maxInWindow is the most of times (sorted) in any window of d, as the
// fake counts: (t-d, t].
func maxInWindow(times []time.Time, d time.Duration) int {
	best, lo := 0, 0
	for hi := range times {
		for !times[lo].After(times[hi].Add(-d)) {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

// postRobot sends n messages through robot via the api from eight
// goroutines, each text "<tag> <i>", and returns their ids.
func postRobot(t *testing.T, api *apiClient, robot, tag string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < n; i += 8 {
				body, _ := json.Marshal(producer.RobotMessage{Robot: robot,
					Msg: dingtalk.RobotTextMessage(fmt.Sprintf("%s %d", tag, i))})
				status, resp := api.do(http.MethodPost, "/v1/robot-messages", string(body))
				var acc producer.Accepted
				if status != http.StatusAccepted || json.Unmarshal([]byte(resp), &acc) != nil {
					errs <- fmt.Sprintf("POST %s %d: %d %s", tag, i, status, resp)
					return
				}
				ids[i] = acc.ID
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	return ids
}

// checkRobotSent fails the test unless the fake's robot id took exactly
// the n texts "<tag> 0"…, once each, at most 20 in any robotWindow, and
// returns when they came.
func checkRobotSent(t *testing.T, sent []fake.RobotSent, tag string, n int, robotIDs ...string) map[string][]time.Time {
	t.Helper()
	got := map[string]int{}
	when := map[string][]time.Time{}
	for _, s := range sent {
		if !slices.Contains(robotIDs, s.RobotID) {
			continue
		}
		got[s.Message.Text.Content]++
		when[s.RobotID] = append(when[s.RobotID], s.Time)
	}
	for i := range n {
		if c := got[fmt.Sprintf("%s %d", tag, i)]; c != 1 {
			t.Errorf("%q reached the group %d times, want 1", fmt.Sprintf("%s %d", tag, i), c)
		}
	}
	if total := len(got); total != n {
		t.Errorf("the robots took %d distinct texts, want %d", total, n)
	}
	for id, ts := range when {
		sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
		m := maxInWindow(ts, robotWindow)
		if m > dingtalk.RobotMessagesPerMinute {
			t.Errorf("robot %s took %d messages in one window of %s, want at most %d", id, m, robotWindow, dingtalk.RobotMessagesPerMinute)
		}
		t.Logf("robot %s: %d messages, at most %d in any %s", id, len(ts), m, robotWindow)
	}
	return when
}

// TestFleetRobots: 100 alerts to one signing custom robot go out at no
// more than 20 a (shortened) minute, none lost, none blocked; a group of
// two robots takes its messages in turn; 1,000 users of an enterprise
// robot go out in 50 batchSend calls, with the invalid and the
// flow-controlled users recorded per recipient.
func TestFleetRobots(t *testing.T) {
	t.Parallel()
	const (
		soloToken, soloSecret = "fleet-robot-solo-token", "SECfleet-solo-secret"
		aToken, aSecret       = "fleet-robot-a-token", "SECfleet-a-secret"
		bToken, bSecret       = "fleet-robot-b-token", "SECfleet-b-secret"
	)
	res := fake.Results{Invalid: 0.05}
	fl := startFleetWith(t, fleetOpts{workers: 2, concurrency: 20,
		fakeArgs: []string{"--no-limits", "--robot", soloToken + ":" + soloSecret, "--robot", aToken + ":" + aSecret,
			"--robot", bToken + ":" + bSecret, "--robot-window", robotWindow.String(), "--robot-block", "10m",
			"--robot-user-limit", "1", "--result-invalid", "0.05"},
		workerYAML: "resend_delay: 200ms",
		dingtalkYAML: fmt.Sprintf(`robots:
  - name: alerts
    webhooks: [{access_token: %s, secret: %s}]
    rate_limit: {messages: 20, per: %s}
  - name: pair
    webhooks:
      - {access_token: %s, secret: %s}
      - {access_token: %s, secret: %s}
    rate_limit: {messages: 20, per: %s}
  - name: helpdesk
    app: hr
`, soloToken, soloSecret, robotWindow, aToken, aSecret, bToken, bSecret, robotWindow)}, hrApp)
	api := fl.startAPI()

	// 100 alerts to one robot: five windows' worth.
	start := time.Now()
	ids := postRobot(t, api, "alerts", "alert", 100)
	outs := fl.wait(ids, 2*time.Minute)
	took := time.Since(start)
	for id, o := range outs {
		if o.Status != producer.StatusSent || o.LastError != nil || o.Attempts != 1 || o.Kind != producer.KindRobot || o.Robot != "alerts" {
			t.Errorf("alert %s: %s after %d attempts (last error %+v, kind %q, robot %q), want sent at the first call",
				id, o.Status, o.Attempts, o.LastError, o.Kind, o.Robot)
		}
	}
	when := checkRobotSent(t, fl.robots().Sent, "alert", 100, fake.RobotID(soloToken))
	// 100 at 20 a window is at least four windows from the first to the
	// last: faster would have been blocked.
	ts := when[fake.RobotID(soloToken)]
	if len(ts) == 100 {
		if span := ts[99].Sub(ts[0]); span < 4*robotWindow-robotWindow/2 {
			t.Errorf("100 alerts spanned %s, want about %s or more at 20 per %s", span, 4*robotWindow, robotWindow)
		}
	}
	t.Logf("100 alerts, one robot: all sent, none blocked, in %s", took.Round(time.Millisecond))

	// A group of two robots takes 40 in about one window, each robot its
	// share.
	start = time.Now()
	ids = postRobot(t, api, "pair", "pair", 40)
	fl.waitSent(ids, time.Minute)
	when = checkRobotSent(t, fl.robots().Sent, "pair", 40, fake.RobotID(aToken), fake.RobotID(bToken))
	na, nb := len(when[fake.RobotID(aToken)]), len(when[fake.RobotID(bToken)])
	if na == 0 || nb == 0 || na+nb != 40 {
		t.Errorf("the pair's robots took %d and %d messages, want 40 shared by both", na, nb)
	}
	t.Logf("40 messages, two robots in turn: %d + %d, in %s", na, nb, time.Since(start).Round(time.Millisecond))

	// 1,000 users through batchSend: 50 calls of 20.
	users := userIDs("r", 1000)
	body, _ := json.Marshal(producer.RobotMessage{Robot: "helpdesk", UserIDs: append(slices.Clone(users), users[:30]...),
		MsgKey: "sampleText", MsgParam: json.RawMessage(`{"content":"your ticket was answered"}`)})
	status, resp := api.do(http.MethodPost, "/v1/robot-messages", string(body))
	var acc producer.Accepted
	mustJSON(t, resp, &acc)
	if status != http.StatusAccepted || acc.Batches != 50 || acc.Recipients != 1000 || acc.Duplicates != 30 {
		t.Fatalf("POST: %d %s, want 202 with 50 batches, 1000 recipients, 30 duplicates", status, resp)
	}
	o := fl.waitFinished(acc.ID, time.Minute)
	batches := fl.robots().Batches
	if len(batches) != 50 {
		t.Errorf("batchSend calls: got %d, want 50", len(batches))
	}
	got := map[string]int{}
	for _, b := range batches {
		if n := len(b.Delivered) + len(b.Invalid) + len(b.FlowControlled); n > dingtalk.MaxRobotBatchUsers {
			t.Errorf("a batchSend call had %d users, want at most %d", n, dingtalk.MaxRobotBatchUsers)
		}
		if b.RobotCode != hrApp.key || b.MsgKey != "sampleText" || b.MsgParam != `{"content":"your ticket was answered"}` {
			t.Errorf("batch %+v: want robot code %s, sampleText and its param", b, hrApp.key)
		}
		for _, u := range slices.Concat(b.Delivered, b.Invalid, b.FlowControlled) {
			got[u]++
		}
	}
	invalid := 0
	for _, u := range users {
		if got[u] != 1 {
			t.Fatalf("user %s in %d calls, want 1", u, got[u])
		}
		if res.Fate(u) == fake.FateInvalid {
			invalid++
		}
	}
	r := o.Broadcast.Results
	if o.Status != producer.StatusDone || o.Robot != "helpdesk" || o.App != "hr" || o.Broadcast.Batches.Sent != 50 ||
		r.Delivered != 1000-invalid || r.Invalid != invalid || r.ForbiddenTotal() != 0 || r.Unknown != 0 {
		t.Errorf("broadcast %s robot %q app %q: %+v, want done with %d delivered and %d invalid", o.Status, o.Robot, o.App,
			o.Broadcast, 1000-invalid, invalid)
	}
	t.Logf("1,000 users, one enterprise robot: %d calls, %d delivered, %d invalid", len(batches), r.Delivered, r.Invalid)

	// The same users again within the window: the fake holds them back
	// (one message per user per window); they are sent once more, held
	// back again, and recorded flow controlled.
	again := slices.DeleteFunc(slices.Clone(users[980:]), func(u string) bool { return res.Fate(u) == fake.FateInvalid })
	body, _ = json.Marshal(producer.RobotMessage{Robot: "helpdesk", UserIDs: again,
		MsgKey: "sampleText", MsgParam: json.RawMessage(`{"content":"one more"}`)})
	status, resp = api.do(http.MethodPost, "/v1/robot-messages", string(body))
	mustJSON(t, resp, &acc)
	if status != http.StatusAccepted {
		t.Fatalf("POST again: %d %s", status, resp)
	}
	o = fl.waitFinished(acc.ID, time.Minute)
	r = o.Broadcast.Results
	if r.Forbidden[producer.ForbiddenFlowControlled] != len(again) || o.Broadcast.Recipients.Resent != len(again) ||
		o.Broadcast.Batches.Total != 2 {
		t.Errorf("again: %+v, want %d flow controlled after one re-send", o.Broadcast, len(again))
	}
	page, err := fl.producer.Recipients(context.Background(), acc.ID, "forbidden", 0, 100)
	if err != nil || page.Total != int64(len(again)) || page.Items[0].Code != producer.ForbiddenFlowControlled {
		t.Errorf("forbidden recipients: %+v, %v; want %d with code %s", page, err, len(again), producer.ForbiddenFlowControlled)
	}

	// The webhooks' tokens and secrets are in no log of the api or the
	// workers.
	if fl.countLogLines("api.log", `"robot":"helpdesk"`) == 0 {
		t.Error("the api logged no robot broadcast: the check below would prove little")
	}
	for _, secret := range []string{soloToken, soloSecret, aToken, aSecret, bToken, bSecret, hrApp.secret} {
		if n := fl.countLogLines("worker*.log", secret) + fl.countLogLines("api.log", secret); n > 0 {
			t.Errorf("a secret shows %d times in the logs", n)
		}
	}
}
