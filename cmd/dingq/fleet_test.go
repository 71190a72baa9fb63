package main

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/dingtalk/fake"
	"github.com/dingq/dingq/internal/redistest"
	"github.com/dingq/dingq/producer"
	"github.com/redis/go-redis/v9"
)

// The fleet tests run what issue 3 promises with real processes: one
// fake-dingtalk, three `dingq worker` processes with concurrency 20 each,
// and a real redis-server; messages are queued with the Go producer.

// fleetApp is an app the fake knows and the workers send as.
type fleetApp struct {
	name, key, secret string
	agent             int64
	// workerSecret is the secret in the workers' config; if empty, secret.
	workerSecret string
	// rateLimit is the app's rate_limit in the workers' config, as YAML
	// flow; if empty, every per-app limit off.
	rateLimit string
}

type fleet struct {
	t        *testing.T
	fakeURL  string
	apps     map[string]fleetApp // by name
	producer *producer.Producer
	// bin, dir and env start more processes of the fleet (startAPI).
	bin, dir string
	env      []string
	// apiURL is where startAPI's api listens.
	apiURL string
	rdb    redis.UniversalClient
	// sentinel is the Sentinel the fleet finds its Redis through, if
	// fleetOpts.redis said so.
	sentinel *redistest.Sentinel
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildDir  string
)

// sharedBinary builds dingq once for every test of the package that runs
// it as processes.
func sharedBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		builtBin = filepath.Join(buildDir, "dingq")
		if out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// startFleet starts a redis-server, the fake with lifetime (0: DingTalk's)
// and no rate limits, and n worker processes for apps.
func startFleet(t *testing.T, n int, lifetime time.Duration, apps ...fleetApp) *fleet {
	return startLimitedFleet(t, n, 20, lifetime, []string{"--no-limits"}, apps...)
}

// startLimitedFleet is startFleet with concurrency per worker and fakeArgs
// added to the fake's command line.
func startLimitedFleet(t *testing.T, n, concurrency int, lifetime time.Duration, fakeArgs []string, apps ...fleetApp) *fleet {
	t.Helper()
	return startFleetWith(t, fleetOpts{workers: n, concurrency: concurrency, lifetime: lifetime, fakeArgs: fakeArgs}, apps...)
}

// fleetOpts say what startFleetWith starts.
type fleetOpts struct {
	workers, concurrency int
	lifetime             time.Duration
	fakeArgs             []string
	// workerYAML is added to the worker section of the config, as
	// "key: value" lines.
	workerYAML string
	// extraYAML is added to the config at the top level (whole sections).
	extraYAML string
	// dingtalkYAML is added to the dingtalk section of the config, as
	// "key: value" lines (robots, say).
	dingtalkYAML string
	// apiAddr, if set, is where startAPI's api listens.
	apiAddr string
	// apiYAML is added to the api section of the config, as "key: value"
	// lines.
	apiYAML string
	// redis is the Redis the fleet runs on; if zero, one redis-server.
	redis fleetRedis
}

func startFleetWith(t *testing.T, o fleetOpts, apps ...fleetApp) *fleet {
	t.Helper()
	n, concurrency, lifetime, fakeArgs := o.workers, o.concurrency, o.lifetime, o.fakeArgs
	if testing.Short() {
		t.Skip("starts processes; skipped with -short")
	}
	redisYAML, client, sen := startFleetRedis(t, o.redis)
	bin := sharedBinary(t)
	dir := t.TempDir()

	fakeAddr := freeAddr(t)
	args := append([]string{"fake-dingtalk", "--listen", fakeAddr}, fakeArgs...)
	if lifetime > 0 {
		args = append(args, "--token-lifetime", lifetime.String())
	}
	apiAddr := o.apiAddr
	if apiAddr == "" {
		apiAddr = freeAddr(t)
	}
	fl := &fleet{t: t, fakeURL: "http://" + fakeAddr, apps: map[string]fleetApp{}, apiURL: "http://" + apiAddr,
		rdb: client(t), sentinel: sen}
	var cfgApps strings.Builder
	var names []string
	for _, a := range apps {
		args = append(args, "--app", fmt.Sprintf("%s:%s:%d", a.key, a.secret, a.agent))
		secret := a.workerSecret
		if secret == "" {
			secret = a.secret
		}
		rl := a.rateLimit
		if rl == "" {
			rl = "{calls_per_second: 0, recipients_per_minute: 0}"
		}
		fmt.Fprintf(&cfgApps, "    - {name: %s, app_key: %s, app_secret: %s, agent_id: %d, rate_limit: %s}\n",
			a.name, a.key, secret, a.agent, rl)
		fl.apps[a.name] = a
		names = append(names, a.name)
	}
	start(t, dir, "fake", bin, nil, args...)
	waitHTTP(t, fl.fakeURL+fake.PathAdminStats)

	cfg := filepath.Join(dir, "config.yaml")
	writeFile(t, cfg, fmt.Sprintf(`
redis:
%s
dingtalk:
  base_url: %s
  api_base_url: %s
  timeout: 5s
  apps:
%s
%s
worker:
  concurrency: %d
  retry_base_delay: 100ms
  retry_max_delay: 1s
%s
api:
  listen: %s
%s
log:
  level: info
%s
`, indent(redisYAML, "  "), fl.fakeURL, fl.fakeURL, cfgApps.String(), indentBlock(o.dingtalkYAML, "  "), concurrency, indent(o.workerYAML, "  "), strings.TrimPrefix(fl.apiURL, "http://"), indent(o.apiYAML, "  "), o.extraYAML))
	env := []string{"DINGQ_CONFIG=" + cfg}
	fl.bin, fl.dir, fl.env = bin, dir, env
	for i := range n {
		start(t, dir, fmt.Sprintf("worker%d", i+1), bin, env, "worker")
	}

	p, err := producer.New(producer.Config{Redis: client(t), Apps: names})
	if err != nil {
		t.Fatal(err)
	}
	fl.producer = p
	return fl
}

// startAPI starts `dingq api` on the fleet's config (no tokens, loopback).
func (fl *fleet) startAPI() *apiClient {
	fl.t.Helper()
	start(fl.t, fl.dir, "api", fl.bin, fl.env, "api")
	waitHTTP(fl.t, fl.apiURL+"/readyz")
	return &apiClient{t: fl.t, base: fl.apiURL}
}

// indentBlock puts prefix before each line of s, keeping its own
// indentation (for nested YAML).
func indentBlock(s, prefix string) string {
	var b strings.Builder
	for l := range strings.Lines(strings.Trim(s, "\n")) {
		b.WriteString(prefix + strings.TrimRight(l, " \n") + "\n")
	}
	return b.String()
}

// indent puts prefix before each line of s.
func indent(s, prefix string) string {
	var b strings.Builder
	for l := range strings.Lines(strings.TrimSpace(s)) {
		b.WriteString(prefix + strings.TrimSpace(l) + "\n")
	}
	return b.String()
}

// send queues n text messages for app, each saying "<app> <tag> <i>", from
// eight goroutines, and returns their ids.
func (fl *fleet) send(app, tag string, n int) []string {
	fl.t.Helper()
	ids := make([]string, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < n; i += 8 {
				id, err := fl.producer.Send(context.Background(), &producer.Message{App: app,
					UserIDs: []string{fmt.Sprintf("u%d", i%500)},
					Msg:     dingtalk.TextMessage(fmt.Sprintf("%s %s %d", app, tag, i))})
				if err != nil {
					errs <- err
					return
				}
				ids[i] = id
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		fl.t.Fatalf("Send: %v", err)
	}
	return ids
}

// wait returns the outcomes of ids once every one is final, failing the
// test after timeout.
func (fl *fleet) wait(ids []string, timeout time.Duration) map[string]*producer.Outcome {
	fl.t.Helper()
	ctx := context.Background()
	out := make(map[string]*producer.Outcome, len(ids))
	deadline := time.Now().Add(timeout)
	for {
		for _, id := range ids {
			if out[id] != nil {
				continue
			}
			o, err := fl.producer.Status(ctx, id)
			if err != nil {
				fl.t.Fatalf("Status(%s): %v", id, err)
			}
			if o.Status.Terminal() {
				out[id] = o
			}
		}
		if len(out) == len(ids) {
			return out
		}
		if time.Now().After(deadline) {
			fl.t.Fatalf("%d of %d messages still not final after %s", len(ids)-len(out), len(ids), timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitSent is wait, failing the test unless every message was sent.
func (fl *fleet) waitSent(ids []string, timeout time.Duration) map[string]*producer.Outcome {
	fl.t.Helper()
	out := fl.wait(ids, timeout)
	bad := 0
	for id, o := range out {
		if o.Status != producer.StatusSent {
			if bad++; bad <= 5 {
				fl.t.Errorf("message %s: %s, want sent (last error %+v)", id, o.Status, o.LastError)
			}
		}
	}
	if bad > 0 {
		fl.t.FailNow()
	}
	return out
}

func (fl *fleet) stats() fake.Stats {
	fl.t.Helper()
	var s fake.Stats
	getJSON(fl.t, fl.fakeURL+fake.PathAdminStats, &s)
	return s
}

func (fl *fleet) fetches(app string) int { return fl.stats().TokenFetches[fl.apps[app].key] }

func (fl *fleet) sent() []fake.Sent {
	fl.t.Helper()
	var s []fake.Sent
	getJSON(fl.t, fl.fakeURL+fake.PathAdminSent, &s)
	return s
}

// checkSentOnce fails the test unless DingTalk received each message in
// want (by text) exactly once, with the token of the app it was for.
func (fl *fleet) checkSentOnce(want int) {
	fl.t.Helper()
	sent := fl.sent()
	keyOf := map[int64]string{}
	for _, a := range fl.apps {
		keyOf[a.agent] = a.key
	}
	seen := map[string]int{}
	for _, s := range sent {
		text := ""
		if s.Request.Msg.Text != nil {
			text = s.Request.Msg.Text.Content
		}
		seen[text]++
		app := fl.apps[strings.Fields(text + " ?")[0]]
		if s.App != app.key || keyOf[s.Request.AgentID] != app.key {
			fl.t.Errorf("%q went out with the token of %q and agent_id %d; want %q's", text, s.App, s.Request.AgentID, app.key)
		}
	}
	for text, n := range seen {
		if n != 1 {
			fl.t.Errorf("%q was sent %d times, want once", text, n)
		}
	}
	if got := len(seen); got != want {
		fl.t.Errorf("distinct messages DingTalk received: got %d, want %d", got, want)
	}
}

// tokenRefusals counts the calls the fake refused for a bad or expired
// token.
func (fl *fleet) tokenRefusals() int {
	fl.t.Helper()
	var calls []fake.Call
	getJSON(fl.t, fl.fakeURL+fake.PathAdminCalls, &calls)
	n := 0
	for _, c := range calls {
		if c.ErrCode == 88 || c.ErrCode == 40014 {
			n++
		}
	}
	return n
}

var (
	hrApp  = fleetApp{name: "hr", key: "dingfleethr", secret: "hr-fleet-secret-1", agent: 777}
	opsApp = fleetApp{name: "ops", key: "dingfleetops", secret: "ops-fleet-secret-2", agent: 888}
)

// TestFleetOneTokenPerApp: three workers, 2,000 messages for one app, then
// 1,000 for each of two apps: one gettoken per app for the whole fleet, and
// every message went out once with its own app's token.
func TestFleetOneTokenPerApp(t *testing.T) {
	t.Parallel()
	fl := startFleet(t, 3, 0, hrApp, opsApp)

	start := time.Now()
	fl.waitSent(fl.send("hr", "one-app", 2000), 2*time.Minute)
	t.Logf("2000 messages for one app sent by 3 workers in %s", time.Since(start).Round(time.Millisecond))
	if got, want := fl.fetches("hr"), 1; got != want {
		t.Errorf("gettoken calls for hr after 2000 messages: got %d, want %d", got, want)
	}

	start = time.Now()
	var hr, ops []string
	var wg sync.WaitGroup
	wg.Go(func() { hr = fl.send("hr", "two-apps", 1000) })
	wg.Go(func() { ops = fl.send("ops", "two-apps", 1000) })
	wg.Wait()
	fl.waitSent(append(hr, ops...), 2*time.Minute)
	t.Logf("1000+1000 messages for two apps sent in %s", time.Since(start).Round(time.Millisecond))
	for _, app := range []string{"hr", "ops"} {
		if got, want := fl.fetches(app), 1; got != want {
			t.Errorf("gettoken calls for %s: got %d, want %d", app, got, want)
		}
	}
	fl.checkSentOnce(4000)
}

// TestFleetTokenLifetime: with 5 s tokens and a steady stream of sends for
// 30 s, the fleet fetches about once per lifetime, ahead of expiry, and
// DingTalk never refuses a send for an expired token.
func TestFleetTokenLifetime(t *testing.T) {
	t.Parallel()
	const (
		lifetime = 5 * time.Second
		run      = 30 * time.Second
	)
	fl := startFleet(t, 3, lifetime, hrApp)

	var ids []string
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for end := time.Now().Add(run); time.Now().Before(end); <-tick.C {
		ids = append(ids, fl.send("hr", fmt.Sprintf("stream-%d", len(ids)), 2)...)
	}
	out := fl.waitSent(ids, time.Minute)
	for id, o := range out {
		if o.Attempts != 1 {
			t.Errorf("message %s: %d attempts, want 1", id, o.Attempts)
		}
	}
	fetches := fl.fetches("hr")
	t.Logf("%d messages over %s with %s tokens: %d gettoken calls", len(ids), run, lifetime, fetches)
	// A refresh starts with a tenth of the lifetime left: one fetch per
	// 4.5 s, plus the first.
	if lo, hi := int(run/lifetime), int(run/(lifetime*9/10))+2; fetches < lo || fetches > hi {
		t.Errorf("gettoken calls: got %d, want %d to %d", fetches, lo, hi)
	}
	if n := fl.tokenRefusals(); n != 0 {
		t.Errorf("sends refused for an expired token: got %d, want 0", n)
	}
	fl.checkSentOnce(len(ids))
}

// TestFleetRevokedToken: DingTalk revokes the token mid-run; every message
// is still sent, in its first attempt, and the fleet fetches exactly once
// more.
func TestFleetRevokedToken(t *testing.T) {
	t.Parallel()
	fl := startFleet(t, 3, 0, hrApp)
	before := fl.send("hr", "before", 300)
	fl.waitSent(before, time.Minute)

	var during []string
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 20 {
			during = append(during, fl.send("hr", fmt.Sprintf("during-%d", i), 15)...)
			time.Sleep(10 * time.Millisecond)
		}
	})
	time.Sleep(50 * time.Millisecond)
	var r struct {
		Revoked bool `json:"revoked"`
	}
	resp, err := http.Post(fl.fakeURL+fake.PathAdminRevoke+"?app="+hrApp.key, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	decodeBody(t, resp, &r)
	if !r.Revoked {
		t.Fatalf("revoke answered revoked=false")
	}
	wg.Wait()
	out := fl.waitSent(during, time.Minute)
	for id, o := range out {
		if o.Attempts != 1 {
			t.Errorf("message %s: %d attempts, want 1 (the token is refetched inside the attempt)", id, o.Attempts)
		}
	}
	if got, want := fl.fetches("hr"), 2; got != want {
		t.Errorf("gettoken calls: got %d, want %d", got, want)
	}
	refusals := fl.tokenRefusals()
	if refusals == 0 {
		t.Errorf("no send was refused for the revoked token: the revocation did not hit the run")
	}
	t.Logf("%d messages, %d sends refused with the revoked token, 2 gettoken calls", len(before)+len(during), refusals)
	fl.checkSentOnce(len(before) + len(during))
}

// TestFleetBadSecret: with a wrong app secret the first message fails with
// 40096 and the next 100 fail fast in every worker, without 100 more
// gettoken calls.
func TestFleetBadSecret(t *testing.T) {
	t.Parallel()
	bad := hrApp
	bad.workerSecret = "wrong-secret-on-purpose"
	fl := startFleet(t, 3, 0, bad)

	first := fl.wait(fl.send("hr", "first", 1), time.Minute)
	next := fl.wait(fl.send("hr", "next", 100), time.Minute)
	for id, o := range first {
		if o.Status != producer.StatusFailed || o.LastError == nil || o.LastError.Code != 40096 || o.Attempts != 1 {
			t.Errorf("first message %s: %+v, want failed with 40096 after 1 attempt", id, o)
		}
	}
	for id, o := range next {
		if o.Status != producer.StatusFailed || o.LastError == nil || o.LastError.Code != 40096 || o.Attempts != 1 {
			t.Errorf("message %s: %+v, want failed with 40096 after 1 attempt", id, o)
		}
	}
	if got, want := fl.fetches("hr"), 1; got != want {
		t.Errorf("gettoken calls: got %d, want %d", got, want)
	}
	if n := len(fl.sent()); n != 0 {
		t.Errorf("sends accepted: got %d, want 0", n)
	}
}

// TestFleetRateLimit: three workers with concurrency 50 against DingTalk's
// 20 calls a second, for two apps at once: every message is sent, DingTalk
// (almost) never throttles, and each app got a budget of its own.
// `dingq bench` measures the same at full size, and the utilization.
func TestFleetRateLimit(t *testing.T) {
	t.Parallel()
	hr, ops := hrApp, opsApp
	hr.rateLimit, ops.rateLimit = "{}", "{}" // DingTalk's standard edition
	fl := startLimitedFleet(t, 3, 50, 0, []string{"--calls-per-second", "20"}, hr, ops)
	var a, b []string
	var wg sync.WaitGroup
	wg.Go(func() { a = fl.send("hr", "limited", 100) })
	wg.Go(func() { b = fl.send("ops", "limited", 100) })
	wg.Wait()
	fl.waitSent(append(a, b...), 2*time.Minute)
	st := fl.stats()
	// One slot of slack a second: a worker held up more than 50 ms after
	// its slot on a loaded machine may draw a 90018, which is retried.
	if st.Throttled > 2 {
		t.Errorf("throttled answers: got %d, want at most 2", st.Throttled)
	}
	t.Logf("busiest second: hr %d, ops %d sends; %d throttled", st.MaxCallsPerSecond[hr.key], st.MaxCallsPerSecond[ops.key], st.Throttled)
	fl.checkSentOnce(200)
}

// TestFleetAdaptsToDingTalk: DingTalk allows 8 calls a second while the
// workers are told 20: they slow down by themselves, every message is sent
// and none fails.
func TestFleetAdaptsToDingTalk(t *testing.T) {
	t.Parallel()
	hr := hrApp
	hr.rateLimit = "{calls_per_second: 20}"
	fl := startLimitedFleet(t, 3, 50, 0, []string{"--calls-per-second", "8"}, hr)
	fl.waitSent(fl.send("hr", "adaptive", 100), 2*time.Minute) // fails on any message not sent
	st := fl.stats()
	if st.Throttled == 0 {
		t.Errorf("DingTalk never throttled: the test tested nothing")
	}
	t.Logf("100 messages, %d throttled answers, busiest second %d sends", st.Throttled, st.MaxCallsPerSecond[hr.key])
	fl.checkSentOnce(100)
}
