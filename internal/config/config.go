package config

import (
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/internal/outcome"
	"github.com/dingq/dingq/producer"
	"github.com/dingq/dingq/worker"
)

// Fields tagged secret:"true" hold credentials. Their values never appear
// in an error message, and the DINGQ_ override code reads the tag too.

// Config is dingq's whole configuration. Load and Parse return it with
// every default applied; Default returns one with no apps.
type Config struct {
	// Redis is where asynq keeps its queues and dingq its outcomes.
	Redis Redis `yaml:"redis"`
	// DingTalk is the DingTalk API and the apps that send through it.
	DingTalk DingTalk `yaml:"dingtalk"`
	// Worker tunes the asynq server that delivers messages.
	Worker Worker `yaml:"worker"`
	// API is the HTTP API that accepts messages.
	API API `yaml:"api"`
	// Callback receives DingTalk's event pushes and says where they go.
	Callback Callback `yaml:"callback"`
	// Outcome is how long delivery results are kept.
	Outcome Outcome `yaml:"outcome"`
	// Log is the logger's level and format.
	Log Log `yaml:"log"`
}

// Redis is the Redis server dingq keeps its state in.
type Redis struct {
	// Addr is the server's host:port. If empty, "127.0.0.1:6379". Leave
	// it empty with Sentinel or Cluster.
	Addr string `yaml:"addr"`
	// Password is sent with AUTH. Secret. If empty, no AUTH is sent.
	Password string `yaml:"password" secret:"true"`
	// DB is the database number; it must be >= 0. If zero, database 0.
	DB int `yaml:"db"`
	// KeyPrefix starts every key dingq writes itself. It may hold only
	// letters, digits, '_', '.' and '-' (no ':' or braces, which Redis
	// Cluster gives a meaning). If empty, "dingq".
	KeyPrefix string `yaml:"key_prefix"`
	// Sentinel finds the master through Redis Sentinel, for failover.
	// Set it instead of Addr, never with Cluster.
	Sentinel Sentinel `yaml:"sentinel"`
	// Cluster spreads dingq's keys over a Redis Cluster. Set it instead of
	// Addr, never with Sentinel.
	Cluster RedisCluster `yaml:"cluster"`
}

// Sentinel is a master watched by Redis Sentinels. Password and DB of the
// redis section are the master's.
type Sentinel struct {
	// MasterName is the master's name in the sentinels' configuration.
	// Required with Addrs.
	MasterName string `yaml:"master_name"`
	// Addrs are the sentinels' host:port addresses, at least one (three
	// or more in production). Empty: Sentinel is not used.
	Addrs []string `yaml:"addrs"`
	// Password is sent to the sentinels with AUTH. Secret. If empty, none.
	Password string `yaml:"password" secret:"true"`
}

// On reports whether dingq finds its Redis through sentinels.
func (s *Sentinel) On() bool { return len(s.Addrs) > 0 || s.MasterName != "" }

// RedisCluster is a Redis Cluster. Password of the redis section is sent
// to every node; DB must be 0, the only one a cluster has.
type RedisCluster struct {
	// Addrs are host:port addresses of some of the cluster's nodes, at
	// least one; the rest are discovered. Empty: Cluster is not used.
	Addrs []string `yaml:"addrs"`
}

// On reports whether dingq's Redis is a cluster.
func (c *RedisCluster) On() bool { return len(c.Addrs) > 0 }

// DingTalk is the DingTalk open API and the apps dingq sends as.
type DingTalk struct {
	// BaseURL is the API's absolute http or https URL; point it at
	// `dingq fake-dingtalk` (http://127.0.0.1:9090) for tests.
	// If empty, "https://oapi.dingtalk.com".
	BaseURL string `yaml:"base_url"`
	// APIBaseURL is DingTalk's new API host (the v1.0 APIs, where the
	// enterprise robots send), an absolute http or https URL; the fake
	// serves it too. If empty, "https://api.dingtalk.com".
	APIBaseURL string `yaml:"api_base_url"`
	// Timeout bounds each HTTP call; it must be > 0 and <= 5m.
	// If zero, 10s.
	Timeout time.Duration `yaml:"timeout"`
	// Apps are the DingTalk apps messages are sent as. At least one is
	// required; there is no default.
	Apps []App `yaml:"apps"`
	// RateLimit holds the limits of the whole fleet.
	RateLimit FleetRateLimit `yaml:"rate_limit"`
	// SessionPaths are the session endpoints (seed 001, not in DingTalk's
	// published API). If empty, the seed article's.
	SessionPaths SessionPaths `yaml:"session_paths"`
	// Robots are the robots messages are sent through, by name. None by
	// default.
	Robots []Robot `yaml:"robots"`
}

// Robot is a robot producers send through by Name: a custom group robot
// (Webhooks) or an app's enterprise robot (App), exactly one of them.
type Robot struct {
	// Name is how producers pick the robot: unique among robots, 1 to 64
	// characters of a-z, 0-9, '_' and '-', starting with a letter or
	// digit. Required.
	Name string `yaml:"name"`
	// Webhooks are a custom group robot's webhooks: one robot, or several
	// robots of the same group chat, which take the messages in turn.
	Webhooks []RobotWebhook `yaml:"webhooks"`
	// RateLimit caps each webhook's messages, for all workers together.
	RateLimit RobotRateLimit `yaml:"rate_limit"`
	// App names the app (dingtalk.apps[].name, with app_key and
	// app_secret) whose enterprise robot this is: it messages users one
	// to one.
	App string `yaml:"app"`
	// RobotCode is the enterprise robot's code. If empty, the app's key.
	RobotCode string `yaml:"robot_code"`
}

// RobotWebhook is one custom robot's webhook.
type RobotWebhook struct {
	// AccessToken is the access_token of the robot's webhook URL. Secret.
	// Required.
	AccessToken string `yaml:"access_token" secret:"true"`
	// Secret is the robot's signing secret (加签, "SEC…"), when its
	// security setting is signing. Secret.
	Secret string `yaml:"secret" secret:"true"`
}

// RobotRateLimit is a custom robot's limit: DingTalk takes 20 messages a
// minute from a robot, then blocks it for 10 minutes. Change it only if
// DingTalk does (or, in a test against the fake, with the fake's).
type RobotRateLimit struct {
	// Messages a webhook sends in any Per; 1 to 1000. If zero, 20.
	Messages int `yaml:"messages"`
	// Per is the window of Messages; > 0. If zero, 1m.
	Per time.Duration `yaml:"per"`
}

// FleetRateLimit caps the calls of every worker together.
type FleetRateLimit struct {
	// CallsPer20s caps all calls to DingTalk, for its per-IP rule (10,000
	// calls in 20 s, then a 5-minute ban); >= 0, 0 turns it off. If
	// absent, 10000.
	CallsPer20s *int `yaml:"calls_per_20s"`
}

// AppRateLimit is an app's share of DingTalk's limits, for the whole
// fleet. Absent keys take DingTalk's standard-edition figures; 0 turns a
// limit off. Higher editions allow more calls: set what DingTalk granted.
type AppRateLimit struct {
	// CallsPerSecond caps the app's calls to each API; >= 0. If absent, 20.
	CallsPerSecond *int `yaml:"calls_per_second"`
	// RecipientsPerMinute caps the recipients (user ids plus department
	// ids) of the app's work notifications; >= 0. If absent, 5000.
	RecipientsPerMinute *int `yaml:"recipients_per_minute"`
}

// App is one DingTalk app, found by its Name. It gives exactly one form of
// credentials: AppKey and AppSecret, or the legacy CorpID and CorpSecret.
// No field has a default.
type App struct {
	// Name is how producers pick the app: unique, 1 to 64 characters of
	// a-z, 0-9, '_' and '-', starting with a letter or digit. Required.
	Name string `yaml:"name"`
	// AppKey is the app's key; it comes with AppSecret.
	AppKey string `yaml:"app_key"`
	// AppSecret is the app's secret; it comes with AppKey. Secret.
	AppSecret string `yaml:"app_secret" secret:"true"`
	// CorpID is the legacy corporation ID; it comes with CorpSecret.
	CorpID string `yaml:"corp_id"`
	// CorpSecret is the legacy corporation secret; it comes with CorpID.
	// Secret.
	CorpSecret string `yaml:"corp_secret" secret:"true"`
	// AgentID is the app's agent ID for work notifications; it must be
	// > 0. Required.
	AgentID int64 `yaml:"agent_id"`
	// RateLimit is the app's share of DingTalk's limits.
	RateLimit AppRateLimit `yaml:"rate_limit"`
	// Coalesce makes every message of the app coalesce, as if it asked
	// to ("coalesce": true): messages of the same content to at most 100
	// users each, due now, wait up to worker.coalesce_window for others
	// and go out together in calls of up to 100 users, each keeping its
	// own id and outcome. If false, only messages that ask coalesce.
	Coalesce bool `yaml:"coalesce"`
}

// Worker tunes how messages are delivered and retried.
type Worker struct {
	// Concurrency is how many messages are delivered at once; 1 to 1000.
	// If zero, 20.
	Concurrency int `yaml:"concurrency"`
	// MaxRetry is how many times a failed delivery is retried; 1 to 1000.
	// If zero, 25 (zero cannot mean "no retries").
	MaxRetry int `yaml:"max_retry"`
	// RetryBaseDelay is the delay before the first retry; later retries
	// back off from it. It must be > 0. If zero, 1s.
	RetryBaseDelay time.Duration `yaml:"retry_base_delay"`
	// RetryMaxDelay caps the delay between retries; it must be >=
	// RetryBaseDelay. If zero, 10m.
	RetryMaxDelay time.Duration `yaml:"retry_max_delay"`
	// ShutdownTimeout is how long a stopping worker waits for deliveries
	// in flight; it must be > 0. If zero, 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// MaxLimitWait is how far ahead a delivery takes a slot of the rate
	// limits and waits for it in place; a slot further off is asked for
	// once more after that long, then the delivery goes back to the queue
	// (not a failure). > 0, at most 1m. If zero, 2s.
	MaxLimitWait time.Duration `yaml:"max_limit_wait"`
	// ResultsDelay is how long after DingTalk accepted a broadcast's batch
	// its recipients' results are first asked for (getsendprogress, then
	// getsendresult); > 0. If zero, 10s.
	ResultsDelay time.Duration `yaml:"results_delay"`
	// ResultsMaxDelay caps the growing wait between two asks while DingTalk
	// is still delivering; >= ResultsDelay. If zero, 30m.
	ResultsMaxDelay time.Duration `yaml:"results_max_delay"`
	// ResendDelay is how long the recipients DingTalk dropped only for its
	// per-minute limits (143103, 143104) wait before they are sent once
	// more; >= 0. If zero, 1m.
	ResendDelay time.Duration `yaml:"resend_delay"`
	// CoalesceWindow is how long coalescing messages of the same app and
	// content wait for one more before they are sent together; counted in
	// whole seconds (asynq truncates), 1s to 1m. If zero, 1s.
	CoalesceWindow time.Duration `yaml:"coalesce_window"`
	// CoalesceMaxDelay caps how long the first of such messages waits;
	// >= CoalesceWindow, at most 10m. If zero, 5s, or CoalesceWindow if
	// that is longer.
	CoalesceMaxDelay time.Duration `yaml:"coalesce_max_delay"`
	// MetricsListen is the host:port a worker serves Prometheus metrics
	// on, at /metrics, without authentication: bind it where only
	// Prometheus reaches. If empty, metrics are not served.
	MetricsListen string `yaml:"metrics_listen"`
}

// API is the HTTP API producers call.
type API struct {
	// Listen is the host:port the API listens on. If empty,
	// "127.0.0.1:8080".
	Listen string `yaml:"listen"`
	// Tokens are the accepted bearer tokens, each at least 16 characters.
	// Secret. Required when Listen's host is not a loopback address
	// (127.0.0.0/8, ::1, localhost); an empty host, as in ":8080", is not
	// loopback. If empty on loopback, requests need no token.
	Tokens []string `yaml:"tokens" secret:"true"`
	// MaxBodyBytes caps a request body, not counting the ids of a
	// message's userid_list and dept_id_list; it must be > 0. If zero,
	// 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxRecipients caps the user ids plus department ids of one message;
	// 1 to 10,000,000. Messages over 100 users or 20 departments are sent
	// as broadcasts in batches. If zero, 1,000,000.
	MaxRecipients int `yaml:"max_recipients"`
	// UIUsers may log in to the asynq web UI at /ui/ with HTTP basic
	// authentication, as browsers ask for it; a bearer token of Tokens is
	// accepted there too. With neither users nor tokens the UI is open,
	// which the rules above allow on loopback only.
	UIUsers []UIUser `yaml:"ui_users"`
	// UIReadOnly lets the UI show queues and tasks but refuses every
	// action (delete, run, archive, pause, cancel) with 403.
	UIReadOnly bool `yaml:"ui_read_only"`
	// UIPrometheusURL is the Prometheus server the UI queries for its
	// charts of queue metrics, as an absolute http or https URL the api
	// reaches (asynqmon queries it server-side, not the browser). If
	// empty, the UI shows no charts.
	UIPrometheusURL string `yaml:"ui_prometheus_url"`
}

// UIUser is one login of the web UI.
type UIUser struct {
	// Name is the login: 1 to 64 characters, no ':'. Required.
	Name string `yaml:"name"`
	// Password is at least 16 characters. Secret. Required.
	Password string `yaml:"password" secret:"true"`
}

// Outcome is how long the result of a delivery is kept for lookups.
type Outcome struct {
	// Retention is how long a result is kept; it must be >= 1m.
	// If zero, 168h (7 days).
	Retention time.Duration `yaml:"retention"`
}

// Log is how dingq logs.
type Log struct {
	// Level is the least severe level written: debug, info, warn or
	// error. If empty, "info".
	Level string `yaml:"level"`
	// Format is json or console. If empty, "json".
	Format string `yaml:"format"`
}

// Defaults, in the order the fields are declared. Those the lower packages
// own are taken from them, so the two cannot drift apart.
const (
	defaultRedisAddr       = "127.0.0.1:6379"
	defaultKeyPrefix       = outcome.DefaultPrefix
	defaultBaseURL         = dingtalk.DefaultBaseURL
	defaultAPIBaseURL      = dingtalk.DefaultAPIBaseURL
	defaultTimeout         = dingtalk.DefaultTimeout
	defaultConcurrency     = 20
	defaultMaxRetry        = 25
	defaultRetryBaseDelay  = time.Second
	defaultRetryMaxDelay   = 10 * time.Minute
	defaultShutdownTimeout = 30 * time.Second
	defaultMaxLimitWait    = worker.DefaultMaxLimitWait
	defaultResultsDelay    = worker.DefaultResultsDelay
	defaultResultsMaxDelay = worker.DefaultResultsMaxDelay
	defaultResendDelay     = worker.DefaultResendDelay
	// Coalescing waits.
	defaultCoalesceWindow   = worker.DefaultCoalesceWindow
	defaultCoalesceMaxDelay = worker.DefaultCoalesceMaxDelay
	// DingTalk's standard edition.
	defaultCallsPerSecond      = worker.DefaultCallsPerSecond
	defaultRecipientsPerMinute = worker.DefaultRecipientsPerMinute
	defaultCallsPer20s         = worker.DefaultFleetCallsPer20s
	defaultListen              = "127.0.0.1:8080"
	defaultMaxBodyBytes        = 1 << 20
	defaultMaxRecipients       = 1_000_000
	maxMaxRecipients           = producer.MaxRecipientsLimit
	defaultRetention           = outcome.DefaultRetention
	defaultLogLevel            = "info"
	defaultLogFormat           = "json"
)

// Default returns a Config with every default set and no apps. It does not
// pass Validate until an app is added.
func Default() *Config {
	c := &Config{}
	c.setDefaults()
	return c
}

// Robot returns the robot called name and whether there is one.
func (c *Config) Robot(name string) (Robot, bool) {
	for _, r := range c.DingTalk.Robots {
		if r.Name == name {
			return r, true
		}
	}
	return Robot{}, false
}

// App returns the app called name and whether there is one.
func (c *Config) App(name string) (App, bool) {
	for _, a := range c.DingTalk.Apps {
		if a.Name == name {
			return a, true
		}
	}
	return App{}, false
}

// setDefaults replaces every zero value that has a default.
func (c *Config) setDefaults() {
	c.Redis.setDefaults()
	c.DingTalk.setDefaults()
	c.Worker.setDefaults()
	c.API.setDefaults()
	c.Callback.setDefaults()
	c.Outcome.setDefaults()
	c.Log.setDefaults()
}

func (r *Redis) setDefaults() {
	// An empty list in the file is no list.
	if len(r.Sentinel.Addrs) == 0 {
		r.Sentinel.Addrs = nil
	}
	if len(r.Cluster.Addrs) == 0 {
		r.Cluster.Addrs = nil
	}
	if r.Addr == "" && !r.Sentinel.On() && !r.Cluster.On() {
		r.Addr = defaultRedisAddr
	}
	if r.KeyPrefix == "" {
		r.KeyPrefix = defaultKeyPrefix
	}
}

func (d *DingTalk) setDefaults() {
	if d.BaseURL == "" {
		d.BaseURL = defaultBaseURL
	}
	if d.APIBaseURL == "" {
		d.APIBaseURL = defaultAPIBaseURL
	}
	if len(d.Robots) == 0 {
		d.Robots = nil
	}
	for i := range d.Robots {
		r := &d.Robots[i]
		if len(r.Webhooks) == 0 {
			r.Webhooks = nil
		}
		if r.RateLimit.Messages == 0 {
			r.RateLimit.Messages = dingtalk.RobotMessagesPerMinute
		}
		if r.RateLimit.Per == 0 {
			r.RateLimit.Per = time.Minute
		}
	}
	if d.Timeout == 0 {
		d.Timeout = defaultTimeout
	}
	for i := range d.Apps {
		d.Apps[i].setDefaults()
	}
	d.RateLimit.CallsPer20s = orDefault(d.RateLimit.CallsPer20s, defaultCallsPer20s)
	d.SessionPaths.setDefaults()
}

func (a *App) setDefaults() {
	a.RateLimit.CallsPerSecond = orDefault(a.RateLimit.CallsPerSecond, defaultCallsPerSecond)
	a.RateLimit.RecipientsPerMinute = orDefault(a.RateLimit.RecipientsPerMinute, defaultRecipientsPerMinute)
}

// orDefault returns p, or a pointer to def if p is nil.
func orDefault(p *int, def int) *int {
	if p == nil {
		return &def
	}
	return p
}

func (w *Worker) setDefaults() {
	if w.Concurrency == 0 {
		w.Concurrency = defaultConcurrency
	}
	if w.MaxRetry == 0 {
		w.MaxRetry = defaultMaxRetry
	}
	if w.RetryBaseDelay == 0 {
		w.RetryBaseDelay = defaultRetryBaseDelay
	}
	if w.RetryMaxDelay == 0 {
		w.RetryMaxDelay = defaultRetryMaxDelay
	}
	if w.ShutdownTimeout == 0 {
		w.ShutdownTimeout = defaultShutdownTimeout
	}
	if w.MaxLimitWait == 0 {
		w.MaxLimitWait = defaultMaxLimitWait
	}
	if w.ResultsDelay == 0 {
		w.ResultsDelay = defaultResultsDelay
	}
	if w.ResultsMaxDelay == 0 {
		w.ResultsMaxDelay = defaultResultsMaxDelay
	}
	if w.ResendDelay == 0 {
		w.ResendDelay = defaultResendDelay
	}
	if w.CoalesceWindow == 0 {
		w.CoalesceWindow = defaultCoalesceWindow
	}
	if w.CoalesceMaxDelay == 0 {
		w.CoalesceMaxDelay = max(defaultCoalesceMaxDelay, w.CoalesceWindow)
	}
}

func (a *API) setDefaults() {
	if len(a.UIUsers) == 0 {
		a.UIUsers = nil
	}
	if a.Listen == "" {
		a.Listen = defaultListen
	}
	if a.MaxBodyBytes == 0 {
		a.MaxBodyBytes = defaultMaxBodyBytes
	}
	if a.MaxRecipients == 0 {
		a.MaxRecipients = defaultMaxRecipients
	}
}

func (o *Outcome) setDefaults() {
	if o.Retention == 0 {
		o.Retention = defaultRetention
	}
}

func (l *Log) setDefaults() {
	if l.Level == "" {
		l.Level = defaultLogLevel
	}
	if l.Format == "" {
		l.Format = defaultLogFormat
	}
}
