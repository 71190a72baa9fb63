package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/dingtalk/fake"
	"github.com/dingq/dingq/producer"
)

// The broadcast fleet tests run what issue 5 promises with real
// processes: fake-dingtalk, three workers, the api and redis-server.

func userIDs(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// waitFinished polls broadcast id until every batch and result is in.
func (fl *fleet) waitFinished(id string, timeout time.Duration) *producer.Outcome {
	fl.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		o, err := fl.producer.Status(context.Background(), id)
		if err != nil {
			fl.t.Fatalf("Status(%s): %v", id, err)
		}
		if o.Broadcast != nil && o.Broadcast.Finished {
			return o
		}
		if time.Now().After(deadline) {
			fl.t.Fatalf("broadcast %s not finished after %s: %s %+v", id, timeout, o.Status, o.Broadcast)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestFleetBroadcast20k: 20,000 users (and 500 repeats) through the API
// are exactly 200 asyncsend_v2 calls, every user once, and the results
// the fake was told to report come back per code.
func TestFleetBroadcast20k(t *testing.T) {
	t.Parallel()
	res := fake.Results{Invalid: 0.03, ForbiddenDaily: 0.02, ForbiddenSame: 0.01, Failed: 0.01, Read: 0.4}
	fl := startFleetWith(t, fleetOpts{workers: 3, concurrency: 20, fakeArgs: []string{"--no-limits",
		"--result-invalid", "0.03", "--result-forbidden-daily", "0.02", "--result-forbidden-same", "0.01",
		"--result-failed", "0.01", "--result-read", "0.4"},
		workerYAML: "results_delay: 100ms"}, hrApp)
	api := fl.startAPI()

	ids := userIDs("b", 20000)
	body, _ := json.Marshal(map[string]any{"app": "hr", "userid_list": append(slices.Clone(ids), ids[:500]...),
		"msg": dingtalk.TextMessage("all hands at 3")})
	start := time.Now()
	status, resp := api.do(http.MethodPost, "/v1/messages", string(body))
	var acc producer.Accepted
	mustJSON(t, resp, &acc)
	if status != http.StatusAccepted || acc.Batches != 200 || acc.Recipients != 20000 || acc.Duplicates != 500 {
		t.Fatalf("POST: %d %s, want 202 with 200 batches, 20000 recipients, 500 duplicates", status, resp)
	}
	t.Logf("20,500 ids accepted in %s", time.Since(start).Round(time.Millisecond))
	o := fl.waitFinished(acc.ID, 2*time.Minute)
	t.Logf("finished, results in, after %s", time.Since(start).Round(time.Millisecond))

	sent := fl.sent()
	if len(sent) != 200 {
		t.Errorf("asyncsend_v2 calls: got %d, want 200", len(sent))
	}
	got := map[string]int{}
	for _, s := range sent {
		for _, u := range s.Request.Request().UserIDs {
			got[u]++
		}
	}
	for _, id := range ids {
		if got[id] != 1 {
			t.Fatalf("user %s sent %d times, want 1", id, got[id])
		}
	}

	// GET /v1/messages/{id} says what the fake was told to report.
	status, resp = api.do(http.MethodGet, "/v1/messages/"+acc.ID, "")
	var viaAPI producer.Outcome
	mustJSON(t, resp, &viaAPI)
	if status != http.StatusOK || viaAPI.Status != producer.StatusDone || viaAPI.Broadcast == nil {
		t.Fatalf("GET: %d %s, want done", status, resp)
	}
	want := map[fake.Fate]int{}
	for _, id := range ids {
		want[res.Fate(id)]++
	}
	b := viaAPI.Broadcast
	r := b.Results
	if b.Batches.Sent != 200 || b.Recipients.Accepted != 20000 || r.PendingBatches != 0 || r.Unknown != 0 ||
		r.Invalid != want[fake.FateInvalid] || r.Failed != want[fake.FateFailed] ||
		r.Read != want[fake.FateRead] || r.Unread != want[fake.FateUnread] ||
		r.Forbidden[dingtalk.ForbiddenDaily] != want[fake.FateForbiddenDaily] ||
		r.Forbidden[dingtalk.ForbiddenSameContent] != want[fake.FateForbiddenSame] || len(r.Forbidden) != 2 {
		t.Errorf("broadcast %+v\nwant results %v", b, want)
	}
	t.Logf("results: %d invalid, %v forbidden, %d failed, %d read, %d unread", r.Invalid, r.Forbidden, r.Failed, r.Read, r.Unread)
	if fmt.Sprint(o.Broadcast.Results) != fmt.Sprint(r) {
		t.Errorf("producer and API disagree: %+v vs %+v", o.Broadcast.Results, r)
	}

	// The invalid recipients page through the API.
	var paged []string
	for off := 0; ; {
		status, resp := api.do(http.MethodGet, fmt.Sprintf("/v1/messages/%s/recipients?status=invalid&offset=%d&limit=250", acc.ID, off), "")
		var page producer.RecipientsPage
		mustJSON(t, resp, &page)
		if status != http.StatusOK {
			t.Fatalf("recipients: %d %s", status, resp)
		}
		for _, it := range page.Items {
			paged = append(paged, it.UserID)
		}
		if page.Next == 0 {
			break
		}
		off = int(page.Next)
	}
	if len(paged) != want[fake.FateInvalid] {
		t.Errorf("paged %d invalid recipients, want %d", len(paged), want[fake.FateInvalid])
	}
	for _, id := range paged {
		if res.Fate(id) != fake.FateInvalid {
			t.Errorf("%s listed invalid, its fate is %s", id, res.Fate(id))
		}
	}
	if status, resp := api.do(http.MethodGet, "/v1/messages/"+acc.ID+"/recipients?status=nope", ""); status != http.StatusBadRequest || !strings.Contains(resp, `"field":"status"`) {
		t.Errorf("bad status: %d %s, want 400 naming status", status, resp)
	}
}

// TestFleetBroadcastPace: with DingTalk's recipients-per-minute limit
// (set high to keep the test short), a 100,000-user broadcast takes at
// most 1.1 times what the limit allows, and single messages sent during
// it still go out within two seconds.
func TestFleetBroadcastPace(t *testing.T) {
	t.Parallel()
	const (
		users = 100_000
		rpm   = 300_000 // ideal: 20 s
	)
	app := hrApp
	app.rateLimit = fmt.Sprintf("{calls_per_second: 100, recipients_per_minute: %d}", rpm)
	fl := startFleetWith(t, fleetOpts{workers: 3, concurrency: 20,
		fakeArgs:   []string{"--calls-per-second", "100", "--recipients-per-minute", fmt.Sprint(rpm)},
		workerYAML: "results_delay: 1s"}, app)
	ctx := context.Background()
	// Warm up: one message, so the token is fetched before the clock runs.
	fl.waitSent(fl.send("hr", "warm-up", 1), 30*time.Second)

	start := time.Now()
	acc, err := fl.producer.Enqueue(ctx, &producer.Message{App: "hr", UserIDs: userIDs("p", users),
		Msg: dingtalk.TextMessage("hr pace")})
	if err != nil {
		t.Fatal(err)
	}
	// Single messages, one every 300 ms while the broadcast runs.
	type single struct {
		id   string
		text string
		at   time.Time
	}
	var singles []single
	for i := 0; ; i++ {
		o, err := fl.producer.Status(ctx, acc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if o.Broadcast.Batches.Queued == 0 && o.Broadcast.Batches.Sending == 0 {
			break
		}
		if time.Since(start) > 2*time.Minute {
			t.Fatalf("broadcast not sent after 2m: %+v", o.Broadcast)
		}
		text := fmt.Sprintf("hr single %d", i)
		at := time.Now()
		id, err := fl.producer.Send(ctx, &producer.Message{App: "hr", UserIDs: []string{fmt.Sprintf("s%d", i)}, Msg: dingtalk.TextMessage(text)})
		if err != nil {
			t.Fatal(err)
		}
		singles = append(singles, single{id, text, at})
		time.Sleep(300 * time.Millisecond)
	}
	var first, last time.Time
	sentAt := map[string]time.Time{}
	for _, s := range fl.sent() {
		text := s.Request.Msg.Text.Content
		sentAt[text] = s.Time
		if text == "hr pace" {
			if first.IsZero() || s.Time.Before(first) {
				first = s.Time
			}
			if s.Time.After(last) {
				last = s.Time
			}
		}
	}
	took := last.Sub(start)
	ideal := time.Duration(float64(users) / rpm * float64(time.Minute))
	t.Logf("%d users at %d/min: last batch %s after enqueue (first %s), ideal %s: %.3f×",
		users, rpm, took.Round(time.Millisecond), first.Sub(start).Round(time.Millisecond), ideal, took.Seconds()/ideal.Seconds())
	if took > ideal*11/10 {
		t.Errorf("broadcast took %s, more than 1.1 × the ideal %s", took, ideal)
	}
	if st := fl.stats(); st.Throttled != 0 || st.Dropped[app.key] != 0 {
		t.Errorf("the fake throttled %d calls and dropped %d recipients, want none", st.Throttled, st.Dropped[app.key])
	}
	var worst time.Duration
	for _, s := range singles {
		at, ok := sentAt[s.text]
		if !ok {
			fl.waitSent([]string{s.id}, 10*time.Second)
			continue
		}
		worst = max(worst, at.Sub(s.at))
	}
	t.Logf("%d single messages during the broadcast, slowest sent after %s", len(singles), worst.Round(time.Millisecond))
	if len(singles) < 10 || worst > 2*time.Second {
		t.Errorf("%d singles, slowest %s: want each sent within 2s", len(singles), worst)
	}
}
