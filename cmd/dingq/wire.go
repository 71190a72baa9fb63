package main

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/internal/config"
	"github.com/dingq/dingq/producer"
	"github.com/dingq/dingq/worker"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// env is everything a command builds from the configuration.
type env struct {
	cfg   *config.Config
	log   *zap.Logger
	redis redis.UniversalClient
}

// setup loads the configuration, makes the logger and connects to Redis.
func setup(ctx context.Context, path string) (*env, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	log, err := newLogger(cfg.Log)
	if err != nil {
		return nil, err
	}
	rdb := newRedis(cfg.Redis)
	if err := rdb.Ping(ctx).Err(); err != nil {
		log.Warn("redis does not answer yet; continuing, it will be retried", zap.String("redis", redisTarget(cfg.Redis)), zap.Error(err))
	}
	return &env{cfg: cfg, log: log, redis: rdb}, nil
}

func (e *env) close() {
	_ = e.redis.Close()
	_ = e.log.Sync()
}

// newLogger returns a zap logger at level in format ("json" or "console").
func newLogger(c config.Log) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	var zc zap.Config
	if c.Format == "console" {
		zc = zap.NewDevelopmentConfig()
		zc.EncoderConfig.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		zc.DisableStacktrace = true
	} else {
		zc = zap.NewProductionConfig()
		zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	}
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.OutputPaths = []string{"stderr"}
	return zc.Build()
}

func newDingTalkClient(c config.DingTalk) (*dingtalk.Client, error) {
	opts := []dingtalk.Option{dingtalk.WithBaseURL(c.BaseURL), dingtalk.WithTimeout(c.Timeout)}
	if c.APIBaseURL != "" { // a Config built by hand, without Load's defaults
		opts = append(opts, dingtalk.WithAPIBaseURL(c.APIBaseURL))
	}
	return dingtalk.NewClient(opts...)
}

func workerRobots(cfg *config.Config) []worker.Robot {
	robots := make([]worker.Robot, 0, len(cfg.DingTalk.Robots))
	for _, r := range cfg.DingTalk.Robots {
		w := worker.Robot{Name: r.Name, App: r.App, RobotCode: r.RobotCode,
			RateLimit: worker.RobotLimit{Messages: r.RateLimit.Messages, Per: r.RateLimit.Per}}
		for _, h := range r.Webhooks {
			w.Webhooks = append(w.Webhooks, dingtalk.Robot{Token: h.AccessToken, Secret: h.Secret})
		}
		robots = append(robots, w)
	}
	return robots
}

func producerRobots(cfg *config.Config) map[string]producer.Robot {
	robots := make(map[string]producer.Robot, len(cfg.DingTalk.Robots))
	for _, r := range cfg.DingTalk.Robots {
		robots[r.Name] = producer.Robot{App: r.App}
	}
	return robots
}

func workerApps(cfg *config.Config) []worker.App {
	apps := make([]worker.App, 0, len(cfg.DingTalk.Apps))
	for _, a := range cfg.DingTalk.Apps {
		apps = append(apps, worker.App{Name: a.Name, AgentID: a.AgentID, Credentials: dingtalk.Credentials{
			AppKey: a.AppKey, AppSecret: a.AppSecret, CorpID: a.CorpID, CorpSecret: a.CorpSecret},
			RateLimit: worker.AppLimits{
				CallsPerSecond:      workerLimit(a.RateLimit.CallsPerSecond),
				RecipientsPerMinute: workerLimit(a.RateLimit.RecipientsPerMinute),
			}})
	}
	return apps
}

// workerLimit turns a limit of config.yaml, where 0 is off, into the
// worker's, where 0 is the default and negative is off.
func workerLimit(p *int) int {
	switch {
	case p == nil:
		return 0
	case *p == 0:
		return -1
	}
	return *p
}

func appNames(cfg *config.Config) []string {
	names := make([]string, 0, len(cfg.DingTalk.Apps))
	for _, a := range cfg.DingTalk.Apps {
		names = append(names, a.Name)
	}
	return names
}

// newWorker returns the worker of cfg and the Prometheus registry it
// measures into (served at worker.metrics_listen, if set).
func newWorker(cfg *config.Config, rdb redis.UniversalClient, log *zap.Logger) (*worker.Worker, *prometheus.Registry, error) {
	client, err := newDingTalkClient(cfg.DingTalk)
	if err != nil {
		return nil, nil, err
	}
	reg, m := newRegistry()
	w, err := worker.New(worker.Config{
		Redis:            rdb,
		KeyPrefix:        cfg.Redis.KeyPrefix,
		Retention:        cfg.Outcome.Retention,
		Apps:             workerApps(cfg),
		Robots:           workerRobots(cfg),
		Client:           client,
		Concurrency:      cfg.Worker.Concurrency,
		RetryBaseDelay:   cfg.Worker.RetryBaseDelay,
		RetryMaxDelay:    cfg.Worker.RetryMaxDelay,
		ShutdownTimeout:  cfg.Worker.ShutdownTimeout,
		FleetCallsPer20s: workerLimit(cfg.DingTalk.RateLimit.CallsPer20s),
		MaxLimitWait:     cfg.Worker.MaxLimitWait,
		ResultsDelay:     cfg.Worker.ResultsDelay,
		ResultsMaxDelay:  cfg.Worker.ResultsMaxDelay,
		ResendDelay:      cfg.Worker.ResendDelay,
		MaxRetry:         cfg.Worker.MaxRetry,
		CoalesceWindow:   cfg.Worker.CoalesceWindow,
		CoalesceMaxDelay: cfg.Worker.CoalesceMaxDelay,
		Callback:         workerCallback(cfg.Callback),
		SessionPaths:     worker.SessionPaths(cfg.DingTalk.SessionPaths),
		Logger:           log.Named("worker"),
		Metrics:          m,
	})
	return w, reg, err
}

func workerCallback(c config.Callback) *worker.CallbackConfig {
	if !c.On() && c.ForwardURL == "" && c.Stream == "" {
		return nil
	}
	w := &worker.CallbackConfig{Token: c.Token, AESKey: c.AESKey, URL: c.URL, Tags: c.Tags,
		ForwardURL: c.ForwardURL, ForwardSecret: c.ForwardSecret, ForwardEvents: c.ForwardEvents,
		StreamKey: c.Stream, StreamMaxLen: c.StreamMaxLen, StreamEvents: c.StreamEvents}
	if c.FailedPullInterval != nil {
		w.FailedPullInterval = *c.FailedPullInterval
	}
	return w
}

func newProducer(cfg *config.Config, rdb redis.UniversalClient) (*producer.Producer, error) {
	var coalesce []string // apps whose messages coalesce by default
	for _, a := range cfg.DingTalk.Apps {
		if a.Coalesce {
			coalesce = append(coalesce, a.Name)
		}
	}
	return producer.New(producer.Config{
		Redis:         rdb,
		KeyPrefix:     cfg.Redis.KeyPrefix,
		Retention:     cfg.Outcome.Retention,
		Apps:          appNames(cfg),
		MaxRetry:      cfg.Worker.MaxRetry,
		MaxRecipients: cfg.API.MaxRecipients,
		CoalesceApps:  coalesce,
		Robots:        producerRobots(cfg),
	})
}

// setupProducer is setup plus a producer on its Redis, for the commands
// that queue or read messages.
func setupProducer(ctx context.Context, path string) (*env, *producer.Producer, error) {
	e, err := setup(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	p, err := newProducer(e.cfg, e.redis)
	if err != nil {
		e.close()
		return nil, nil, err
	}
	return e, p, nil
}

func stderrf(format string, args ...any) { fmt.Fprintf(os.Stderr, format, args...) }

// evictionRisk reads Redis's maxmemory-policy and reports whether it may
// evict keys: queued tasks, outcomes and the token cache would vanish
// without an error. ok is false when Redis does not tell (CONFIG may be
// disabled, as on some managed services).
// On a cluster every master is asked: one that may evict is enough.
func evictionRisk(ctx context.Context, rdb redis.UniversalClient) (policy string, risky, ok bool) {
	ask := func(c redis.Cmdable) (string, bool) {
		v, err := c.ConfigGet(ctx, "maxmemory-policy").Result()
		if err != nil || v["maxmemory-policy"] == "" {
			return "", false
		}
		return v["maxmemory-policy"], true
	}
	cc, isCluster := rdb.(*redis.ClusterClient)
	if !isCluster {
		policy, ok = ask(rdb)
		return policy, ok && policy != "noeviction", ok
	}
	var mu sync.Mutex
	ok = true
	_ = cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		p, answered := ask(m)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case !answered:
			ok = false
		case p != "noeviction" || policy == "":
			policy = p
		}
		return nil
	})
	if !ok || policy == "" {
		return "", false, false
	}
	return policy, policy != "noeviction", true
}

// warnEviction logs, loudly, a Redis that may evict dingq's keys.
func warnEviction(ctx context.Context, rdb redis.UniversalClient, log *zap.Logger) {
	policy, risky, ok := evictionRisk(ctx, rdb)
	switch {
	case !ok:
		log.Info("could not read redis's maxmemory-policy (CONFIG GET refused?): make sure it is noeviction")
	case risky:
		log.Error("REDIS MAY EVICT DINGQ'S KEYS: maxmemory-policy is not noeviction; under memory pressure "+
			"queued messages, outcomes and tokens can vanish without an error. Set maxmemory-policy noeviction.",
			zap.String("maxmemory_policy", policy))
	}
}
