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
	_, err := l.admitAny(ctx, []ratelimit.Request{l.request(app, api, cost)})
	return err
}

// request is a call of app to api costing cost recipients.
func (l *limits) request(app, api string, cost int) ratelimit.Request {
	a := l.apps[app]
	return ratelimit.Request{App: app, API: api, Calls: a.calls, Recipients: a.recipients, Cost: cost, Fleet: l.fleet}
}

// admitAny is admit for a call that any one of reqs may make (the
// webhooks of one group's robots): it takes the first, in order, with a
// slot within maxWait, and returns its index.
func (l *limits) admitAny(ctx context.Context, reqs []ratelimit.Request) (int, error) {
	var waited time.Duration
	for try := 0; ; try++ {
		var soonest ratelimit.Decision
		for i, req := range reqs {
			d, err := l.lim.Reserve(ctx, req, l.maxWait)
			if err != nil {
				return 0, err
			}
			l.seen(req, d.Factor)
			if d.Allowed {
				if d.Wait > 0 {
					annotate(ctx, zap.Duration("rate_wait", d.Wait), zap.String("rate_limit", d.Limit))
				}
				if err := sleep(ctx, d.Wait); err != nil {
					return 0, err
				}
				l.metrics.LimiterWait(req.App, req.API, waited+max(d.Wait, 0))
				return i, nil
			}
			if i == 0 || d.Wait < soonest.Wait {
				soonest = d
			}
		}
		if try > 0 {
			annotate(ctx, zap.String("rate_limited", soonest.Limit), zap.Duration("retry_in", soonest.Wait))
			l.metrics.LimiterDeferred(reqs[0].App, reqs[0].API)
			return 0, &throttledError{err: &limitError{limit: soonest.Limit, wait: soonest.Wait}, wait: soonest.Wait}
		}
		pause := min(soonest.Wait-l.maxWait, l.maxWait)
		if err := sleep(ctx, pause); err != nil {
			return 0, err
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

// seen keeps f, the factor the limiter scales req's calls by, and tells
// the metrics the rate it allows.
func (l *limits) seen(req ratelimit.Request, f float64) {
	l.mu.Lock()
	l.factor[req.App+" "+req.API] = f
	l.mu.Unlock()
	if c := req.Calls; c.On() {
		l.metrics.LimiterRate(req.App, req.API, float64(c.N)/c.Per.Seconds()*f)
	}
}

// observe adapts the limits to DingTalk's answer err to a call of app to
// api: throttling lowers the app's rate for the fleet, an IP ban pauses
// every call, and success lets a lowered rate recover.
func (l *limits) observe(ctx context.Context, app, api string, err error) {
	l.observeReq(ctx, l.request(app, api, 0), err)
}

// observeReq is observe for the limits of req.
func (l *limits) observeReq(ctx context.Context, req ratelimit.Request, err error) {
	app, api := req.App, req.API
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
		l.seen(req, f)
		if changed {
			l.log.Info("DingTalk accepts calls again; raising the app's rate", l.rateFields(req, f)...)
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
		l.seen(req, f)
		if changed {
			l.log.Warn("DingTalk throttles the app despite the limiter; lowering its rate",
				append(l.rateFields(req, f), zap.Int("errcode", de.Code), zap.String("error_code", de.ErrorCode))...)
		}
	}
}

// rateFields describe req's effective calls rate for a log line.
func (l *limits) rateFields(req ratelimit.Request, f float64) []zap.Field {
	fields := []zap.Field{zap.String("app", req.App), zap.String("api", req.API), zap.Float64("rate_factor", f)}
	if c := req.Calls; c.On() {
		fields = append(fields, zap.Float64("calls_per_second", float64(c.N)/c.Per.Seconds()*f),
			zap.String("configured_calls", c.String()))
	}
	return fields
}
