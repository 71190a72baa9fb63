package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/dingtalk/fake"
	"github.com/dingq/dingq/internal/outcome"
	"github.com/dingq/dingq/internal/redistest"
	"github.com/dingq/dingq/producer"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// The fault suite (issue 8) breaks a running fleet on purpose and checks
// that nothing is lost and that what is sent twice stays within what the
// design allows:
//
//   - TestFaultKillWorker and TestFaultKillWorkerBroadcast: kill -9 of a
//     worker in the middle of a run of single messages, and of a broadcast;
//   - TestFaultRedisRestart: redis-server (AOF, fsync always) restarted
//     under a running fleet and api;
//   - TestFaultDingTalkMisbehaves (fault_dingtalk_test.go): DingTalk slow,
//     hanging, answering 5xx, malformed JSON, HTML, or closing the
//     connection, against an in-process worker, with goroutines and
//     connections counted before and after.
//
// By default each runs once, in its short form (well under a minute), and
// not in parallel: each keeps two cores busy with four processes, and other
// tests of the package measure pace to 10%. With DINGQ_TEST_SOAK set to a
// duration (make soak) each runs its scenario again and again, bigger,
// until the duration has passed, the fleet tests side by side, and logs its
// totals at the end in a line starting "TOTALS".
//
// asynq takes a killed worker's tasks back only once their lease (30 s,
// renewed every 5 s by a live worker's heartbeat) has been expired for
// 30 s more, at a worker's start or its recoverer's tick (every minute):
// one to two minutes after the kill; and a broadcast's batch that was
// sending stays the killed delivery's for outcome.SendingStale (2 min).
// The short form fast-forwards these two clocks, and only them: it moves
// the orphaned leases and sending marks into the past, then starts the
// replacement worker, whose recoverer hands the tasks back at once. The
// soak form runs every other round on the real clock.

// soakDuration returns how long the soak form runs (DINGQ_TEST_SOAK), or 0
// for the short form. (dingq refuses to start with a DINGQ_* variable that
// is no configuration key, except DINGQ_TEST_*: the processes inherit it.)
func soakDuration(t *testing.T) time.Duration {
	t.Helper()
	v := os.Getenv("DINGQ_TEST_SOAK")
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("DINGQ_TEST_SOAK=%q: want a duration such as 10m", v)
	}
	return d
}

// faultRounds runs round as subtest "round-1", and in the soak form again
// as "round-2", … until the soak duration has passed or a round fails.
func faultRounds(t *testing.T, round func(t *testing.T, n int)) {
	t.Helper()
	d := soakDuration(t)
	end := time.Now().Add(d)
	for n := 1; ; n++ {
		if !t.Run(fmt.Sprintf("round-%d", n), func(t *testing.T) { round(t, n) }) {
			return
		}
		if time.Now().After(end) {
			return
		}
	}
}

// faultTotals add up what the rounds of one fault test did.
type faultTotals struct {
	mu                                      sync.Mutex
	start                                   time.Time
	rounds, messages, recipients            int
	kills, restarts, inFlight               int
	sendFailures, duplicates, lost, retries int
	faulted, stuck                          int
}

func newFaultTotals(t *testing.T) *faultTotals {
	ft := &faultTotals{start: time.Now()}
	t.Cleanup(func() {
		ft.mu.Lock()
		defer ft.mu.Unlock()
		verdict := "all rounds passed"
		if t.Failed() {
			verdict = "A ROUND FAILED (see above; its numbers are not counted)"
		}
		t.Logf("TOTALS %s, %s: %d rounds in %s: %d messages, %d broadcast recipients, %d kills (%d tasks in flight), "+
			"%d redis restarts (%d Sends failed while down, all retried), %d DingTalk faults (%d retries), "+
			"%d duplicates, %d outcomes stuck, lost = %d",
			t.Name(), verdict, ft.rounds, time.Since(ft.start).Round(time.Second), ft.messages, ft.recipients, ft.kills, ft.inFlight,
			ft.restarts, ft.sendFailures, ft.faulted, ft.retries, ft.duplicates, ft.stuck, ft.lost)
	})
	return ft
}

func (ft *faultTotals) add(f func(ft *faultTotals)) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	ft.rounds++
	f(ft)
}

// victim is a worker process the test runs by hand so it can kill it.
type victim struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
}

// startVictim starts a `dingq worker` of fl; it is interrupted (if still
// running) when the test ends, and its log shown if the test failed.
func (fl *fleet) startVictim(name string) *victim {
	t := fl.t
	t.Helper()
	logPath := filepath.Join(fl.dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(fl.bin, "worker")
	cmd.Env = append(os.Environ(), fl.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	v := &victim{name: name, cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(v.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-v.exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-v.exited
			t.Errorf("%s did not stop within 10s of SIGINT", name)
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("--- %s log (last 3000 bytes) ---\n%s", name, lastBytes(b, 3000))
		}
	})
	return v
}

// kill sends the worker SIGKILL and waits until it is gone.
func (v *victim) kill(t *testing.T) {
	t.Helper()
	if err := v.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %s: %v", v.name, err)
	}
	select {
	case <-v.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still running 10s after SIGKILL", v.name)
	}
}

// faultQueues are the queues whose tasks a killed worker may hold.
var faultQueues = []string{producer.QueueCritical, producer.QueueDefault, producer.QueueBulk}

// leaseKey is asynq's sorted set of the leases of queue q's active tasks
// (internal/base.LeaseKey in asynq v0.26): task id → expiry, in Unix
// seconds.
func leaseKey(q string) string { return "asynq:{" + q + "}:lease" }

// heartbeatSettle is how long after a kill every lease a live worker holds
// has been renewed: asynq's heartbeat renews them every 5 s.
const heartbeatSettle = 7 * time.Second

// orphanedLeases returns, by queue, the tasks whose lease nobody renewed
// since killed: the killed worker's tasks in flight. It must be called
// heartbeatSettle after the kill: a live worker's leases are renewed by
// then to more than killed + 30 s, and the killed worker's end by then.
func orphanedLeases(t *testing.T, rdb redis.UniversalClient, killed time.Time) map[string][]string {
	t.Helper()
	if wait := heartbeatSettle - time.Since(killed); wait > 0 {
		time.Sleep(wait)
	}
	out := map[string][]string{}
	limit := strconv.FormatInt(killed.Unix()+30, 10)
	for _, q := range faultQueues {
		ids, err := rdb.ZRangeByScore(context.Background(), leaseKey(q), &redis.ZRangeBy{Min: "-inf", Max: limit}).Result()
		if err != nil {
			t.Fatalf("reading the leases of %s: %v", q, err)
		}
		if len(ids) > 0 {
			out[q] = ids
		}
	}
	return out
}

// expireLeases fast-forwards the clock of the leases of orphans: it moves
// them to the epoch, as if two minutes had passed, so that the recoverer
// of the next worker to start hands their tasks back to the queue at once.
func expireLeases(t *testing.T, rdb redis.UniversalClient, orphans map[string][]string) {
	t.Helper()
	for q, ids := range orphans {
		zs := make([]redis.Z, len(ids))
		for i, id := range ids {
			zs[i] = redis.Z{Score: 1, Member: id}
		}
		// XX: a lease the recoverer took meanwhile is not brought back.
		if err := rdb.ZAddXX(context.Background(), leaseKey(q), zs...).Err(); err != nil {
			t.Fatalf("expiring leases of %s: %v", q, err)
		}
	}
}

func countOrphans(orphans map[string][]string) int {
	n := 0
	for _, ids := range orphans {
		n += len(ids)
	}
	return n
}

// expireSending fast-forwards the clock of broadcast id's batches that went
// sending before killed and are sending still (the killed worker's): their
// mark moves outcome.SendingStale into the past, so the next delivery of
// their task takes the killed one for dead at once. It returns how many.
func expireSending(t *testing.T, rdb redis.UniversalClient, id string, killed time.Time) int {
	t.Helper()
	ctx := context.Background()
	key := outcome.NewKeys("").Batches(id)
	fields, err := rdb.HGetAll(ctx, key).Result()
	if err != nil {
		t.Fatalf("reading the batches of %s: %v", id, err)
	}
	n := 0
	for b, state := range fields {
		if state != "s" || strings.HasSuffix(b, "@") || strings.HasSuffix(b, "!") {
			continue
		}
		at, err := strconv.ParseInt(fields[b+"@"], 10, 64)
		if err != nil || at >= killed.UnixMilli() {
			continue
		}
		if err := rdb.HSet(ctx, key, b+"@", at-outcome.SendingStale.Milliseconds()-time.Second.Milliseconds()).Err(); err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

// sentCount is how many asyncsend_v2 calls the fake accepted, read from
// its stats: cheap enough to poll.
func sentCount(fakeURL string) (int, error) {
	resp, err := http.Get(fakeURL + fake.PathAdminStats)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var s fake.Stats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return 0, err
	}
	return s.Sent, nil
}

// waitSentCount polls the fake until it accepted at least n sends.
func (fl *fleet) waitSentCount(n int, timeout time.Duration) int {
	fl.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, err := sentCount(fl.fakeURL)
		if err != nil {
			fl.t.Fatal(err)
		}
		if got >= n {
			return got
		}
		if time.Now().After(deadline) {
			fl.t.Fatalf("the fake accepted %d sends after %s, want %d", got, timeout, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sendAsync queues n one-user messages for app saying "<app> <tag> <i>"
// from eight goroutines, in the background; the channel gets their ids,
// or the first error.
func sendAsync(p *producer.Producer, app, tag string, n int) <-chan sendOutcome {
	ch := make(chan sendOutcome, 1)
	go func() {
		ids := make([]string, n)
		var first atomic.Pointer[error]
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := g; i < n && first.Load() == nil; i += 8 {
					id, err := p.Send(context.Background(), &producer.Message{App: app,
						UserIDs: []string{fmt.Sprintf("u%d", i%500)},
						Msg:     dingtalk.TextMessage(fmt.Sprintf("%s %s %d", app, tag, i))})
					if err != nil {
						err = fmt.Errorf("Send %d: %w", i, err)
						first.CompareAndSwap(nil, &err)
						return
					}
					ids[i] = id
				}
			})
		}
		wg.Wait()
		if err := first.Load(); err != nil {
			ch <- sendOutcome{err: *err}
			return
		}
		ch <- sendOutcome{ids: ids}
	}()
	return ch
}

type sendOutcome struct {
	ids []string
	err error
}

// countTexts counts, for every text message the fake accepted whose text
// starts with prefix, how many times it was accepted.
func (fl *fleet) countTexts(prefix string) map[string]int {
	fl.t.Helper()
	seen := map[string]int{}
	for _, s := range fl.sent() {
		if s.Request.Msg.Text != nil && strings.HasPrefix(s.Request.Msg.Text.Content, prefix) {
			seen[s.Request.Msg.Text.Content]++
		}
	}
	return seen
}

// checkTexts fails the test unless DingTalk accepted each of the n texts
// "<prefix><i>" at least once, and returns how many it accepted more than
// once and how many never.
func (fl *fleet) checkTexts(prefix string, n int) (dups, lost int) {
	fl.t.Helper()
	seen := fl.countTexts(prefix)
	for i := range n {
		switch c := seen[fmt.Sprintf("%s%d", prefix, i)]; {
		case c == 0:
			if lost++; lost <= 5 {
				fl.t.Errorf("%s%d: never reached DingTalk", prefix, i)
			}
		case c > 1:
			dups++
			fl.t.Logf("%s%d: DingTalk got it %d times", prefix, i, c)
		}
	}
	if len(seen) != n {
		fl.t.Errorf("distinct messages DingTalk received: got %d, want %d", len(seen), n)
	}
	return dups, lost
}

// killPlan is what one round of a kill test does.
type killPlan struct {
	// at are the sends accepted by DingTalk after which a worker is killed.
	at []int
	// realClock: wait for asynq and the outcome store to take the killed
	// worker's tasks back by themselves, rather than fast-forward them.
	realClock bool
	timeout   time.Duration
}

// killAndReplace kills v once DingTalk has accepted at sends, starts a
// worker in its place (after fast-forwarding, unless realClock) and
// returns it with the tasks v held in flight. broadcast, if set, is the
// broadcast whose sending batches are fast-forwarded too. seen holds the
// tasks earlier kills of the round left orphaned (on the real clock they
// still are): they are not counted again.
func (fl *fleet) killAndReplace(v *victim, at int, name string, realClock bool, broadcast string, seen map[string]bool) (*victim, int) {
	t := fl.t
	t.Helper()
	sentAt := fl.waitSentCount(at, 2*time.Minute)
	v.kill(t)
	// Once it is gone: whatever it wrote (a lease, a batch's sending
	// mark) it wrote before.
	killed := time.Now()
	var next *victim
	if realClock {
		next = fl.startVictim(name)
	}
	orphans := orphanedLeases(t, fl.rdb, killed)
	batches := 0
	if !realClock {
		expireLeases(t, fl.rdb, orphans)
		if broadcast != "" {
			batches = expireSending(t, fl.rdb, broadcast, killed)
		}
		next = fl.startVictim(name)
	}
	held, byQueue := 0, map[string]int{}
	for q, ids := range orphans {
		for _, id := range ids {
			if !seen[id] {
				seen[id] = true
				held++
				byQueue[q]++
			}
		}
	}
	t.Logf("kill -9 %s after %d sends: %d tasks in flight %v, %d sending batches fast-forwarded; %s replaces it (%s)",
		v.name, sentAt, held, byQueue, batches, name, map[bool]string{true: "real clock", false: "clocks fast-forwarded"}[realClock])
	return next, held
}

// runKills kills victim v at each point of plan, each time starting the
// next victim in its place (killAndReplace, with broadcast), and returns
// how many tasks the killed workers held in flight.
func (fl *fleet) runKills(v *victim, plan killPlan, broadcast string) int {
	inFlight, seen := 0, map[string]bool{}
	for k, at := range plan.at {
		var held int
		v, held = fl.killAndReplace(v, at, fmt.Sprintf("victim-%d", k+2), plan.realClock, broadcast, seen)
		inFlight += held
	}
	return inFlight
}

// TestFaultKillWorker: kill -9 of one of three workers after 1,000 of
// 5,000 messages went out, and a worker started in its place: every
// message ends sent, and DingTalk got at most the killed worker's
// in-flight messages twice.
func TestFaultKillWorker(t *testing.T) {
	soak := soakDuration(t) > 0
	if soak {
		t.Parallel() // make soak runs the fleet tests side by side
	}
	ft := newFaultTotals(t)
	const concurrency = 20
	faultRounds(t, func(t *testing.T, round int) {
		n, plan := 5000, killPlan{at: []int{1000}, timeout: 90 * time.Second}
		if soak {
			n = 20000
			plan = killPlan{at: []int{3000, 8000, 13000}, realClock: round%2 == 0, timeout: 5 * time.Minute}
		}
		started := time.Now()
		fl := startFleetWith(t, fleetOpts{workers: 2, concurrency: concurrency,
			fakeArgs: []string{"--no-limits", "--no-daily-limits",
				"--fault", `{"path":"/topapi/message/corpconversation/asyncsend_v2","latency":"5ms"}`}}, hrApp)
		v := fl.startVictim("victim-1")
		tag := fmt.Sprintf("kill-%d", round)
		sending := sendAsync(fl.producer, "hr", tag, n)
		inFlight := fl.runKills(v, plan, "")
		res := <-sending
		if res.err != nil {
			t.Fatal(res.err)
		}
		out := fl.waitSent(res.ids, plan.timeout)
		took := time.Since(started)
		dups, lost := fl.checkTexts("hr "+tag+" ", n)
		retried := 0
		for _, o := range out {
			if o.Attempts > 1 {
				retried++
			}
		}
		t.Logf("%d messages, %d kills, %d tasks in flight at the kills: all sent in %s; %d sent twice, %d lost, %d took more than one attempt",
			n, len(plan.at), inFlight, took.Round(time.Millisecond), dups, lost, retried)
		if limit := len(plan.at) * concurrency; dups > limit {
			t.Errorf("%d messages sent twice, more than the %d the killed workers could hold in flight", dups, limit)
		}
		if dups > inFlight {
			t.Errorf("%d messages sent twice, more than the %d tasks the killed workers held", dups, inFlight)
		}
		ft.add(func(ft *faultTotals) {
			ft.messages += n
			ft.kills += len(plan.at)
			ft.inFlight += inFlight
			ft.duplicates += dups
			ft.lost += lost
		})
	})
}

// TestFaultKillWorkerBroadcast: kill -9 of one of three workers in the
// middle of a 20,000-user broadcast, and a worker started in its place:
// every user gets it, the broadcast ends done, and no more users get it
// twice than the killed worker's batches in flight held.
func TestFaultKillWorkerBroadcast(t *testing.T) {
	soak := soakDuration(t) > 0
	if soak {
		t.Parallel() // make soak runs the fleet tests side by side
	}
	ft := newFaultTotals(t)
	const concurrency = 8
	faultRounds(t, func(t *testing.T, round int) {
		users, plan := 20000, killPlan{at: []int{60}, timeout: 90 * time.Second}
		if soak {
			users = 50000
			plan = killPlan{at: []int{60, 200, 340}, realClock: round%2 == 0, timeout: 6 * time.Minute}
		}
		started := time.Now()
		fl := startFleetWith(t, fleetOpts{workers: 2, concurrency: concurrency,
			fakeArgs: []string{"--no-limits", "--no-daily-limits",
				"--fault", `{"path":"/topapi/message/corpconversation/asyncsend_v2","latency":"150ms"}`},
			workerYAML: "results_delay: 100ms"}, hrApp)
		v := fl.startVictim("victim-1")
		text := fmt.Sprintf("hr kill broadcast %d", round)
		ids := userIDs(fmt.Sprintf("k%d-", round), users)
		acc, err := fl.producer.Enqueue(context.Background(), &producer.Message{App: "hr", UserIDs: ids, Msg: dingtalk.TextMessage(text)})
		if err != nil {
			t.Fatal(err)
		}
		inFlight := fl.runKills(v, plan, acc.ID)
		o := fl.waitFinished(acc.ID, plan.timeout)
		took := time.Since(started)
		if o.Status != producer.StatusDone || o.Broadcast.Batches.Sent != acc.Batches || o.Broadcast.Batches.Failed != 0 ||
			o.Broadcast.Recipients.Accepted != users {
			t.Errorf("broadcast %s %+v %+v, want done with %d batches sent and %d recipients accepted",
				o.Status, o.Broadcast.Batches, o.Broadcast.Recipients, acc.Batches, users)
		}
		got := map[string]int{}
		calls := 0
		for _, s := range fl.sent() {
			if s.Request.Msg.Text == nil || s.Request.Msg.Text.Content != text {
				continue
			}
			calls++
			for _, u := range s.Request.Request().UserIDs {
				got[u]++
			}
		}
		dups, lost := 0, 0
		for _, u := range ids {
			switch got[u] {
			case 0:
				if lost++; lost <= 5 {
					t.Errorf("user %s never got the broadcast", u)
				}
			case 1:
			default:
				dups++
			}
		}
		t.Logf("%d users in %d batches, %d kills, %d tasks in flight at the kills: done in %s, %d calls; %d users got it twice, %d never",
			users, acc.Batches, len(plan.at), inFlight, took.Round(time.Millisecond), calls, dups, lost)
		if limit := len(plan.at) * concurrency * dingtalk.MaxUserIDs; dups > limit {
			t.Errorf("%d users got it twice, more than the %d the killed workers' batches in flight held", dups, limit)
		}
		if dups > inFlight*dingtalk.MaxUserIDs {
			t.Errorf("%d users got it twice, more than the %d tasks in flight at the kills could hold", dups, inFlight)
		}
		ft.add(func(ft *faultTotals) {
			ft.recipients += users
			ft.kills += len(plan.at)
			ft.inFlight += inFlight
			ft.duplicates += dups
			ft.lost += lost
		})
	})
}

// retarget points fl (its config, hence every process started after, its
// client and its producer) at rs in place of the Redis startFleetWith
// started.
func (fl *fleet) retarget(rs *redistest.Server) {
	t := fl.t
	t.Helper()
	old := fl.rdb.(*redis.Client).Options().Addr
	cfg := filepath.Join(fl.dir, "config.yaml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("addr: "+old+"\n")) {
		t.Fatalf("config.yaml has no \"addr: %s\":\n%s", old, b)
	}
	writeFile(t, cfg, strings.Replace(string(b), "addr: "+old+"\n", "addr: "+rs.Addr+"\n", 1))
	fl.rdb = rs.Client(t)
	p, err := producer.New(producer.Config{Redis: fl.rdb, Apps: []string{"hr"}})
	if err != nil {
		t.Fatal(err)
	}
	fl.producer = p
}

// postMessage sends m through the api at base, once: its id, or why not.
func postMessage(base string, m *producer.Message) (string, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	resp, err := http.Post(base+"/v1/messages", "application/json", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("POST /v1/messages: HTTP %d %s", resp.StatusCode, b)
	}
	var acc producer.Accepted
	if err := json.Unmarshal(b, &acc); err != nil {
		return "", fmt.Errorf("POST /v1/messages: %w: %s", err, b)
	}
	return acc.ID, nil
}

// TestFaultRedisRestart: redis-server (AOF, fsync always) is stopped with
// SIGTERM and, 2 s later, started again on its port and directory, while
// two workers send and the api and the producer queue 3,000 messages. The
// workers and the api reconnect by themselves; every message accepted
// ends sent, and so does every message whose Send failed while Redis was
// down, sent again with its idempotency key once it is back; DingTalk gets
// each at least once and at most the messages in flight at the outage
// twice. A worker that had DingTalk's answer while Redis was down writes it
// once Redis is back (no outcome stays sending), and asynq ends the tasks
// whose end it could not write within seconds of Redis coming back (the
// worker's finishAfterCancel hook), not when their leases expire.
func TestFaultRedisRestart(t *testing.T) {
	soak := soakDuration(t) > 0
	if soak {
		t.Parallel() // make soak runs the fleet tests side by side
	}
	ft := newFaultTotals(t)
	const concurrency = 20
	faultRounds(t, func(t *testing.T, round int) {
		n, restarts, down, timeout := 3000, 1, 2*time.Second, time.Minute
		if soak {
			n, restarts, down, timeout = 12000, 3, time.Duration(round%4+1)*time.Second, 5*time.Minute
		}
		rs := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
		fl := startFleetWith(t, fleetOpts{workers: 0, concurrency: concurrency,
			fakeArgs: []string{"--no-limits", "--no-daily-limits",
				"--fault", `{"path":"/topapi/message/corpconversation/asyncsend_v2","latency":"5ms"}`}}, hrApp)
		fl.retarget(rs)
		// At debug, a worker logs every task it ran: a task no log names
		// never reached a worker.
		wenv := append(slices.Clone(fl.env), "DINGQ_LOG_LEVEL=debug")
		for i := range 2 {
			start(t, fl.dir, fmt.Sprintf("worker%d", i+1), fl.bin, wenv, "worker")
		}
		fl.startAPI()
		started := time.Now()

		tag := fmt.Sprintf("restart-%d", round)
		message := func(i int) *producer.Message {
			return &producer.Message{App: "hr", UserIDs: []string{fmt.Sprintf("u%d", i%500)},
				Msg: dingtalk.TextMessage(fmt.Sprintf("hr %s %d", tag, i)), IdempotencyKey: fmt.Sprintf("%s-%d", tag, i)}
		}
		ids := make([]string, n)
		var (
			next, accepted atomic.Int64
			mu             sync.Mutex
			failed         []int
			failures       = map[string]int{} // by the way it was sent
		)
		var wg sync.WaitGroup
		for g := range 8 {
			via := "producer"
			if g < 2 {
				via = "api" // two senders of eight go through the api
			}
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= n {
						return
					}
					var id string
					var err error
					if via == "api" {
						id, err = postMessage(fl.apiURL, message(i))
					} else {
						id, err = fl.producer.Send(context.Background(), message(i))
					}
					if err != nil {
						mu.Lock()
						failed = append(failed, i)
						failures[via]++
						mu.Unlock()
						time.Sleep(20 * time.Millisecond)
						continue
					}
					ids[i] = id
					accepted.Add(1)
					time.Sleep(time.Millisecond) // spreads the run over a few seconds
				}
			})
		}
		var downAt, upAt time.Time
		for k := range restarts {
			for accepted.Load() < int64((k+1)*n/(restarts+1)) && next.Load() < int64(n) {
				time.Sleep(5 * time.Millisecond)
			}
			sent, _ := sentCount(fl.fakeURL)
			if k == 0 {
				downAt = time.Now()
			}
			stopped := time.Now()
			rs.Stop(t)
			time.Sleep(down)
			rs.Restart(t)
			upAt = time.Now()
			t.Logf("redis-server restarted (SIGTERM, %s down, back in %s) after %d messages accepted, %d sent",
				down, upAt.Sub(stopped).Round(time.Millisecond), accepted.Load(), sent)
		}
		wg.Wait()
		sendFailures := len(failed)

		// What failed is sent again, as an application would: same
		// message, same idempotency key.
		retryUntil := time.Now().Add(30 * time.Second)
		for _, i := range failed {
			for {
				id, err := fl.producer.Send(context.Background(), message(i))
				if err == nil {
					ids[i] = id
					break
				}
				if time.Now().After(retryUntil) {
					t.Fatalf("Send %d still fails 30s after Redis came back: %v", i, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		// And through the api: it reconnected.
		if id, err := postMessage(fl.apiURL, message(0)); err != nil || id != ids[0] {
			t.Errorf("the api after the restart: %q, %v; want %s", id, err, ids[0])
		}

		// Tasks whose end asynq could not write during the outage end at
		// its syncer's next pass, 5 s on, not at their leases' expiry.
		orphans := orphanedLeases(t, fl.rdb, upAt)
		leftActive := countOrphans(orphans)
		for countOrphans(orphans) > 0 && time.Since(upAt) < 20*time.Second {
			time.Sleep(500 * time.Millisecond)
			orphans = orphanedLeases(t, fl.rdb, upAt)
		}
		// A task whose dequeue Redis ran as it stopped, its answer lost, never
		// reached a worker: only its lease's expiry brings it back, one to
		// two minutes on (at most one per worker and restart).
		lostDequeues := map[string][]string{}
		for q, tids := range orphans {
			for _, id := range tids {
				if fl.countLogLines("worker*.log", `"task_id":"`+id+`"`) == 0 {
					lostDequeues[q] = append(lostDequeues[q], id)
				} else {
					t.Errorf("task %s ran, and is still active, its lease not renewed, %s after Redis came back",
						id, time.Since(upAt).Round(time.Second))
				}
			}
		}
		if n := countOrphans(lostDequeues); n > 2*restarts {
			t.Errorf("%d tasks dequeued as Redis stopped never reached a worker, more than one per worker and restart (%d): %v",
				n, 2*restarts, lostDequeues)
		} else if n > 0 && !soak {
			expireLeases(t, fl.rdb, lostDequeues) // the short form does not wait for the real clock
			start(t, fl.dir, "worker3", fl.bin, wenv, "worker")
		}
		out, stuck := fl.waitFinal(ids, timeout)
		took := time.Since(started)
		for id, o := range out {
			if o.Status != producer.StatusSent {
				t.Errorf("message %s: %s, want sent (last error %+v)", id, o.Status, o.LastError)
			}
		}
		unrecorded := fl.countLogLines("worker*.log", "message sent but its outcome could not be recorded")
		if unrecorded > 0 {
			t.Errorf("%d outcomes of messages DingTalk accepted were not recorded", unrecorded)
		}
		for _, id := range stuck {
			o, _ := fl.producer.Status(context.Background(), id)
			b, _ := json.Marshal(o)
			t.Errorf("message %s stays %s with no task left to end it: %s", id, o.Status, b)
		}
		waited := fl.countLogLines("worker*.log", "Redis write succeeded after retrying")
		dups, lost := fl.checkTexts("hr "+tag+" ", n)
		retried := 0
		for _, o := range out {
			if o.Attempts > 1 {
				retried++
			}
		}
		if limit := 2 * concurrency * restarts; dups > limit {
			t.Errorf("%d messages sent twice, more than the %d in flight at the outages", dups, limit)
		}
		// Both workers came back by themselves: each wrote its heartbeat
		// since (asynq's server records expire 10 s after the last).
		if wait := 11*time.Second - time.Since(upAt); wait > 0 {
			time.Sleep(wait)
		}
		servers, err := asynq.NewInspectorFromRedisClient(fl.rdb).Servers()
		if err != nil {
			t.Fatal(err)
		}
		before := 0
		for _, s := range servers {
			if s.Started.Before(downAt) {
				before++
			}
		}
		if before != 2 {
			t.Errorf("workers started before the outage with a heartbeat 11s after it: got %d, want 2", before)
		}
		t.Logf("%d messages (%d accepted at once, %d Sends failed while Redis was down %v and were sent again), "+
			"%d restarts, %d tasks left active by the outage (%d of them dequeued as Redis stopped and never received), "+
			"%d writes that waited for Redis: all final in %s; %d outcomes not recorded, %d stuck sending, %d sent twice, "+
			"%d lost, %d took more than one attempt",
			n, n-sendFailures, sendFailures, failures, restarts, leftActive, countOrphans(lostDequeues), waited,
			took.Round(time.Millisecond), unrecorded, len(stuck), dups, lost, retried)
		ft.add(func(ft *faultTotals) {
			ft.messages += n
			ft.restarts += restarts
			ft.sendFailures += sendFailures
			ft.duplicates += dups
			ft.lost += lost
			ft.stuck += len(stuck)
		})
	})
}

// waitFinal polls the outcomes of ids until each is final or stuck: not
// final with no task in the queue for 10 s, so that nothing will ever make
// it final. It fails the test after timeout, telling what the outcomes and
// tasks of the messages still open say.
func (fl *fleet) waitFinal(ids []string, timeout time.Duration) (map[string]*producer.Outcome, []string) {
	fl.t.Helper()
	ctx := context.Background()
	insp := asynq.NewInspectorFromRedisClient(fl.rdb)
	start := time.Now()
	out := make(map[string]*producer.Outcome, len(ids))
	taskless := map[string]time.Time{} // since when an open message has had no task
	var stuck []string
	for {
		var open []string
		for _, id := range ids {
			o, err := fl.producer.Status(ctx, id)
			if err != nil {
				fl.t.Fatalf("Status(%s): %v", id, err)
			}
			if o.Status.Terminal() {
				out[id] = o
			} else {
				open = append(open, id)
			}
		}
		ids = open
		if len(open) <= 100 { // tasks are looked for once few messages are left
			ids = nil
			for _, id := range open {
				if _, err := insp.GetTaskInfo(producer.QueueDefault, id); err == nil {
					delete(taskless, id)
				} else if since, ok := taskless[id]; !ok {
					taskless[id] = time.Now()
				} else if time.Since(since) > 10*time.Second {
					stuck = append(stuck, id)
					continue
				}
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			return out, stuck
		}
		if time.Since(start) > timeout {
			for _, id := range ids[:min(len(ids), 5)] {
				o, _ := fl.producer.Status(ctx, id)
				b, _ := json.Marshal(o)
				task := "no task in the queue"
				if info, err := insp.GetTaskInfo(producer.QueueDefault, id); err == nil {
					task = fmt.Sprintf("task %s, retried %d, last error %q", info.State, info.Retried, info.LastErr)
				}
				fl.t.Logf("message %s: %s; %s", id, b, task)
			}
			fl.t.Fatalf("%d of %d messages still not final after %s", len(ids), len(out)+len(ids)+len(stuck), timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// countLogLines counts the lines holding sub in the logs of fl's
// processes whose file names match glob.
func (fl *fleet) countLogLines(glob, sub string) int {
	fl.t.Helper()
	paths, _ := filepath.Glob(filepath.Join(fl.dir, glob))
	n := 0
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			fl.t.Fatal(err)
		}
		n += strings.Count(string(b), sub)
	}
	return n
}
