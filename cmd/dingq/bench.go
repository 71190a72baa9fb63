package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/dingtalk/fake"
	"github.com/dingq/dingq/producer"
	"github.com/redis/go-redis/v9"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

// benchFlags are dingq bench's settings.
type benchFlags struct {
	scenarios   []string
	redisAddr   string
	workers     int
	concurrency int
	messages    int
	users       int
	callsLimit  int
	recipLimit  int
	maxWait     time.Duration
	// The broadcast scenario's users and the fake's limits for it.
	bcUsers, bcRPM, bcCalls int
	// keepLogs keeps the processes' logs; logLevel is their log.level.
	keepLogs bool
	logLevel string
	// benchOut, if set, gets each scenario's figures as Go benchmark
	// result lines (--bench-out).
	benchOut io.Writer
}

// benchLine writes a scenario's figures to f.benchOut, if set, as one Go
// benchmark result line: "BenchmarkScenario/NAME 1 VALUE UNIT …", so that
// make bench reports them beside go test -bench's.
func (f *benchFlags) benchLine(name string, figures ...benchFigure) {
	if f.benchOut == nil {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "BenchmarkScenario/%s\t1", name)
	for _, fig := range figures {
		fmt.Fprintf(&b, "\t%s %s", strconv.FormatFloat(fig.value, 'f', -1, 64), fig.unit)
	}
	fmt.Fprintln(f.benchOut, b.String())
}

// benchFigure is one measured figure of a scenario and its unit (no
// spaces).
type benchFigure struct {
	value float64
	unit  string
}

// benchScenarios are the scenarios dingq bench knows, in the order "all"
// runs them.
var benchScenarios = []string{"calls", "two-apps", "adaptive", "recipients", "broadcast"}

func newBenchCmd() *cobra.Command {
	f := &benchFlags{}
	var benchOut string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure how fast the fleet sends inside DingTalk's rate limits",
		Long: `Runs worker processes (this binary) against a rate-limited fake DingTalk and a
Redis, queues messages, and prints how close the fleet came to the limits:

  calls       --messages single-user messages for one app, fake at --calls-per-second
  two-apps    the same for two apps at once: each gets its own rate
  adaptive    the fake allows half of --calls-per-second, the workers are told the full
              figure: they must slow down by themselves, and send everything
  recipients  --users recipients in 100-user batches, fake at --recipients-per-minute
  broadcast   one broadcast of --broadcast-users users POSTed to a dingq api process,
              fake at --broadcast-recipients-per-minute and --broadcast-calls-per-second,
              with a single message every 500 ms beside it: the api's accept time and
              peak memory, the workers' peak memory, the pace, the singles' latency

Without --redis it starts redis-server from PATH on a free port.`,
		Example: `  dingq bench                      # every scenario (the recipients one takes ~6 min)
  dingq bench --scenario calls --messages 400`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if benchOut != "" {
				bf, err := os.OpenFile(benchOut, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
				if err != nil {
					return fmt.Errorf("--bench-out: %w", err)
				}
				defer bf.Close()
				f.benchOut = bf
			}
			return runBench(cmd.Context(), cmd.OutOrStdout(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&f.scenarios, "scenario", []string{"all"}, "scenarios to run: all, "+strings.Join(benchScenarios, ", "))
	fl.StringVar(&f.redisAddr, "redis", "", "Redis host:port to use (its dingq-bench keys are removed); default: start redis-server")
	fl.IntVar(&f.workers, "workers", 3, "worker processes")
	fl.IntVar(&f.concurrency, "concurrency", 50, "deliveries at once per worker")
	fl.IntVar(&f.messages, "messages", 1200, "messages per app in the calls, two-apps and adaptive scenarios")
	fl.IntVar(&f.users, "users", 30000, "recipients in the recipients scenario")
	fl.IntVar(&f.callsLimit, "calls-per-second", 20, "DingTalk's calls per second per app")
	fl.IntVar(&f.recipLimit, "recipients-per-minute", 5000, "DingTalk's recipients per minute per app")
	fl.DurationVar(&f.maxWait, "max-limit-wait", 0, "the workers' worker.max_limit_wait (0: its default)")
	fl.BoolVar(&f.keepLogs, "keep-logs", false, "keep the processes' logs and config, and say where")
	fl.StringVar(&f.logLevel, "log-level", "warn", "the processes' log.level")
	fl.StringVar(&benchOut, "bench-out", "", "also append each scenario's figures to this file as Go benchmark lines (make bench's report reads them)")
	fl.IntVar(&f.bcUsers, "broadcast-users", 1_000_000, "users of the broadcast scenario")
	fl.IntVar(&f.bcRPM, "broadcast-recipients-per-minute", 6_000_000, "DingTalk's recipients per minute in the broadcast scenario")
	fl.IntVar(&f.bcCalls, "broadcast-calls-per-second", 400, "DingTalk's calls per second per API in the broadcast scenario")
	return cmd
}

func runBench(ctx context.Context, out io.Writer, f *benchFlags) error {
	scenarios := f.scenarios
	if slices.Contains(scenarios, "all") {
		scenarios = benchScenarios
	}
	for _, s := range scenarios {
		if !slices.Contains(benchScenarios, s) {
			return fmt.Errorf("--scenario: unknown %q; want all or one of %s", s, strings.Join(benchScenarios, ", "))
		}
	}
	switch {
	case f.workers < 1:
		return errors.New("--workers must be >= 1")
	case f.concurrency < 1:
		return errors.New("--concurrency must be >= 1")
	case f.messages < 2 || f.users < 200:
		return errors.New("--messages must be >= 2 and --users >= 200")
	case f.callsLimit < 2 || f.recipLimit < 200:
		return errors.New("--calls-per-second must be >= 2 and --recipients-per-minute >= 200")
	case f.bcUsers < 101 || f.bcRPM < 200 || f.bcCalls < 2:
		return errors.New("--broadcast-users must be >= 101, --broadcast-recipients-per-minute >= 200, --broadcast-calls-per-second >= 2")
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	addr := f.redisAddr
	if addr == "" {
		stop, a, err := startRedisServer(ctx)
		if err != nil {
			return err
		}
		defer stop()
		addr = a
	}
	for _, s := range scenarios {
		run := runScenario
		if s == "broadcast" {
			run = func(ctx context.Context, out io.Writer, f *benchFlags, bin, addr, _ string) error {
				return runBroadcastScenario(ctx, out, f, bin, addr)
			}
		}
		if err := run(ctx, out, f, bin, addr, s); err != nil {
			return fmt.Errorf("scenario %s: %w", s, err)
		}
	}
	return nil
}

// startRedisServer starts a throwaway redis-server on a free port.
func startRedisServer(ctx context.Context) (stop func(), addr string, err error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, "", errors.New("redis-server is not on PATH: install it or give --redis HOST:PORT")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.CommandContext(ctx, path, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	for i := 0; rdb.Ping(ctx).Err() != nil; i++ {
		if i > 100 {
			_ = cmd.Process.Kill()
			return nil, "", errors.New("redis-server did not answer within 5s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }, addr, nil
}

// benchSetup serves fk on a free port and makes the scenario's directory
// (kept with --keep-logs); cleanup undoes both.
func benchSetup(out io.Writer, f *benchFlags, fk http.Handler) (fakeAddr, dir string, cleanup func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", nil, err
	}
	srv := &http.Server{Handler: fk, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	if dir, err = os.MkdirTemp("", "dingq-bench-"); err != nil {
		srv.Close()
		return "", "", nil, err
	}
	if f.keepLogs {
		fmt.Fprintf(out, "logs kept in %s\n", dir)
	}
	return ln.Addr().String(), dir, func() {
		srv.Close()
		if !f.keepLogs {
			os.RemoveAll(dir)
		}
	}, nil
}

// benchApp is an app of a scenario.
type benchApp struct {
	name, key string
	agent     int64
}

func runScenario(ctx context.Context, out io.Writer, f *benchFlags, bin, redisAddr, scenario string) error {
	apps := []benchApp{{"hr", "dingbenchhr", 101}}
	if scenario == "two-apps" {
		apps = append(apps, benchApp{"ops", "dingbenchops", 102})
	}
	limits := fake.Limits{CallsPerSecond: f.callsLimit, RecipientsPerMinute: f.recipLimit, CallsPer20s: 10000}
	if scenario == "adaptive" {
		limits.CallsPerSecond = f.callsLimit / 2
	}
	var fapps []fake.App
	for _, a := range apps {
		fapps = append(fapps, fake.App{Key: a.key, Secret: "bench-secret-" + a.name, AgentID: a.agent})
	}
	fk := fake.New(fapps, &fake.Options{Limits: &limits})
	fakeAddr, dir, cleanup, err := benchSetup(out, f, fk)
	if err != nil {
		return err
	}
	defer cleanup()
	prefix := "dingq-bench-" + scenario
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "redis: {addr: %q, key_prefix: %s}\ndingtalk:\n  base_url: http://%s\n  apps:\n", redisAddr, prefix, fakeAddr)
	for _, a := range apps {
		fmt.Fprintf(&cfg, "    - {name: %s, app_key: %s, app_secret: bench-secret-%s, agent_id: %d, rate_limit: {calls_per_second: %d, recipients_per_minute: %d}}\n",
			a.name, a.key, a.name, a.agent, f.callsLimit, f.recipLimit)
	}
	fmt.Fprintf(&cfg, "worker: {concurrency: %d, retry_base_delay: 200ms, retry_max_delay: 5s", f.concurrency)
	if f.maxWait > 0 {
		fmt.Fprintf(&cfg, ", max_limit_wait: %s", f.maxWait)
	}
	fmt.Fprintf(&cfg, "}\nlog: {level: %s}\n", f.logLevel)
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		return err
	}

	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	if err := deleteKeys(ctx, rdb, prefix+":*", "asynq:{"+prefix+"*"); err != nil {
		return err
	}
	var names []string
	for _, a := range apps {
		names = append(names, a.name)
	}
	p, err := producer.New(producer.Config{Redis: rdb, KeyPrefix: prefix, Apps: names})
	if err != nil {
		return err
	}
	defer p.Close()

	// Queue everything first, so the workers start on a full queue.
	type job struct {
		app   string
		users []string
	}
	var jobs []job
	total := 0 // recipients
	if scenario == "recipients" {
		for i := 0; i < f.users; i += dingtalk.MaxUserIDs {
			var users []string
			for u := i; u < min(i+dingtalk.MaxUserIDs, f.users); u++ {
				users = append(users, fmt.Sprintf("user%d", u))
			}
			jobs = append(jobs, job{"hr", users})
			total += len(users)
		}
	} else {
		for i := range f.messages {
			for _, a := range apps {
				jobs = append(jobs, job{a.name, []string{fmt.Sprintf("user%d", i)}})
				total++
			}
		}
	}
	fmt.Fprintf(out, "\n== %s: %d messages, %d recipients, %d workers × %d, fake limits %d calls/s, %d recipients/min\n",
		scenario, len(jobs), total, f.workers, f.concurrency, limits.CallsPerSecond, limits.RecipientsPerMinute)
	ids, err := queueAll(ctx, p, len(jobs), func(i int) *producer.Message {
		return &producer.Message{App: jobs[i].app, UserIDs: jobs[i].users, Msg: dingtalk.TextMessage(fmt.Sprintf("bench %s %d", scenario, i))}
	})
	if err != nil {
		return err
	}

	start := time.Now()
	var procs []*exec.Cmd
	for i := range f.workers {
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("worker%d.log", i+1)))
		if err != nil {
			return err
		}
		defer logf.Close()
		w := exec.CommandContext(ctx, bin, "worker")
		w.Env = append(os.Environ(), "DINGQ_CONFIG="+cfgPath)
		w.Stdout, w.Stderr = logf, logf
		if err := w.Start(); err != nil {
			return err
		}
		procs = append(procs, w)
	}
	defer func() {
		for _, w := range procs {
			_ = w.Process.Signal(os.Interrupt)
		}
		for _, w := range procs {
			_ = w.Wait()
		}
	}()

	bar := progressbar.NewOptions(len(jobs), progressbar.OptionSetWriter(out), progressbar.OptionShowCount(),
		progressbar.OptionSetDescription(scenario), progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(200*time.Millisecond))
	for {
		st := fk.Stats()
		_ = bar.Set(st.Sent)
		if st.Sent >= len(jobs) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	_ = bar.Finish()
	wall := time.Since(start)
	fmt.Fprintln(out)
	report(out, fk, scenario, apps, limits, f, wall)
	return reportOutcomes(ctx, out, p, ids)
}

// queueAll sends n messages from eight goroutines and returns their ids.
func queueAll(ctx context.Context, p *producer.Producer, n int, msg func(int) *producer.Message) ([]string, error) {
	ids := make([]string, n)
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < n; i += 8 {
				id, err := p.Send(ctx, msg(i))
				if err != nil {
					errc <- err
					return
				}
				ids[i] = id
			}
		})
	}
	wg.Wait()
	close(errc)
	return ids, <-errc
}

// reportOutcomes prints how the messages' outcomes ended.
func reportOutcomes(ctx context.Context, out io.Writer, p *producer.Producer, ids []string) error {
	byStatus := map[producer.Status]int{}
	attempts := 0
	for _, id := range ids {
		o, err := p.Status(ctx, id)
		if err != nil {
			return err
		}
		byStatus[o.Status]++
		attempts += o.Attempts
	}
	fmt.Fprintf(out, "outcomes: %d sent, %d failed, %d other; %d attempts in all\n",
		byStatus[producer.StatusSent], byStatus[producer.StatusFailed],
		len(ids)-byStatus[producer.StatusSent]-byStatus[producer.StatusFailed], attempts)
	return nil
}

// deleteKeys removes the keys matching patterns.
func deleteKeys(ctx context.Context, rdb *redis.Client, patterns ...string) error {
	for _, pat := range patterns {
		iter := rdb.Scan(ctx, 0, pat, 1000).Iterator()
		for iter.Next(ctx) {
			if err := rdb.Del(ctx, iter.Val()).Err(); err != nil {
				return err
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
	}
	return nil
}

// report prints what the fake saw against what the limits allowed.
func report(out io.Writer, fk *fake.Server, scenario string, apps []benchApp, limits fake.Limits, f *benchFlags, wall time.Duration) {
	st := fk.Stats()
	sent := fk.Sent()
	firstLast := map[string][2]time.Time{}
	for _, s := range sent {
		fl, ok := firstLast[s.App]
		if !ok || s.Time.Before(fl[0]) {
			fl[0] = s.Time
		}
		if s.Time.After(fl[1]) {
			fl[1] = s.Time
		}
		firstLast[s.App] = fl
	}
	fmt.Fprintf(out, "wall time (workers started → last send): %s\n", wall.Round(time.Millisecond))
	fmt.Fprintf(out, "DingTalk answered: %d sends accepted, %d throttled (90018), %d IP-banned, %d recipients dropped\n",
		st.Sent, st.Throttled, st.IPBanned, sum(st.Dropped))
	for _, a := range apps {
		fl := firstLast[a.key]
		span := fl[1].Sub(fl[0])
		n := 0
		recips := 0
		for _, s := range sent {
			if s.App == a.key {
				n++
				recips += len(strings.Split(s.Request.UserIDList, ","))
			}
		}
		var ideal time.Duration
		if scenario == "recipients" {
			ideal = time.Duration(float64(recips) / float64(limits.RecipientsPerMinute) * float64(time.Minute))
		} else {
			rate := f.callsLimit
			if scenario == "adaptive" {
				rate = limits.CallsPerSecond
			}
			ideal = time.Duration(float64(n-1) / float64(rate) * float64(time.Second))
		}
		fmt.Fprintf(out, "app %s: %d sends in %s (first → last accepted send); ideal %s; %.2f× ideal, utilization %.0f%%\n",
			a.name, n, span.Round(time.Millisecond), ideal.Round(time.Millisecond), float64(span)/float64(ideal), 100*float64(ideal)/float64(span))
		fmt.Fprintf(out, "  most sends in any 1 s: %d (limit %d); most recipients in any 60 s: %d (limit %d)\n",
			st.MaxCallsPerSecond[a.key], limits.CallsPerSecond, st.MaxRecipientsPerMinute[a.key], limits.RecipientsPerMinute)
		name := scenario
		if len(apps) > 1 {
			name += "/" + a.name
		}
		f.benchLine(name, benchFigure{100 * float64(ideal) / float64(span), "utilization-%"},
			benchFigure{float64(span) / float64(ideal), "x-ideal"}, benchFigure{float64(st.Throttled), "throttled"},
			benchFigure{float64(sum(st.Dropped)), "dropped"}, benchFigure{float64(st.MaxCallsPerSecond[a.key]), "most-calls-in-1s"})
	}
	if scenario == "adaptive" {
		// The rate the fleet settled at: accepted sends in the last 10 s.
		var last []time.Time
		for _, s := range sent {
			last = append(last, s.Time)
		}
		slices.SortFunc(last, func(a, b time.Time) int { return a.Compare(b) })
		if len(last) > 0 {
			end := last[len(last)-1]
			n := 0
			for _, t := range last {
				if t.After(end.Add(-10 * time.Second)) {
					n++
				}
			}
			fmt.Fprintf(out, "  settled rate (last 10 s): %.1f sends/s against DingTalk's %d\n", float64(n)/10, limits.CallsPerSecond)
		}
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
