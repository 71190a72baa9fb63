package main

import (
	"bufio"
	"context"
	"encoding/json"
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
)

// runBroadcastScenario sends one broadcast of f.bcUsers users through a
// `dingq api` process and f.workers worker processes, with the fake's
// limits set high (--broadcast-recipients-per-minute,
// --broadcast-calls-per-second), while single messages go out beside it.
// It reports the api's accept time and peak memory, the workers' peak
// memory, the pace against the limits, and the singles' latency.
func runBroadcastScenario(ctx context.Context, out io.Writer, f *benchFlags, bin, redisAddr string) error {
	const app, key, agent = "hr", "dingbenchbc", int64(103)
	limits := fake.Limits{CallsPerSecond: f.bcCalls, RecipientsPerMinute: f.bcRPM, CallsPer20s: 10000}
	fk := fake.New([]fake.App{{Key: key, Secret: "bench-secret-bc", AgentID: agent}}, &fake.Options{Limits: &limits})
	fakeAddr, dir, cleanup, err := benchSetup(out, f, fk)
	if err != nil {
		return err
	}
	defer cleanup()
	apiAddr, err := freePort()
	if err != nil {
		return err
	}
	prefix := "dingq-bench-broadcast"
	cfg := fmt.Sprintf(`redis: {addr: %q, key_prefix: %s}
dingtalk:
  base_url: http://%s
  apps:
    - {name: %s, app_key: %s, app_secret: bench-secret-bc, agent_id: %d, rate_limit: {calls_per_second: %d, recipients_per_minute: %d}}
worker: {concurrency: %d, retry_base_delay: 200ms, retry_max_delay: 5s, results_delay: 2s}
api: {listen: %q, max_recipients: %d}
log: {level: %s}
`, redisAddr, prefix, fakeAddr, app, key, agent, f.bcCalls, f.bcRPM, f.concurrency, apiAddr, max(f.bcUsers, 1000), f.logLevel)
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	if err := deleteKeys(ctx, rdb, prefix+":*"); err != nil {
		return err
	}
	p, err := producer.New(producer.Config{Redis: rdb, KeyPrefix: prefix, Apps: []string{app}})
	if err != nil {
		return err
	}

	var procs []*exec.Cmd
	startProc := func(name string) (*exec.Cmd, error) {
		logf, err := os.Create(filepath.Join(dir, name+".log"))
		if err != nil {
			return nil, err
		}
		c := exec.CommandContext(ctx, bin, name[:strings.IndexAny(name+"0", "0123456789")])
		c.Env = append(os.Environ(), "DINGQ_CONFIG="+cfgPath)
		c.Stdout, c.Stderr = logf, logf
		if err := c.Start(); err != nil {
			return nil, err
		}
		procs = append(procs, c)
		return c, nil
	}
	defer func() {
		for _, c := range procs {
			_ = c.Process.Signal(os.Interrupt)
		}
		for _, c := range procs {
			_ = c.Wait()
		}
	}()
	apiProc, err := startProc("api")
	if err != nil {
		return err
	}
	if err := waitReady(ctx, "http://"+apiAddr+"/readyz"); err != nil {
		return err
	}
	var workers []*exec.Cmd
	for i := range f.workers {
		w, err := startProc(fmt.Sprintf("worker%d", i+1))
		if err != nil {
			return err
		}
		workers = append(workers, w)
	}
	batches := (f.bcUsers + dingtalk.MaxUserIDs - 1) / dingtalk.MaxUserIDs
	fmt.Fprintf(out, "\n== broadcast: %d users (%d batches) through the api, %d workers × %d, fake limits %d calls/s, %d recipients/min\n",
		f.bcUsers, batches, f.workers, f.concurrency, limits.CallsPerSecond, limits.RecipientsPerMinute)

	// The request body is written as it is sent: the bench holds no copy.
	pr, pw := io.Pipe()
	go func() {
		bw := bufio.NewWriterSize(pw, 1<<16)
		fmt.Fprintf(bw, `{"app":%q,"msg":{"msgtype":"text","text":{"content":"bench broadcast"}},"userid_list":[`, app)
		for i := range f.bcUsers {
			if i > 0 {
				bw.WriteByte(',')
			}
			bw.WriteString(`"user` + strconv.Itoa(i) + `"`)
		}
		bw.WriteString("]}")
		_ = pw.CloseWithError(bw.Flush())
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+apiAddr+"/v1/messages", pr)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	accept := time.Since(start)
	var acc producer.Accepted
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(body, &acc) != nil {
		return fmt.Errorf("POST /v1/messages: %d %s", resp.StatusCode, body)
	}
	apiPeak := peakRSS(apiProc.Process.Pid)
	fmt.Fprintf(out, "accepted by the api in %s: %d recipients, %d batches; api peak memory (VmHWM) %s\n",
		accept.Round(time.Millisecond), acc.Recipients, acc.Batches, mib(apiPeak))

	// Single messages beside the broadcast, one every 500 ms.
	type single struct {
		text string
		at   time.Time
	}
	var (
		mu      sync.Mutex
		singles []single
	)
	sctx, stopSingles := context.WithCancel(ctx)
	var swg sync.WaitGroup
	swg.Go(func() {
		for i := 0; sctx.Err() == nil; i++ {
			text := fmt.Sprintf("bench single %d", i)
			at := time.Now()
			if _, err := p.Send(sctx, &producer.Message{App: app, UserIDs: []string{fmt.Sprintf("single%d", i)},
				Msg: dingtalk.TextMessage(text)}); err == nil {
				mu.Lock()
				singles = append(singles, single{text, at})
				mu.Unlock()
			}
			select {
			case <-sctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	})

	bar := progressbar.NewOptions(acc.Batches, progressbar.OptionSetWriter(out), progressbar.OptionShowCount(),
		progressbar.OptionSetDescription("batches"), progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(200*time.Millisecond))
	var workerPeak []int64 = make([]int64, len(workers))
	var o *producer.Outcome
	sentDone := time.Time{}
	for {
		if o, err = p.Status(ctx, acc.ID); err != nil {
			stopSingles()
			return err
		}
		b := o.Broadcast.Batches
		_ = bar.Set(b.Sent + b.Failed + b.Canceled)
		if b.Queued+b.Sending == 0 && sentDone.IsZero() {
			sentDone = time.Now()
			stopSingles()
			_ = bar.Finish()
			fmt.Fprintln(out)
		}
		for i, w := range workers {
			workerPeak[i] = max(workerPeak[i], peakRSS(w.Process.Pid))
		}
		if o.Broadcast.Finished {
			break
		}
		select {
		case <-ctx.Done():
			stopSingles()
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	stopSingles()
	swg.Wait()
	resultsDone := time.Since(start)

	var first, last time.Time
	sentAt := map[string]time.Time{}
	for _, s := range fk.Sent() {
		text := s.Request.Msg.Text.Content
		if text != "bench broadcast" {
			sentAt[text] = s.Time
			continue
		}
		if first.IsZero() || s.Time.Before(first) {
			first = s.Time
		}
		if s.Time.After(last) {
			last = s.Time
		}
	}
	span := last.Sub(start)
	ideal := max(time.Duration(float64(acc.Recipients)/float64(limits.RecipientsPerMinute)*float64(time.Minute)),
		time.Duration(float64(acc.Batches)/float64(limits.CallsPerSecond)*float64(time.Second)))
	var total int64
	var peaks []string
	for _, pk := range workerPeak {
		total += pk
		peaks = append(peaks, mib(pk))
	}
	st := fk.Stats()
	fmt.Fprintf(out, "sent: last batch %s after the POST began (ideal by the limits %s: %.2f×); results all in after %s\n",
		span.Round(time.Millisecond), ideal.Round(time.Millisecond), float64(span)/float64(ideal), resultsDone.Round(time.Millisecond))
	fmt.Fprintf(out, "DingTalk: %d sends, %d throttled, %d IP-banned, %d recipients dropped; outcome: %d batches sent, %d recipients accepted, %d unread, %d unknown\n",
		st.Sent-len(sentAt), st.Throttled, st.IPBanned, sum(st.Dropped), o.Broadcast.Batches.Sent, o.Broadcast.Recipients.Accepted,
		o.Broadcast.Results.Unread, o.Broadcast.Results.Unknown)
	fmt.Fprintf(out, "worker peak memory (VmHWM): %s each, %s together\n", strings.Join(peaks, ", "), mib(total))
	var lat []time.Duration
	for _, s := range singles {
		if at, ok := sentAt[s.text]; ok {
			lat = append(lat, at.Sub(s.at))
		}
	}
	slices.Sort(lat)
	figures := []benchFigure{{accept.Seconds(), "accept-s"}, {float64(apiPeak) / (1 << 20), "api-peak-MiB"},
		{float64(total) / (1 << 20), "workers-peak-MiB"}, {float64(span) / float64(ideal), "x-ideal"},
		{float64(st.Throttled), "throttled"}}
	if len(lat) > 0 {
		fmt.Fprintf(out, "single messages beside it: %d of %d sent, enqueue → DingTalk p50 %s, max %s\n", len(lat), len(singles),
			lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		figures = append(figures, benchFigure{ms(lat[len(lat)/2]), "singles-p50-ms"}, benchFigure{ms(lat[len(lat)-1]), "singles-max-ms"})
	}
	f.benchLine("broadcast", figures...)
	return nil
}

// peakRSS is the peak resident memory of process pid (VmHWM), in bytes; 0
// where /proc does not tell.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitReady(ctx context.Context, url string) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not answer 200 within 15s", url)
}
