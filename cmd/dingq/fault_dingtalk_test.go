package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/dingtalk/fake"
	"github.com/dingq/dingq/internal/config"
	"github.com/dingq/dingq/internal/redistest"
	"github.com/dingq/dingq/producer"
	"github.com/dingq/dingq/worker"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// misbehaviour is one way DingTalk fails in TestFaultDingTalkMisbehaves.
type misbehaviour struct {
	name string
	// fault is added to the fake; on asyncsend_v2 unless it names a path.
	fault fake.Fault
	// revoke revokes the app's token first, so the next send fetches one.
	revoke bool
	// failing says whether each faulted call fails an attempt (a latency
	// shorter than the client's timeout does not); perCall, that it fails
	// exactly one (not so for gettoken: an attempt waiting on another's
	// fetch fails with it).
	failing, perCall bool
	// minTook is the least the messages can take.
	minTook time.Duration
}

// misTimeout is the dingtalk.timeout of TestFaultDingTalkMisbehaves.
const misTimeout = 3 * time.Second

const misPage = "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"

var misbehaviours = []misbehaviour{
	{name: "slow 2s", fault: fake.Fault{Latency: fake.Duration(2 * time.Second)}, minTook: 2 * time.Second},
	{name: "hanging until the client timeout", fault: fake.Fault{Hang: true, Times: 10}, failing: true, perCall: true, minTook: misTimeout},
	{name: "slower than the client timeout", fault: fake.Fault{Latency: fake.Duration(misTimeout + time.Second), Times: 5},
		failing: true, perCall: true, minTook: misTimeout},
	{name: "HTTP 503", fault: fake.Fault{Status: 503, Times: 10}, failing: true, perCall: true},
	{name: "HTTP 500 on gettoken", fault: fake.Fault{Path: dingtalk.PathGetToken, Status: 500, Times: 3}, revoke: true, failing: true},
	{name: "malformed JSON", fault: fake.Fault{Body: `{"errcode":0,"errmsg":"ok","task_id":`, Times: 10}, failing: true, perCall: true},
	{name: "HTML error page", fault: fake.Fault{Status: 502, Body: misPage, Times: 10}, failing: true, perCall: true},
	{name: "connection closed", fault: fake.Fault{Close: true, Times: 10}, failing: true, perCall: true},
	{name: "a fifth of the calls each: 503, closed, malformed, slow", failing: true, perCall: true},
}

// connCounter counts a server's connections by state.
type connCounter struct {
	mu            sync.Mutex
	state         map[net.Conn]http.ConnState
	peak, opened  int
	closedByState map[http.ConnState]int
}

func newConnCounter() *connCounter {
	return &connCounter{state: map[net.Conn]http.ConnState{}, closedByState: map[http.ConnState]int{}}
}

func (c *connCounter) track(conn net.Conn, s http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch s {
	case http.StateClosed, http.StateHijacked:
		delete(c.state, conn)
		return
	case http.StateNew:
		c.opened++
	}
	c.state[conn] = s
	c.peak = max(c.peak, len(c.state))
}

// counts returns the connections open and, of them, those serving a call.
func (c *connCounter) counts() (open, active int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.state {
		if s == http.StateActive {
			active++
		}
	}
	return len(c.state), active
}

// settle waits until the server's connections are at most idle (the
// client's pool of idle connections to one host) and none serves a call.
func (c *connCounter) settle(t *testing.T, idle int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		open, active := c.counts()
		if open <= idle && active == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("connection leak: %d connections to the fake still open (%d serving a call) 10s after the run, want at most %d idle",
				open, active, idle)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// openFDs counts the process's open file descriptors (Linux), or -1.
func openFDs() int {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(fds)
}

// TestFaultDingTalkMisbehaves: an in-process worker (as `dingq worker`
// builds it, dingtalk.timeout 3s) against the fake DingTalk slow (2 s),
// hanging until the client gives up, slower than the timeout, answering
// HTTP 503, 500 on gettoken, malformed JSON, a gateway's HTML page,
// closing the connection, and a mix of these: every message ends sent,
// once at DingTalk, after exactly one more attempt per faulted call, each
// failed attempt classed transient. Afterwards no connection to the fake
// is left serving a call, and once the worker is shut down and the fake
// closed, no goroutine and no file descriptor is left over.
//
// It is not parallel: it counts the goroutines and file descriptors of
// the whole test process.
func TestFaultDingTalkMisbehaves(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server; skipped with -short")
	}
	rs := redistest.Start(t)
	ft := newFaultTotals(t)
	// What runs before the first round (this test's redis-server, what
	// other tests left idle) is not this test's to count.
	ignore := goleak.IgnoreCurrent()
	fdsBefore := openFDs()
	faultRounds(t, func(t *testing.T, round int) {
		faulted, retries, messages, peak := runMisbehaviours(t, rs, round)
		// No goroutine and no descriptor outlives the worker and the fake.
		var err error
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if err = goleak.Find(ignore); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Errorf("goroutine leak after the worker was shut down and the fake closed: %v", err)
		}
		fds := openFDs()
		for deadline := time.Now().Add(10 * time.Second); fds > fdsBefore && time.Now().Before(deadline); fds = openFDs() {
			time.Sleep(50 * time.Millisecond)
		}
		if fds > fdsBefore {
			t.Errorf("file descriptor leak: %d open after the run, %d before", fds, fdsBefore)
		}
		t.Logf("%d messages through %d misbehaviours: %d faulted calls, %d retries; at most %d connections to the fake at once; "+
			"no goroutine left over, %d file descriptors open (%d before)", messages, len(misbehaviours), faulted, retries, peak, fds, fdsBefore)
		ft.add(func(ft *faultTotals) {
			ft.messages += messages
			ft.faulted += faulted
			ft.retries += retries
		})
	})
}

// runMisbehaviours runs every misbehaviour against a worker of its own and
// shuts it all down; it returns the calls faulted, the attempts retried,
// the messages sent and the most connections open at once.
func runMisbehaviours(t *testing.T, rs *redistest.Server, round int) (faulted, retries, messages, peak int) {
	const (
		n           = 20
		concurrency = 10
		app         = "hr"
	)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	fk := fake.New([]fake.App{{Key: hrApp.key, Secret: hrApp.secret, AgentID: hrApp.agent}}, &fake.Options{NoDailyLimits: true})
	conns := newConnCounter()
	srv := httptest.NewUnstartedServer(fk)
	srv.Config.ConnState = conns.track
	srv.Start()

	client, err := newDingTalkClient(config.DingTalk{BaseURL: srv.URL, Timeout: misTimeout})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.WarnLevel)
	w, err := worker.New(worker.Config{
		Redis:            rdb,
		Apps:             []worker.App{{Name: app, AgentID: hrApp.agent, Credentials: dingtalk.Credentials{AppKey: hrApp.key, AppSecret: hrApp.secret}, RateLimit: worker.AppLimits{CallsPerSecond: -1, RecipientsPerMinute: -1}}},
		Client:           client,
		Concurrency:      concurrency,
		RetryBaseDelay:   50 * time.Millisecond,
		RetryMaxDelay:    200 * time.Millisecond,
		PollInterval:     20 * time.Millisecond,
		FleetCallsPer20s: -1,
		ShutdownTimeout:  5 * time.Second,
		Logger:           zap.New(core),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	p, err := producer.New(producer.Config{Redis: rdb, Apps: []string{app}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		// Everything this round started is stopped here, before the
		// goroutines are counted.
		w.Shutdown()
		_ = rdb.Close()
		conns.settle(t, http.DefaultMaxIdleConnsPerHost)
		if tr, ok := http.DefaultTransport.(*http.Transport); ok {
			tr.CloseIdleConnections()
		}
		srv.Close()
		if open, _ := conns.counts(); open != 0 {
			t.Errorf("%d connections still open after the fake closed", open)
		}
		conns.mu.Lock()
		peak = conns.peak
		conns.mu.Unlock()
		if n := logs.FilterMessageSnippet("panic").Len(); n > 0 {
			t.Errorf("the worker logged %d panics", n)
		}
	}()

	for i, m := range misbehaviours {
		tag := fmt.Sprintf("mis-%d-%d", round, i)
		count := n
		if m.name == misbehaviours[len(misbehaviours)-1].name {
			count = 2 * n
			for _, f := range []fake.Fault{{Status: 503}, {Close: true}, {Body: `{"errcode":`}, {Latency: fake.Duration(misTimeout + time.Second)}} {
				f.Path, f.Fraction = dingtalk.PathAsyncSendV2, 0.2
				if err := fk.AddFault(f); err != nil {
					t.Fatal(err)
				}
			}
		} else {
			f := m.fault
			if f.Path == "" {
				f.Path = dingtalk.PathAsyncSendV2
			}
			if err := fk.AddFault(f); err != nil {
				t.Fatalf("%s: %v", m.name, err)
			}
		}
		if m.revoke {
			fk.Revoke(hrApp.key)
		}
		before := fk.Stats()
		callsBefore := len(fk.Calls())
		start := time.Now()
		ids := make([]string, count)
		for j := range ids {
			id, err := p.Send(ctx, &producer.Message{App: app, UserIDs: []string{fmt.Sprintf("u%d", j)},
				Msg: dingtalk.TextMessage(fmt.Sprintf("hr %s %d", tag, j))})
			if err != nil {
				t.Fatal(err)
			}
			ids[j] = id
		}
		out := waitOutcomes(t, p, ids, 2*time.Minute)
		took := time.Since(start)
		fk.ClearFaults()
		after := fk.Stats()

		attempts, failedAttempts := 0, 0
		for id, o := range out {
			if o.Status != producer.StatusSent {
				t.Errorf("%s: message %s %s, want sent (%+v)", m.name, id, o.Status, o.LastError)
			}
			attempts += o.Attempts
			for _, a := range o.History {
				if a.Error == nil {
					continue
				}
				failedAttempts++
				if a.Error.Class != dingtalk.ClassTransient.String() {
					t.Errorf("%s: message %s attempt %d failed %s (%s), want transient", m.name, id, a.N, a.Error.Class, a.Error.Message)
				}
			}
		}
		// Every text once at DingTalk: a faulted call has no effect.
		seen := map[string]int{}
		for _, s := range fk.Sent() {
			if txt := s.Request.Msg.Text; txt != nil && strings.HasPrefix(txt.Content, "hr "+tag+" ") {
				seen[txt.Content]++
			}
		}
		for j := range count {
			if c := seen[fmt.Sprintf("hr %s %d", tag, j)]; c != 1 {
				t.Errorf("%s: message %d reached DingTalk %d times, want once", m.name, j, c)
			}
		}
		sends := 0
		for _, c := range fk.Calls()[callsBefore:] {
			if c.Path == dingtalk.PathAsyncSendV2 {
				sends++
			}
		}
		hit := after.Faulted - before.Faulted
		switch {
		case hit == 0:
			t.Errorf("%s: no call was faulted: the test tested nothing", m.name)
		case m.fault.Times > 0 && hit != m.fault.Times:
			t.Errorf("%s: %d calls faulted, want %d", m.name, hit, m.fault.Times)
		}
		// One attempt per call, and one more per faulted call.
		if m.perCall && (sends != attempts || attempts-count != hit) {
			t.Errorf("%s: %d asyncsend_v2 calls and %d attempts for %d messages and %d faulted calls, "+
				"want one attempt per call, one more per faulted call", m.name, sends, attempts, count, hit)
		}
		if m.failing && attempts == count {
			t.Errorf("%s: no attempt failed", m.name)
		}
		if !m.failing && (attempts != count || sends != count) {
			t.Errorf("%s: %d attempts and %d calls for %d messages, want one each", m.name, attempts, sends, count)
		}
		if failedAttempts != attempts-count {
			t.Errorf("%s: %d failed attempts recorded, want %d", m.name, failedAttempts, attempts-count)
		}
		if took < m.minTook {
			t.Errorf("%s: done in %s, faster than the fault allows (%s)", m.name, took, m.minTook)
		}
		// Nothing is left serving a call once the messages are sent.
		conns.settle(t, concurrency)
		open, _ := conns.counts()
		t.Logf("%-55s %2d messages in %6s: %2d faulted calls, %2d retries, %d connections open after", m.name, count,
			took.Round(time.Millisecond), hit, attempts-count, open)
		faulted += hit
		retries += attempts - count
		messages += count
	}
	return faulted, retries, messages, peak
}

// waitOutcomes polls the outcomes of ids until each is final, failing t
// after timeout.
func waitOutcomes(t *testing.T, p *producer.Producer, ids []string, timeout time.Duration) map[string]*producer.Outcome {
	t.Helper()
	out := make(map[string]*producer.Outcome, len(ids))
	deadline := time.Now().Add(timeout)
	for {
		for _, id := range ids {
			if out[id] != nil {
				continue
			}
			o, err := p.Status(context.Background(), id)
			if err != nil {
				t.Fatalf("Status(%s): %v", id, err)
			}
			if o.Status.Terminal() {
				out[id] = o
			}
		}
		if len(out) == len(ids) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages not final after %s", len(ids)-len(out), len(ids), timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
