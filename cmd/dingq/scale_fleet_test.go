package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/internal/redistest"
	"github.com/dingq/dingq/producer"
	"github.com/redis/go-redis/v9"
)

// The scale fleet tests run the fleet on what README's "scaling out"
// offers past one Redis server: a Redis Cluster, and a master found
// through Redis Sentinel that fails over in the middle of the run.

// fleetRedis is the Redis a fleet runs on.
type fleetRedis int

const (
	// redisServer is one redis-server.
	redisServer fleetRedis = iota
	// redisCluster is a Redis Cluster of 3 masters.
	redisCluster
	// redisSentinel is a master and its replica watched by a Sentinel.
	redisSentinel
)

// startFleetRedis starts the Redis r for t. It returns the redis section
// of the fleet's config (lines of YAML), a way to make clients of it, and
// the Sentinel when r is one.
func startFleetRedis(t *testing.T, r fleetRedis) (string, func(t *testing.T) redis.UniversalClient, *redistest.Sentinel) {
	t.Helper()
	quoted := func(addrs []string) string { return `"` + strings.Join(addrs, `", "`) + `"` }
	switch r {
	case redisCluster:
		c := redistest.StartCluster(t, 3)
		return "cluster: {addrs: [" + quoted(c.Addrs) + "]}",
			func(t *testing.T) redis.UniversalClient { return c.Client(t) }, nil
	case redisSentinel:
		s := redistest.StartSentinel(t)
		return fmt.Sprintf("sentinel: {master_name: %s, addrs: [%s]}", s.MasterName, quoted(s.Addrs)),
			func(t *testing.T) redis.UniversalClient { return s.Client(t) }, s
	}
	rs := redistest.Start(t)
	return "addr: " + rs.Addr, func(t *testing.T) redis.UniversalClient { return rs.Client(t) }, nil
}

// TestFleetCluster: three workers on a Redis Cluster of 3 masters send
// single messages of two apps and a 2,000-user broadcast: every message
// once, every user of the broadcast once, one gettoken per app.
//
// It and TestFleetSentinel do not run in parallel: they start more
// processes than any other test, and the pace tests are measured to 10%.
func TestFleetCluster(t *testing.T) {
	runScale(t, redisCluster)
}

// TestFleetSentinel: TestFleetCluster on a master found through Sentinel,
// which fails over to the replica while the fleet is sending, the way
// README says a failover is done by hand (writes paused, then SENTINEL
// FAILOVER): nothing is lost, and nothing is sent twice.
func TestFleetSentinel(t *testing.T) {
	runScale(t, redisSentinel)
}

// scaleUsers is the size of the scale tests' broadcast: 20 batches.
const scaleUsers = 2000

func runScale(t *testing.T, r fleetRedis) {
	hr, ops := hrApp, opsApp
	// 100 calls a second per app: the run lasts a few seconds, so a
	// failover lands in the middle of it.
	hr.rateLimit, ops.rateLimit = "{calls_per_second: 100, recipients_per_minute: 0}", "{calls_per_second: 100, recipients_per_minute: 0}"
	start := time.Now()
	fl := startFleetWith(t, fleetOpts{workers: 3, concurrency: 20, fakeArgs: []string{"--no-limits"},
		workerYAML: "results_delay: 100ms", redis: r}, hr, ops)
	t.Logf("fleet up in %s", time.Since(start).Round(time.Millisecond))
	ctx := context.Background()

	start = time.Now()
	var singles []string
	for _, app := range []string{"hr", "ops"} {
		singles = append(singles, fl.send(app, "before", 100)...) // fl.send queues from 8 goroutines
	}
	// 100 messages of one content coalesce into few calls (asynq's
	// groups).
	const coalText = "ops scale coalesced"
	coalUsers := userIDs("c", 100)
	var coalesced []string
	for _, u := range coalUsers {
		id, err := fl.producer.Send(ctx, &producer.Message{App: "ops", UserIDs: []string{u}, Msg: dingtalk.TextMessage(coalText), Coalesce: true})
		if err != nil {
			t.Fatalf("Send of a coalesced message: %v", err)
		}
		coalesced = append(coalesced, id)
	}
	const bcastText = "hr scale broadcast"
	users := userIDs("s", scaleUsers)
	acc, err := fl.producer.Enqueue(ctx, &producer.Message{App: "hr", UserIDs: users, Msg: dingtalk.TextMessage(bcastText)})
	if err != nil {
		t.Fatalf("Enqueue of the broadcast: %v", err)
	}
	if acc.Batches != scaleUsers/100 {
		t.Fatalf("broadcast: %d batches, want %d", acc.Batches, scaleUsers/100)
	}
	queued := time.Since(start)

	sendErrs, callsBefore := 0, 0
	if fl.sentinel != nil {
		// Messages go on being sent through the failover; a Send that
		// fails is sent again with the same idempotency key, as an
		// application would.
		stop := make(chan struct{})
		var during []string
		var sender sync.WaitGroup
		sender.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				for _, app := range []string{"hr", "ops"} {
					id, errs := fl.sendRetrying(app, fmt.Sprintf("%s during %d", app, i))
					if id == "" {
						return
					}
					during = append(during, id)
					sendErrs += errs
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
		old := fl.sentinel.MasterAddr(t)
		callsBefore = len(fl.sent())
		fo := time.Now()
		// SENTINEL FAILOVER alone loses what the old master takes until
		// the sentinel names the new one: see FailoverPaused and README.
		now := fl.sentinel.FailoverPaused(t, 5*time.Second)
		t.Logf("failover %s → %s in %s, %s after the run started, after %d calls to DingTalk", old, now,
			time.Since(fo).Round(time.Millisecond), fo.Sub(start).Round(time.Millisecond), callsBefore)
		time.Sleep(300 * time.Millisecond) // keeps sending a little on the new master
		close(stop)
		sender.Wait()
		singles = append(singles, during...)
		t.Logf("%d messages sent during the failover, %d Send errors retried", len(during), sendErrs)
	}
	for _, app := range []string{"hr", "ops"} {
		singles = append(singles, fl.send(app, "after", 50)...)
	}

	out := fl.waitSent(append(slices.Clone(singles), coalesced...), time.Minute)
	o := fl.waitFinished(acc.ID, time.Minute)
	took := time.Since(start)
	if b := o.Broadcast.Batches; b.Sent != acc.Batches || b.Failed != 0 || o.Broadcast.Recipients.Accepted != scaleUsers {
		t.Errorf("broadcast: %+v %+v, want %d batches sent, %d recipients accepted", b, o.Broadcast.Recipients, acc.Batches, scaleUsers)
	}
	retried := 0
	for _, o := range out {
		if o.Attempts != 1 {
			retried++
		}
	}
	if total := len(fl.sent()); fl.sentinel != nil && (callsBefore == 0 || callsBefore >= total) {
		t.Errorf("the failover came after %d of %d calls to DingTalk: not in the middle of the run", callsBefore, total)
	}
	sent, dups := fl.checkScale(len(singles), map[string][]string{bcastText: users, coalText: coalUsers})
	t.Logf("%d single messages, %d coalesced ones and a %d-user broadcast (queued in %s) sent in %s by 3 workers: "+
		"%d calls to DingTalk, %d sent twice, %d messages took more than one attempt, %d Send errors",
		len(singles), len(coalesced), scaleUsers, queued.Round(time.Millisecond), took.Round(time.Millisecond), sent, dups, retried, sendErrs)
	for _, app := range []string{"hr", "ops"} {
		if got, want := fl.fetches(app), 1; got != want {
			t.Errorf("gettoken calls for %s: got %d, want %d", app, got, want)
		}
	}
	fl.checkWorkerLogs()
}

// checkWorkerLogs fails the test if a worker met a CROSSSLOT error (keys
// of one script or transaction in two slots of a cluster), and logs how
// many warnings and errors the workers logged, with the first few.
func (fl *fleet) checkWorkerLogs() {
	fl.t.Helper()
	logs, _ := filepath.Glob(filepath.Join(fl.dir, "worker*.log"))
	var bad []string
	for _, path := range logs {
		b, err := os.ReadFile(path)
		if err != nil {
			fl.t.Fatal(err)
		}
		for l := range strings.Lines(string(b)) {
			if strings.Contains(l, "CROSSSLOT") {
				fl.t.Errorf("%s: %s", filepath.Base(path), l)
			}
			if strings.Contains(l, `"level":"warn"`) || strings.Contains(l, `"level":"error"`) {
				bad = append(bad, filepath.Base(path)+": "+strings.TrimSpace(l))
			}
		}
	}
	fl.t.Logf("the workers logged %d warnings and errors", len(bad))
	for _, l := range bad[:min(len(bad), 8)] {
		fl.t.Logf("  %s", lastBytes([]byte(l), 400))
	}
}

// sendRetrying sends a one-recipient message saying text for app, again
// and again with the same idempotency key while Send fails, and returns
// its id and the number of failed Sends.
func (fl *fleet) sendRetrying(app, text string) (string, int) {
	fl.t.Helper()
	m := &producer.Message{App: app, UserIDs: []string{"f1"}, Msg: dingtalk.TextMessage(text),
		IdempotencyKey: strings.ReplaceAll(text, " ", "-")}
	deadline := time.Now().Add(20 * time.Second)
	for errs := 0; ; errs++ {
		id, err := fl.producer.Send(context.Background(), m)
		if err == nil {
			return id, errs
		}
		if time.Now().After(deadline) {
			// Errorf, not Fatalf: this runs beside the test's goroutine.
			fl.t.Errorf("Send(%q) still fails after 20s: %v", text, err)
			return "", errs
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkScale fails the test unless DingTalk received each of singles
// single messages (by text) exactly once, and each text of byUser exactly
// once by each of its users, all with the token of their own app. It
// returns the calls DingTalk took and the messages and users sent more
// than once.
func (fl *fleet) checkScale(singles int, byUser map[string][]string) (calls, dups int) {
	fl.t.Helper()
	sent := fl.sent()
	seen := map[string]int{}
	got := map[string]map[string]int{} // text → user → sends
	for _, s := range sent {
		text := ""
		if s.Request.Msg.Text != nil {
			text = s.Request.Msg.Text.Content
		}
		app := fl.apps[strings.Fields(text + " ?")[0]]
		if s.App != app.key || s.Request.AgentID != app.agent {
			fl.t.Errorf("%q went out with the token of %q and agent_id %d; want %q's", text, s.App, s.Request.AgentID, app.key)
		}
		if _, ok := byUser[text]; !ok {
			seen[text]++
			continue
		}
		if got[text] == nil {
			got[text] = map[string]int{}
		}
		for _, u := range s.Request.Request().UserIDs {
			got[text][u]++
		}
	}
	for text, n := range seen {
		if n != 1 {
			dups++
			fl.t.Errorf("%q was sent %d times, want once", text, n)
		}
	}
	if n := len(seen); n != singles {
		fl.t.Errorf("distinct single messages DingTalk received: got %d, want %d", n, singles)
	}
	for text, users := range byUser {
		missing := 0
		for _, u := range users {
			switch n := got[text][u]; {
			case n == 0:
				missing++
			case n > 1:
				dups++
				fl.t.Errorf("%q to %s: sent %d times, want once", text, u, n)
			}
		}
		if missing > 0 {
			fl.t.Errorf("%q: %d of its %d users never got it", text, missing, len(users))
		}
		if n := len(got[text]); n != len(users) {
			fl.t.Errorf("%q: sent to %d users, want %d", text, n, len(users))
		}
	}
	return len(sent), dups
}
