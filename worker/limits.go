package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/internal/metrics"
	"github.com/dingq/dingq/internal/ratelimit"
	"go.uber.org/zap"
)

// DingTalk's standard-edition limits, the defaults of AppLimits and
// Config.FleetCallsPer20s.
const (
	DefaultCallsPerSecond      = 20
	DefaultRecipientsPerMinute = 5000
	DefaultFleetCallsPer20s    = 10000
	// DefaultMaxLimitWait: how long a task waits in place for a slot before
	// it is handed back to the queue.
	DefaultMaxLimitWait = 2 * time.Second
)

// limitError says a message waits for its share of DingTalk's budget: no
// call was made. It is never a failure.
type limitError struct {
	limit string
	wait  time.Duration
}

func (e *limitError) Error() string {
	return fmt.Sprintf("rate limit %s: next slot in %s", e.limit, e.wait.Round(time.Millisecond))
}

// limits applies the fleet's rate limits to the handlers' calls, and adapts
// them to what DingTalk answers.
type limits struct {
	lim     *ratelimit.Limiter
	apps    map[string]appLimits
	fleet   ratelimit.Limit
	maxWait time.Duration
	log     *zap.Logger
	metrics *metrics.Metrics

	mu     sync.Mutex
	factor map[string]float64 // last seen scale of app+api's calls
}

type appLimits struct{ calls, recipients ratelimit.Limit }

func limitOf(n, def int, per time.Duration) ratelimit.Limit {
	switch {
	case n == 0:
		n = def
	case n < 0:
		return ratelimit.Limit{}
	}
	return ratelimit.Limit{N: n, Per: per}
}

func newLimits(lim *ratelimit.Limiter, apps []App, fleetPer20s int, maxWait time.Duration, log *zap.Logger, m *metrics.Metrics) *limits {
	l := &limits{lim: lim, apps: map[string]appLimits{}, maxWait: maxWait, log: log, metrics: m,
		fleet: limitOf(fleetPer20s, DefaultFleetCallsPer20s, 20*time.Second), factor: map[string]float64{}}
	for _, a := range apps {
		l.apps[a.Name] = appLimits{
			calls:      limitOf(a.RateLimit.CallsPerSecond, DefaultCallsPerSecond, time.Second),
			recipients: limitOf(a.RateLimit.RecipientsPerMinute, DefaultRecipientsPerMinute, time.Minute),
		}
	}
	return l
}

// admit reserves a slot for one call of app to api costing cost
// recipients, and waits for it. A slot further off than maxWait is asked
// for once more after waiting up to maxWait, so idle worker slots do not
// spin through the queue; if it is still too far, admit answers a
// throttledError: the task goes back to the queue until then, not counted
// as a failure. The metrics get how long an admitted call waited in all,
// and each task handed back.
func (l *limits) admit(ctx context.Context, app, api string, cost int) error {
	a := l.apps[app]
	req := ratelimit.Request{App: app, API: api, Calls: a.calls, Recipients: a.recipients, Cost: cost, Fleet: l.fleet}
	var waited time.Duration
	for try := 0; ; try++ {
		d, err := l.lim.Reserve(ctx, req, l.maxWait)
		if err != nil {
			return err
		}
		l.seen(app, api, d.Factor)
		switch {
		case d.Allowed:
			if d.Wait > 0 {
				annotate(ctx, zap.Duration("rate_wait", d.Wait), zap.String("rate_limit", d.Limit))
			}
			if err := sleep(ctx, d.Wait); err != nil {
				return err
			}
			l.metrics.LimiterWait(app, api, waited+max(d.Wait, 0))
			return nil
		case try > 0:
			annotate(ctx, zap.String("rate_limited", d.Limit), zap.Duration("retry_in", d.Wait))
			l.metrics.LimiterDeferred(app, api)
			return &throttledError{err: &limitError{limit: d.Limit, wait: d.Wait}, wait: d.Wait}
		}
		pause := min(d.Wait-l.maxWait, l.maxWait)
		if err := sleep(ctx, pause); err != nil {
			return err
		}
		waited += max(pause, 0)
	}
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// seen keeps f, the factor the limiter scales app's calls to api by, and
// tells the metrics the rate it allows.
func (l *limits) seen(app, api string, f float64) {
	l.mu.Lock()
	l.factor[app+" "+api] = f
	l.mu.Unlock()
	if c := l.apps[app].calls; c.On() {
		l.metrics.LimiterRate(app, api, float64(c.N)/c.Per.Seconds()*f)
	}
}

// observe adapts the limits to DingTalk's answer err to a call of app to
// api: throttling lowers the app's rate for the fleet, an IP ban pauses
// every call, and success lets a lowered rate recover.
func (l *limits) observe(ctx context.Context, app, api string, err error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	var de *dingtalk.Error
	switch {
	case err == nil:
		l.mu.Lock()
		f, ok := l.factor[app+" "+api]
		l.mu.Unlock()
		if !ok || f >= 1 {
			return
		}
		f, changed, rerr := l.lim.Succeeded(ctx, app, api)
		if rerr != nil {
			l.log.Warn("rate limit recovery not recorded", zap.String("app", app), zap.Error(rerr))
			return
		}
		l.seen(app, api, f)
		if changed {
			l.log.Info("DingTalk accepts calls again; raising the app's rate", l.rateFields(app, api, f)...)
		}
	case errors.As(err, &de) && de.IPBanned:
		wait, _ := de.Throttled()
		if rerr := l.lim.Pause(ctx, wait); rerr != nil {
			l.log.Error("IP ban not shared with the fleet", zap.Error(rerr))
		}
		l.log.Error("DingTalk banned this address; every call of the fleet pauses", zap.Duration("pause", wait))
	case errors.As(err, &de) && dingtalk.Classify(err) == dingtalk.ClassThrottled:
		f, changed, rerr := l.lim.Throttled(ctx, app, api)
		if rerr != nil {
			l.log.Warn("rate limit decrease not recorded", zap.String("app", app), zap.Error(rerr))
			return
		}
		l.seen(app, api, f)
		if changed {
			l.log.Warn("DingTalk throttles the app despite the limiter; lowering its rate",
				append(l.rateFields(app, api, f), zap.Int("errcode", de.Code), zap.String("error_code", de.ErrorCode))...)
		}
	}
}

// rateFields describe app's effective calls rate for a log line.
func (l *limits) rateFields(app, api string, f float64) []zap.Field {
	fields := []zap.Field{zap.String("app", app), zap.String("api", api), zap.Float64("rate_factor", f)}
	if c := l.apps[app].calls; c.On() {
		fields = append(fields, zap.Float64("calls_per_second", float64(c.N)*f), zap.Int("configured_calls_per_second", c.N))
	}
	return fields
}
