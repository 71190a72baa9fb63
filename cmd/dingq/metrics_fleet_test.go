package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/dingtalk/fake"
	"github.com/dingq/dingq/producer"
)

// sample is one line of Prometheus's text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape reads url's metrics in Prometheus's text format.
func scrape(t *testing.T, url string) []sample {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	var out []sample
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("%s: bad line %q", url, line)
		}
		s := sample{name: line[:i], labels: map[string]string{}, value: v}
		if name, labels, ok := strings.Cut(line[:i], "{"); ok {
			s.name = name
			// Label values here hold no '",' : app names, paths, codes.
			for _, kv := range strings.Split(strings.TrimSuffix(labels, "}"), ",") {
				if k, v, ok := strings.Cut(kv, "="); ok {
					s.labels[k] = strings.Trim(v, `"`)
				}
			}
		}
		out = append(out, s)
	}
	return out
}

// sumSamples adds the samples named name whose labels include every name and
// value of labels ("name", "value", …); n says how many there were.
func sumSamples(samples []sample, name string, labels ...string) (v float64, n int) {
next:
	for _, s := range samples {
		if s.name != name {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if s.labels[labels[i]] != labels[i+1] {
				continue next
			}
		}
		v += s.value
		n++
	}
	return v, n
}

// TestFleetMetrics: two workers, each serving /metrics on its own
// address, and the api; messages (three refused for good with 33012, one
// throttled with 90018 on its first try), a broadcast of 250 users, a
// callback registration and five pushed events, one forged push. Every
// dingq_ family has the values the run made, in the process where they
// happened, and the api shows asynq's queue metrics for every queue.
func TestFleetMetrics(t *testing.T) {
	t.Parallel()
	sink, apiAddr, extra := callbackSetup(t, "dingq-metrics:events", "user_add_org")
	hr := hrApp
	hr.rateLimit = "{calls_per_second: 20, recipients_per_minute: 0}"
	// The fake reports results by a hash of each user id; slots further
	// than 250ms off go back to the queue.
	fl := startFleetWith(t, fleetOpts{workers: 0, concurrency: 20, apiAddr: apiAddr, extraYAML: extra,
		fakeArgs: []string{"--no-limits", "--result-invalid", "0.1", "--result-forbidden-daily", "0.05",
			"--result-failed", "0.05", "--result-read", "0.5"},
		workerYAML: "results_delay: 100ms\nmax_limit_wait: 250ms"}, hr)
	startWorker := func(name string) string {
		addr := freeAddr(t)
		start(t, fl.dir, name, fl.bin, append(slices.Clone(fl.env), "DINGQ_WORKER_METRICS_LISTEN="+addr), "worker")
		waitHTTP(t, "http://"+addr+"/metrics")
		return "http://" + addr + "/metrics"
	}
	workers := []string{startWorker("worker1")}
	fl.startAPI()
	ctx := context.Background()

	// The callback registration: DingTalk's check_url reaches the api.
	id, err := fl.producer.EnqueueCallbackAdmin(ctx, "hr", "register")
	if err != nil {
		t.Fatal(err)
	}
	if o := fl.waitOutcome(id, 30*time.Second); o.Status != producer.StatusSent {
		t.Fatalf("register: %s %+v", o.Status, o.LastError)
	}
	// Worker 1 fetches the token; worker 2, started after, takes it from
	// Redis.
	fl.waitSent(fl.send("hr", "warm", 10), time.Minute)
	workers = append(workers, startWorker("worker2"))

	for _, f := range []fake.Fault{{Path: dingtalk.PathAsyncSendV2, Code: 33012, Times: 3},
		{Path: dingtalk.PathAsyncSendV2, Code: 90018, Times: 1}} {
		b, _ := json.Marshal(f)
		resp, err := http.Post(fl.fakeURL+fake.PathAdminFaults, "application/json", strings.NewReader(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("adding fault %s: %d", b, resp.StatusCode)
		}
	}
	failed := 0
	for _, o := range fl.wait(fl.send("hr", "burst", 40), time.Minute) {
		switch {
		case o.Status == producer.StatusFailed && o.LastError != nil && o.LastError.Code == 33012:
			failed++
		case o.Status != producer.StatusSent:
			t.Errorf("message %s: %s %+v", o.ID, o.Status, o.LastError)
		}
	}
	if failed != 3 {
		t.Errorf("messages failed with 33012: got %d, want 3", failed)
	}

	acc, err := fl.producer.Enqueue(ctx, &producer.Message{App: "hr", UserIDs: userIDs("b", 250),
		Msg: dingtalk.TextMessage("metrics broadcast"), Priority: producer.PriorityBulk})
	if err != nil {
		t.Fatal(err)
	}
	bc := fl.waitFinished(acc.ID, time.Minute)

	// Five events pushed by DingTalk, forwarded and streamed.
	events := make([]json.RawMessage, 5)
	for i := range events {
		events[i] = json.RawMessage(fmt.Sprintf(`{"EventType":"user_add_org","UserId":["m%d"],"CorpId":%q}`, i, hrApp.key))
	}
	body, _ := json.Marshal(map[string]any{"app": hrApp.key, "events": events, "times": 1})
	resp, err := http.Post(fl.fakeURL+fake.PathAdminPush, "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// And one push nobody signed.
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	resp, err = http.Post(fl.apiURL+"/v1/callbacks/dingtalk?signature="+strings.Repeat("0", 40)+"&timestamp="+ts+"&nonce=forged",
		"application/json", strings.NewReader(`{"encrypt":"AAAA"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("forged push: %d, want 403", resp.StatusCode)
	}

	// What the run made, where it made it. The workers' counts are added
	// up; a final status is counted just after it is written, so poll.
	r := bc.Broadcast.Results
	type check struct {
		api    bool // scraped from the api, else the workers
		name   string
		labels []string
		ok     func(v float64) bool
		want   string
	}
	eq := func(n float64) (func(float64) bool, string) {
		return func(v float64) bool { return v == n }, fmt.Sprint("= ", n)
	}
	pos := func(v float64) bool { return v > 0 }
	var checks []check
	add := func(api bool, name string, labels []string, ok func(float64) bool, want string) {
		checks = append(checks, check{api, name, labels, ok, want})
	}
	exact := func(api bool, name string, n float64, labels ...string) {
		ok, want := eq(n)
		add(api, name, labels, ok, want)
	}
	positive := func(api bool, name string, labels ...string) { add(api, name, labels, pos, "> 0") }
	send := dingtalk.PathAsyncSendV2
	positive(false, "dingq_dingtalk_calls_total", "api", send, "errcode", "0")
	exact(false, "dingq_dingtalk_calls_total", 3, "api", send, "errcode", "33012")
	exact(false, "dingq_dingtalk_calls_total", 1, "api", send, "errcode", "90018")
	positive(false, "dingq_dingtalk_calls_total", "api", dingtalk.PathGetSendResult, "errcode", "0")
	positive(false, "dingq_dingtalk_calls_total", "api", dingtalk.PathRegisterCallback, "errcode", "0")
	positive(false, "dingq_dingtalk_call_duration_seconds_count", "api", send)
	exact(false, "dingq_token_fetches_total", 1, "app", "hr", "result", "ok")
	positive(false, "dingq_token_cache_hits_total", "layer", "memory")
	positive(false, "dingq_token_cache_hits_total", "layer", "redis")
	positive(false, "dingq_limiter_wait_seconds_count", "api", send)
	positive(false, "dingq_limiter_deferred_total", "api", send)
	positive(false, "dingq_limiter_rate", "api", send)
	exact(false, "dingq_messages_total", 47, "kind", "message", "status", "sent")
	exact(false, "dingq_messages_total", 3, "kind", "message", "status", "failed")
	exact(false, "dingq_messages_total", 1, "kind", "broadcast", "status", "done")
	exact(false, "dingq_messages_total", 1, "kind", "callback", "status", "sent")
	exact(false, "dingq_recipients_total", 47, "status", "sent")
	exact(false, "dingq_recipients_total", 3, "status", "rejected")
	exact(false, "dingq_recipients_total", float64(r.Read), "status", "read")
	exact(false, "dingq_recipients_total", float64(r.Unread), "status", "unread")
	exact(false, "dingq_recipients_total", float64(r.Invalid), "status", "invalid")
	exact(false, "dingq_recipients_total", float64(r.ForbiddenTotal()), "status", "forbidden")
	exact(false, "dingq_recipients_total", float64(r.Failed), "status", "failed")
	exact(false, "dingq_callback_events_forwarded_total", 5, "sink", "forward", "result", "ok")
	exact(false, "dingq_callback_events_forwarded_total", 5, "sink", "stream", "result", "ok")
	positive(true, "dingq_callback_events_received_total", "event_type", "check_url")
	exact(true, "dingq_callback_events_received_total", 5, "event_type", "user_add_org")
	exact(true, "dingq_callback_requests_rejected_total", 1, "reason", "signature")
	positive(true, "asynq_tasks_processed_total")
	positive(true, "asynq_tasks_failed_total")
	exact(true, "asynq_tasks_enqueued_total", 3, "queue", producer.QueueDefault, "state", "archived")

	var wk, ap []sample
	var wrong []string
	deadline := time.Now().Add(20 * time.Second)
	for {
		wk = nil
		for _, u := range workers {
			wk = append(wk, scrape(t, u)...)
		}
		ap = scrape(t, fl.apiURL+"/metrics")
		wrong = wrong[:0]
		for _, c := range checks {
			s := wk
			if c.api {
				s = ap
			}
			if v, n := sumSamples(s, c.name, c.labels...); n == 0 || !c.ok(v) {
				wrong = append(wrong, fmt.Sprintf("%s%v: got %v (%d series), want %s", c.name, c.labels, v, n, c.want))
			}
		}
		// asynq's queue metrics, for every queue the api sees.
		_, queues := sumSamples(ap, "asynq_queue_size")
		if queues < 3 {
			wrong = append(wrong, fmt.Sprintf("asynq_queue_size: %d queues, want critical, default and bulk", queues))
		}
		for _, s := range ap {
			if s.name != "asynq_queue_size" {
				continue
			}
			q := s.labels["queue"]
			for _, name := range []string{"asynq_queue_latency_seconds", "asynq_tasks_processed_total", "asynq_tasks_failed_total"} {
				if _, n := sumSamples(ap, name, "queue", q); n != 1 {
					wrong = append(wrong, fmt.Sprintf("%s{queue=%q}: %d series, want 1", name, q, n))
				}
			}
			if _, n := sumSamples(ap, "asynq_tasks_enqueued_total", "queue", q, "state", "archived"); n != 1 {
				wrong = append(wrong, fmt.Sprintf("asynq_tasks_enqueued_total{queue=%q,state=archived}: %d series, want 1", q, n))
			}
		}
		if len(wrong) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, w := range wrong {
		t.Error(w)
	}

	// The values, for the README and for people reading the log: the
	// workers' counters added up, their gauge at its highest.
	var lines []string
	for who, samples := range map[string][]sample{"workers": wk, "api": ap} {
		agg := map[string]float64{}
		for _, s := range samples {
			if !strings.HasPrefix(s.name, "dingq_") && !strings.HasPrefix(s.name, "asynq_") ||
				strings.HasSuffix(s.name, "_bucket") {
				continue
			}
			keys := make([]string, 0, len(s.labels))
			for k, v := range s.labels {
				keys = append(keys, k+"="+strconv.Quote(v))
			}
			slices.Sort(keys)
			k := s.name + "{" + strings.Join(keys, ",") + "}"
			if s.name == "dingq_limiter_rate" {
				agg[k] = max(agg[k], s.value)
			} else {
				agg[k] += s.value
			}
		}
		for k, v := range agg {
			lines = append(lines, fmt.Sprintf("%-7s %s %g", who, k, v))
		}
	}
	slices.Sort(lines)
	t.Logf("scraped after %d messages (3 refused with 33012), a broadcast of 250 users and 5 callback events:\n%s",
		50, strings.Join(lines, "\n"))

	// No secret in any label or value.
	for _, u := range append(slices.Clone(workers), fl.apiURL+"/metrics") {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, secret := range []string{hrApp.secret, cbAESKey, "cbtoken42", sink.secret} {
			if strings.Contains(string(b), secret) {
				t.Errorf("%s shows a secret", u)
			}
		}
	}
	if n, dups, bad := sink.distinct(); n != 5 || dups != 0 || bad != 0 {
		t.Errorf("forward sink: %d events, %d duplicates, %d bad signatures; want 5, 0, 0", n, dups, bad)
	}
}
