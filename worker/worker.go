package worker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/internal/metrics"
	"github.com/dingq/dingq/internal/outcome"
	"github.com/dingq/dingq/internal/ratelimit"
	"github.com/dingq/dingq/internal/token"
	"github.com/dingq/dingq/producer"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// DefaultQueues are the queues a worker serves and their weights: critical
// work is taken six times as often as bulk work, and bulk is never starved.
var DefaultQueues = map[string]int{
	producer.QueueCritical: 6,
	producer.QueueDefault:  3,
	producer.QueueBulk:     1,
}

// Defaults of a Worker.
const (
	DefaultConcurrency     = 20
	DefaultShutdownTimeout = 30 * time.Second
	DefaultPollInterval    = 250 * time.Millisecond
)

// Config configures a Worker.
type Config struct {
	// Redis is the connection to dingq's Redis. Required; not closed by the
	// worker. New adds a hook to it that lets asynq end a task whose end it
	// could not write during a Redis blip (a bug of asynq v0.26.0): it only
	// touches asynq's scripts that end a task.
	Redis redis.UniversalClient
	// KeyPrefix starts every key dingq writes: outcomes, the shared token
	// cache. If empty, "dingq".
	KeyPrefix string
	// Retention is how long outcomes are kept. If zero, 7 days.
	Retention time.Duration
	// Apps are the DingTalk apps to send as. At least one.
	Apps []App
	// Robots are the robots to send through, by name: custom group robots
	// and the enterprise robots of Apps.
	Robots []Robot
	// Client calls DingTalk. Required.
	Client *dingtalk.Client
	// Concurrency is how many tasks run at once. If zero, 20.
	Concurrency int
	// RetryBaseDelay and RetryMaxDelay bound the exponential backoff of
	// retried errors. If zero, 1s and 10m.
	RetryBaseDelay time.Duration
	RetryMaxDelay  time.Duration
	// ShutdownTimeout is how long Shutdown waits for running tasks before
	// handing them back to the queue. If zero, 30s.
	ShutdownTimeout time.Duration
	// PollInterval is how often idle workers look for new tasks. If zero,
	// 250ms.
	PollInterval time.Duration
	// FleetCallsPer20s caps the calls of every worker together, for
	// DingTalk's per-IP rule (10,000 calls in 20 s, then a 5-minute ban).
	// If zero, 10,000; negative turns it off. Per-app limits are in
	// App.RateLimit.
	FleetCallsPer20s int
	// MaxLimitWait is how far ahead a task takes a slot of the rate limits
	// and waits for it in place; a task whose slot is further off waits up
	// to MaxLimitWait and asks once more, then goes back to the queue, not
	// counted as a failure. If zero, 2s.
	MaxLimitWait time.Duration
	// ResultsDelay is how long after DingTalk accepted a broadcast's batch
	// the worker first asks what became of its recipients; it asks again
	// with growing waits, up to ResultsMaxDelay apart, while DingTalk is
	// still delivering. If zero, 10s and 30m.
	ResultsDelay    time.Duration
	ResultsMaxDelay time.Duration
	// ResendDelay is how long the recipients DingTalk dropped only for its
	// per-minute limits wait before they are sent once more. If zero, 1m.
	ResendDelay time.Duration
	// MaxRetry is how many failed attempts the tasks a worker queues itself
	// (results, re-sends, coalesced sends) get. If zero, producer.DefaultMaxRetry.
	MaxRetry int
	// CoalesceWindow is how long a group of coalescing messages (same app
	// and content, producer.Message.Coalesce) waits for one more before
	// its messages are merged into shared calls; asynq counts it in whole
	// seconds, at least one. CoalesceMaxDelay caps how long the group's
	// first message waits; at least CoalesceWindow. If zero, 1s and 5s
	// (or CoalesceWindow, if longer).
	CoalesceWindow   time.Duration
	CoalesceMaxDelay time.Duration
	// Callback, if set, is the apps' callback registration and where
	// pushed events go.
	Callback *CallbackConfig
	// SessionPaths are the session endpoints (seed 001); empty ones take
	// the seed article's.
	SessionPaths SessionPaths
	// Logger receives the worker's logs. If nil, nothing is logged.
	Logger *zap.Logger
	// Metrics measures DingTalk's answers, the token cache, the rate
	// limits, final statuses and callback sinks. If nil, nothing is
	// measured.
	Metrics *metrics.Metrics
}

func (c *Config) setDefaults() {
	if c.KeyPrefix == "" {
		c.KeyPrefix = outcome.DefaultPrefix
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.RetryBaseDelay == 0 {
		c.RetryBaseDelay = DefaultRetryBaseDelay
	}
	if c.RetryMaxDelay == 0 {
		c.RetryMaxDelay = DefaultRetryMaxDelay
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.MaxLimitWait == 0 {
		c.MaxLimitWait = DefaultMaxLimitWait
	}
	if c.ResultsDelay == 0 {
		c.ResultsDelay = DefaultResultsDelay
	}
	if c.ResultsMaxDelay == 0 {
		c.ResultsMaxDelay = DefaultResultsMaxDelay
	}
	if c.ResendDelay == 0 {
		c.ResendDelay = DefaultResendDelay
	}
	if c.MaxRetry == 0 {
		c.MaxRetry = producer.DefaultMaxRetry
	}
	if c.CoalesceWindow == 0 {
		c.CoalesceWindow = DefaultCoalesceWindow
	}
	if c.CoalesceMaxDelay == 0 {
		c.CoalesceMaxDelay = max(DefaultCoalesceMaxDelay, c.CoalesceWindow)
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
}

// Validate reports the first field of c that cannot work.
func (c *Config) Validate() error {
	switch {
	case c.Redis == nil:
		return errors.New("worker: Config.Redis is required")
	case c.Client == nil:
		return errors.New("worker: Config.Client is required")
	case len(c.Apps) == 0:
		return errors.New("worker: Config.Apps: at least one app is required")
	case c.Concurrency < 0:
		return fmt.Errorf("worker: Config.Concurrency must be >= 0, got %d", c.Concurrency)
	case c.RetryMaxDelay < c.RetryBaseDelay:
		return fmt.Errorf("worker: Config.RetryMaxDelay (%s) is below RetryBaseDelay (%s)", c.RetryMaxDelay, c.RetryBaseDelay)
	case c.ResultsDelay < 0 || c.ResultsMaxDelay < c.ResultsDelay:
		return fmt.Errorf("worker: Config.ResultsDelay (%s) must be >= 0 and at most ResultsMaxDelay (%s)", c.ResultsDelay, c.ResultsMaxDelay)
	case c.ResendDelay < 0:
		return fmt.Errorf("worker: Config.ResendDelay must be >= 0, got %s", c.ResendDelay)
	case c.CoalesceWindow < time.Second:
		// asynq's NewServer panics below a second.
		return fmt.Errorf("worker: Config.CoalesceWindow must be >= 1s, got %s", c.CoalesceWindow)
	case c.CoalesceMaxDelay < c.CoalesceWindow:
		return fmt.Errorf("worker: Config.CoalesceMaxDelay (%s) is below CoalesceWindow (%s)", c.CoalesceMaxDelay, c.CoalesceWindow)
	}
	seen := map[string]bool{}
	for i, a := range c.Apps {
		switch {
		case a.Name == "":
			return fmt.Errorf("worker: Config.Apps[%d].Name is required", i)
		case seen[a.Name]:
			return fmt.Errorf("worker: Config.Apps[%d].Name %q is used twice", i, a.Name)
		case a.AgentID <= 0:
			return fmt.Errorf("worker: Config.Apps[%d].AgentID must be > 0", i)
		}
		if err := a.Credentials.Validate(); err != nil {
			return fmt.Errorf("worker: Config.Apps[%d].Credentials: %w", i, err)
		}
		seen[a.Name] = true
	}
	apps := make(map[string]App, len(c.Apps))
	for _, a := range c.Apps {
		apps[a.Name] = a
	}
	robots := map[string]bool{}
	hooks := map[string]string{}
	for i := range c.Robots {
		r := &c.Robots[i]
		if err := r.validate(i, apps, hooks); err != nil {
			return err
		}
		if robots[r.Name] {
			return fmt.Errorf("worker: Config.Robots[%d].Name %q is used twice", i, r.Name)
		}
		robots[r.Name] = true
	}
	return nil
}

// Worker is one worker process's asynq server with dingq's handlers.
type Worker struct {
	srv      *asynq.Server
	mux      *asynq.ServeMux
	handlers *Handlers
	// stopPull ends the pull of failed callbacks, if any.
	stopPull context.CancelFunc
	pullDone chan struct{}
}

// New returns a worker for cfg; Start or Run starts it.
func New(cfg Config) (*Worker, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h := &Handlers{
		apps:   make(map[string]App, len(cfg.Apps)),
		robots: make(map[string]*Robot, len(cfg.Robots)),
		client: cfg.Client,
		tokens: token.New(cfg.Client, token.Config{Redis: cfg.Redis, KeyPrefix: cfg.KeyPrefix,
			Logger: cfg.Logger.Named("token"), Metrics: cfg.Metrics}),
		// The new host's tokens are cached apart: they come from another
		// endpoint, and DingTalk does not promise they are the same.
		tokensV1: token.New(v1Tokens{cfg.Client}, token.Config{Redis: cfg.Redis, KeyPrefix: cfg.KeyPrefix + ":v1",
			Logger: cfg.Logger.Named("token_v1"), Metrics: cfg.Metrics}),
		store:    outcome.NewStore(cfg.Redis, cfg.KeyPrefix, cfg.Retention),
		log:      cfg.Logger,
		maxDelay: cfg.RetryMaxDelay,
		limits: newLimits(ratelimit.New(cfg.Redis, cfg.KeyPrefix), cfg.Apps, cfg.FleetCallsPer20s,
			cfg.MaxLimitWait, cfg.Logger.Named("ratelimit"), cfg.Metrics),
		queue:           asynq.NewClientFromRedisClient(cfg.Redis),
		maxRetry:        cfg.MaxRetry,
		resultsDelay:    cfg.ResultsDelay,
		resultsMaxDelay: cfg.ResultsMaxDelay,
		resendDelay:     cfg.ResendDelay,
		rdb:             cfg.Redis,
		keyPrefix:       cfg.KeyPrefix,
		callback:        cfg.Callback,
		httpClient:      &http.Client{Timeout: sinkTimeout},
		sessionPaths:    cfg.SessionPaths.WithDefaults(),
		metrics:         cfg.Metrics,
	}
	events, err := producer.New(producer.Config{Redis: cfg.Redis, KeyPrefix: cfg.KeyPrefix, Retention: cfg.Retention,
		MaxRetry: cfg.MaxRetry})
	if err != nil {
		return nil, err
	}
	h.events = events
	for _, a := range cfg.Apps {
		h.apps[a.Name] = a
	}
	robots := slices.Clone(cfg.Robots) // not the caller's: hookIDs are set here
	for i := range robots {
		r := &robots[i]
		r.hookIDs = make([]string, len(r.Webhooks))
		for j, w := range r.Webhooks {
			r.hookIDs[j] = webhookID(w.Token)
		}
		if l := r.RateLimit.limit(); r.group() && float64(l.N)/l.Per.Minutes() > dingtalk.RobotMessagesPerMinute {
			cfg.Logger.Warn("a robot's rate limit is above DingTalk's 20 messages a minute: DingTalk blocks a webhook that sends faster, unless it raised the robot's limit",
				zap.String("robot", r.Name), zap.String("rate_limit", l.String()))
		}
		h.robots[r.Name] = r
	}
	cfg.Redis.AddHook(finishAfterCancel{})
	srv := asynq.NewServerFromRedisClient(cfg.Redis, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   DefaultQueues,
		RetryDelayFunc:           retryDelay(cfg.RetryBaseDelay, cfg.RetryMaxDelay),
		IsFailure:                isFailure,
		ShutdownTimeout:          cfg.ShutdownTimeout,
		TaskCheckInterval:        cfg.PollInterval,
		DelayedTaskCheckInterval: cfg.PollInterval,
		Logger:                   cfg.Logger.Named("asynq").WithOptions(zap.AddCallerSkip(1)).Sugar(),
		LogLevel:                 asynqLevel(cfg.Logger),
		GroupAggregator:          coalesce(cfg.MaxRetry, cfg.Logger.Named("coalesce")),
		GroupGracePeriod:         cfg.CoalesceWindow,
		GroupMaxDelay:            cfg.CoalesceMaxDelay,
		GroupMaxSize:             CoalesceMaxMessages,
	})
	mux := asynq.NewServeMux()
	mux.Use(Logging(cfg.Logger), withRedisBudget)
	mux.HandleFunc(producer.TypeMessageSend, h.HandleMessageSend)
	mux.HandleFunc(producer.TypeCoalescedSend, h.HandleCoalesced)
	mux.HandleFunc(producer.TypeBroadcastBatch, h.HandleBatch)
	mux.HandleFunc(producer.TypeSendResults, h.HandleResults)
	mux.HandleFunc(producer.TypeRecall, h.HandleRecall)
	mux.HandleFunc(producer.TypeBroadcastCanceled, h.HandleBroadcastCanceled)
	mux.HandleFunc(producer.TypeCallbackEvent, h.HandleCallbackEvent)
	mux.HandleFunc(producer.TypeCallbackAdmin, h.HandleCallbackAdmin)
	mux.HandleFunc(producer.TypeCallbackFailed, h.HandleCallbackFailed)
	mux.HandleFunc(producer.TypeSession, h.HandleSession)
	mux.HandleFunc(producer.TypeRobotSend, h.HandleRobotSend)
	return &Worker{srv: srv, mux: mux, handlers: h}, nil
}

// Start starts taking tasks and returns; Shutdown stops.
func (w *Worker) Start() error {
	if err := w.srv.Start(w.mux); err != nil {
		return err
	}
	if cb := w.handlers.callback; cb != nil && cb.URL != "" && cb.FailedPullInterval > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		w.stopPull, w.pullDone = cancel, make(chan struct{})
		go func() {
			defer close(w.pullDone)
			w.handlers.pullFailed(ctx, cb.FailedPullInterval)
		}()
	}
	return nil
}

// Shutdown stops taking tasks, waits up to the shutdown timeout for running
// ones and hands the rest back to the queue, then stops token refreshes.
func (w *Worker) Shutdown() {
	if w.stopPull != nil {
		w.stopPull()
		<-w.pullDone
	}
	w.srv.Shutdown()
	w.handlers.tokens.Close()
	w.handlers.tokensV1.Close()
}

// Run starts the worker and shuts it down when ctx is done.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	w.Shutdown()
	return nil
}

func asynqLevel(l *zap.Logger) asynq.LogLevel {
	switch {
	case l.Core().Enabled(zap.DebugLevel):
		return asynq.DebugLevel
	case l.Core().Enabled(zap.InfoLevel):
		return asynq.InfoLevel
	case l.Core().Enabled(zap.WarnLevel):
		return asynq.WarnLevel
	}
	return asynq.ErrorLevel
}
