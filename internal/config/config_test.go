package config

import (
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// leafErrors flattens errors.Join trees into the errors they hold.
func leafErrors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leafErrors(e)...)
		}
		return out
	}
	return []error{err}
}

// hasError reports whether err holds a leaf error whose text is want.
func hasError(err error, want string) bool {
	for _, e := range leafErrors(err) {
		if e.Error() == want {
			return true
		}
	}
	return false
}

// validConfig returns a Config that passes Validate, with every default set.
func validConfig() *Config {
	c := Default()
	c.DingTalk.Apps = []App{
		{Name: "hr", AppKey: "dingkeyhr", AppSecret: "hrsecret", AgentID: 1},
		{Name: "ops", CorpID: "dingcorp", CorpSecret: "opssecret", AgentID: 2},
	}
	return c
}

func intp(n int) *int { return &n }

// defaulted returns apps with their defaults set, as Parse leaves them:
// DingTalk's standard-edition rate limits.
func defaulted(apps ...App) []App {
	for i := range apps {
		apps[i].setDefaults()
	}
	return apps
}

func durp(d time.Duration) *time.Duration { return &d }

var seedSessionPaths = SessionPaths{Get: "/topapi/v2/user/getsession", Create: "/topapi/v2/im/create_session",
	Close: "/topapi/v2/im/close_session"}

func TestDefault(t *testing.T) {
	want := &Config{
		Redis: Redis{Addr: "127.0.0.1:6379", KeyPrefix: "dingq"},
		DingTalk: DingTalk{BaseURL: "https://oapi.dingtalk.com", APIBaseURL: "https://api.dingtalk.com", Timeout: 10 * time.Second,
			RateLimit: FleetRateLimit{CallsPer20s: intp(10000)}, SessionPaths: seedSessionPaths},
		Worker: Worker{
			Concurrency:      20,
			MaxRetry:         25,
			RetryBaseDelay:   time.Second,
			RetryMaxDelay:    10 * time.Minute,
			ShutdownTimeout:  30 * time.Second,
			MaxLimitWait:     2 * time.Second,
			ResultsDelay:     10 * time.Second,
			ResultsMaxDelay:  30 * time.Minute,
			ResendDelay:      time.Minute,
			CoalesceWindow:   time.Second,
			CoalesceMaxDelay: 5 * time.Second,
		},
		API:      API{Listen: "127.0.0.1:8080", MaxBodyBytes: 1 << 20, MaxRecipients: 1_000_000},
		Callback: Callback{TimestampWindow: 5 * time.Minute, StreamMaxLen: 100000, FailedPullInterval: durp(5 * time.Minute)},
		Outcome:  Outcome{Retention: 168 * time.Hour},
		Log:      Log{Level: "info", Format: "json"},
	}
	if got := Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("Default() = %+v, want %+v", got, want)
	}
	// With no apps, the only problem is the missing app.
	err := Default().Validate()
	if got := leafErrors(err); len(got) != 1 || got[0].Error() != "dingtalk.apps: at least one app is required" {
		t.Errorf("Default().Validate() = %v, want only the missing app", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   string // one of the errors, in full; "" for none
	}{
		{name: "valid", change: func(c *Config) {}},
		{name: "zero values mean defaults", change: func(c *Config) {
			*c = Config{DingTalk: DingTalk{Apps: c.DingTalk.Apps}}
		}},
		{name: "redis addr not host:port", change: func(c *Config) { c.Redis.Addr = "localhost" },
			want: `redis.addr: "localhost" is not host:port`},
		{name: "redis addr port not numeric", change: func(c *Config) { c.Redis.Addr = "localhost:redis" },
			want: `redis.addr: "localhost:redis" is not host:port`},
		{name: "redis db negative", change: func(c *Config) { c.Redis.DB = -1 },
			want: "redis.db: must be >= 0"},
		{name: "redis db 15", change: func(c *Config) { c.Redis.DB = 15 }},
		{name: "key prefix with colon", change: func(c *Config) { c.Redis.KeyPrefix = "dingq:x" },
			want: `redis.key_prefix: "dingq:x" may hold only letters, digits, '_', '.' and '-'`},
		{name: "key prefix with braces", change: func(c *Config) { c.Redis.KeyPrefix = "{dingq}" },
			want: `redis.key_prefix: "{dingq}" may hold only letters, digits, '_', '.' and '-'`},
		{name: "key prefix allowed characters", change: func(c *Config) { c.Redis.KeyPrefix = "Ding_q.test-1" }},
		{name: "base url relative", change: func(c *Config) { c.DingTalk.BaseURL = "/api" },
			want: `dingtalk.base_url: "/api" is not an absolute http or https URL`},
		{name: "base url ftp", change: func(c *Config) { c.DingTalk.BaseURL = "ftp://example.com" },
			want: `dingtalk.base_url: "ftp://example.com" is not an absolute http or https URL`},
		{name: "base url unparsable", change: func(c *Config) { c.DingTalk.BaseURL = "http://[::1" },
			want: `dingtalk.base_url: "http://[::1" is not an absolute http or https URL`},
		{name: "base url http fake", change: func(c *Config) { c.DingTalk.BaseURL = "http://127.0.0.1:9090" }},
		{name: "timeout negative", change: func(c *Config) { c.DingTalk.Timeout = -time.Second },
			want: "dingtalk.timeout: must be > 0 and <= 5m0s"},
		{name: "timeout too long", change: func(c *Config) { c.DingTalk.Timeout = 5*time.Minute + 1 },
			want: "dingtalk.timeout: must be > 0 and <= 5m0s"},
		{name: "timeout at limit", change: func(c *Config) { c.DingTalk.Timeout = 5 * time.Minute }},
		{name: "no apps", change: func(c *Config) { c.DingTalk.Apps = nil },
			want: "dingtalk.apps: at least one app is required"},
		{name: "app name missing", change: func(c *Config) { c.DingTalk.Apps[1].Name = "" },
			want: "dingtalk.apps[1].name: is required"},
		{name: "app name upper case", change: func(c *Config) { c.DingTalk.Apps[0].Name = "HR" },
			want: `dingtalk.apps[0].name: "HR" must be 1 to 64 of a-z, 0-9, '_' and '-', starting with a letter or digit`},
		{name: "app name starts with dash", change: func(c *Config) { c.DingTalk.Apps[0].Name = "-hr" },
			want: `dingtalk.apps[0].name: "-hr" must be 1 to 64 of a-z, 0-9, '_' and '-', starting with a letter or digit`},
		{name: "app name 65 characters", change: func(c *Config) { c.DingTalk.Apps[0].Name = strings.Repeat("a", 65) },
			want: `dingtalk.apps[0].name: "` + strings.Repeat("a", 65) + `" must be 1 to 64 of a-z, 0-9, '_' and '-', starting with a letter or digit`},
		{name: "app name 64 characters", change: func(c *Config) { c.DingTalk.Apps[0].Name = strings.Repeat("a", 64) }},
		{name: "app name used twice", change: func(c *Config) {
			c.DingTalk.Apps = append(c.DingTalk.Apps, App{Name: "hr", AppKey: "k", AppSecret: "s", AgentID: 3})
		}, want: `dingtalk.apps[2].name: "hr" is used twice`},
		{name: "agent id zero", change: func(c *Config) { c.DingTalk.Apps[1].AgentID = 0 },
			want: "dingtalk.apps[1].agent_id: must be > 0"},
		{name: "agent id negative", change: func(c *Config) { c.DingTalk.Apps[0].AgentID = -5 },
			want: "dingtalk.apps[0].agent_id: must be > 0"},
		{name: "no credentials", change: func(c *Config) {
			c.DingTalk.Apps[0] = App{Name: "hr", AgentID: 1}
		}, want: "dingtalk.apps[0]: give app_key and app_secret, or corp_id and corp_secret"},
		{name: "both credential forms", change: func(c *Config) {
			c.DingTalk.Apps[0].CorpID, c.DingTalk.Apps[0].CorpSecret = "corp", "corpsecret"
		}, want: "dingtalk.apps[0]: give app_key and app_secret, or corp_id and corp_secret, not both"},
		{name: "forms mixed by halves", change: func(c *Config) {
			c.DingTalk.Apps[0] = App{Name: "hr", AppKey: "k", CorpSecret: "s", AgentID: 1}
		}, want: "dingtalk.apps[0]: give app_key and app_secret, or corp_id and corp_secret, not both"},
		{name: "app secret missing", change: func(c *Config) { c.DingTalk.Apps[0].AppSecret = "" },
			want: "dingtalk.apps[0].app_secret: is required with app_key"},
		{name: "app key missing", change: func(c *Config) { c.DingTalk.Apps[0].AppKey = "" },
			want: "dingtalk.apps[0].app_key: is required with app_secret"},
		{name: "corp secret missing", change: func(c *Config) { c.DingTalk.Apps[1].CorpSecret = "" },
			want: "dingtalk.apps[1].corp_secret: is required with corp_id"},
		{name: "corp id missing", change: func(c *Config) { c.DingTalk.Apps[1].CorpID = "" },
			want: "dingtalk.apps[1].corp_id: is required with corp_secret"},
		{name: "concurrency negative", change: func(c *Config) { c.Worker.Concurrency = -1 },
			want: "worker.concurrency: must be 1 to 1000"},
		{name: "concurrency too high", change: func(c *Config) { c.Worker.Concurrency = 1001 },
			want: "worker.concurrency: must be 1 to 1000"},
		{name: "concurrency 1000", change: func(c *Config) { c.Worker.Concurrency = 1000 }},
		{name: "max retry negative", change: func(c *Config) { c.Worker.MaxRetry = -1 },
			want: "worker.max_retry: must be 0 (the default) to 1000"},
		{name: "max retry too high", change: func(c *Config) { c.Worker.MaxRetry = 1001 },
			want: "worker.max_retry: must be 0 (the default) to 1000"},
		{name: "retry base delay negative", change: func(c *Config) { c.Worker.RetryBaseDelay = -time.Second },
			want: "worker.retry_base_delay: must be > 0"},
		{name: "retry max delay below base", change: func(c *Config) {
			c.Worker.RetryBaseDelay, c.Worker.RetryMaxDelay = time.Minute, time.Second
		}, want: "worker.retry_max_delay: 1s is less than worker.retry_base_delay (1m0s)"},
		{name: "retry max delay below default base", change: func(c *Config) {
			c.Worker.RetryBaseDelay, c.Worker.RetryMaxDelay = 0, 500*time.Millisecond
		}, want: "worker.retry_max_delay: 500ms is less than worker.retry_base_delay (1s)"},
		{name: "retry delays equal", change: func(c *Config) {
			c.Worker.RetryBaseDelay, c.Worker.RetryMaxDelay = time.Minute, time.Minute
		}},
		{name: "shutdown timeout negative", change: func(c *Config) { c.Worker.ShutdownTimeout = -1 },
			want: "worker.shutdown_timeout: must be > 0"},
		{name: "coalesce window below a second", change: func(c *Config) { c.Worker.CoalesceWindow = 500 * time.Millisecond },
			want: "worker.coalesce_window: must be >= 1s and <= 1m0s"},
		{name: "coalesce window negative", change: func(c *Config) { c.Worker.CoalesceWindow = -time.Second },
			want: "worker.coalesce_window: must be >= 1s and <= 1m0s"},
		{name: "coalesce window too long", change: func(c *Config) { c.Worker.CoalesceWindow = time.Minute + time.Second },
			want: "worker.coalesce_window: must be >= 1s and <= 1m0s"},
		{name: "coalesce window one minute", change: func(c *Config) {
			c.Worker.CoalesceWindow, c.Worker.CoalesceMaxDelay = time.Minute, time.Minute
		}},
		{name: "coalesce window longer than the default max delay", change: func(c *Config) {
			c.Worker.CoalesceWindow, c.Worker.CoalesceMaxDelay = 30*time.Second, 0
		}},
		{name: "coalesce max delay below window", change: func(c *Config) {
			c.Worker.CoalesceWindow, c.Worker.CoalesceMaxDelay = 10*time.Second, 5*time.Second
		}, want: "worker.coalesce_max_delay: 5s is less than worker.coalesce_window (10s)"},
		{name: "coalesce max delay below default window", change: func(c *Config) {
			c.Worker.CoalesceWindow, c.Worker.CoalesceMaxDelay = 0, 500*time.Millisecond
		}, want: "worker.coalesce_max_delay: 500ms is less than worker.coalesce_window (1s)"},
		{name: "coalesce max delay too long", change: func(c *Config) { c.Worker.CoalesceMaxDelay = 11 * time.Minute },
			want: "worker.coalesce_max_delay: must be <= 10m0s"},
		{name: "coalesce max delay ten minutes", change: func(c *Config) { c.Worker.CoalesceMaxDelay = 10 * time.Minute }},
		{name: "app coalesces", change: func(c *Config) { c.DingTalk.Apps[0].Coalesce = true }},
		{name: "results delay negative", change: func(c *Config) { c.Worker.ResultsDelay = -time.Second },
			want: "worker.results_delay: must be > 0"},
		{name: "results max delay below results delay", change: func(c *Config) {
			c.Worker.ResultsDelay, c.Worker.ResultsMaxDelay = time.Minute, time.Second
		}, want: "worker.results_max_delay: 1s is less than worker.results_delay (1m0s)"},
		{name: "resend delay negative", change: func(c *Config) { c.Worker.ResendDelay = -time.Second },
			want: "worker.resend_delay: must be >= 0"},
		{name: "max recipients negative", change: func(c *Config) { c.API.MaxRecipients = -1 },
			want: "api.max_recipients: must be 1 to 10000000"},
		{name: "max recipients over ten million", change: func(c *Config) { c.API.MaxRecipients = 10_000_001 },
			want: "api.max_recipients: must be 1 to 10000000"},
		{name: "max recipients ten million", change: func(c *Config) { c.API.MaxRecipients = 10_000_000 }},
		{name: "ui user", change: func(c *Config) {
			c.API.UIUsers = []UIUser{{Name: "ops", Password: "0123456789abcdef"}}
		}},
		{name: "ui user without name", change: func(c *Config) {
			c.API.UIUsers = []UIUser{{Password: "0123456789abcdef"}}
		}, want: "api.ui_users[0].name: is required"},
		{name: "ui user name with colon", change: func(c *Config) {
			c.API.UIUsers = []UIUser{{Name: "a:b", Password: "0123456789abcdef"}}
		}, want: "api.ui_users[0].name: must be 1 to 64 characters, without ':'"},
		{name: "ui user twice", change: func(c *Config) {
			c.API.UIUsers = []UIUser{{Name: "ops", Password: "0123456789abcdef"}, {Name: "ops", Password: "0123456789abcdeg"}}
		}, want: `api.ui_users[1].name: "ops" is already a user`},
		{name: "ui user short password", change: func(c *Config) {
			c.API.UIUsers = []UIUser{{Name: "ops", Password: "short"}}
		}, want: "api.ui_users[0].password: must be at least 16 characters"},
		{name: "ui prometheus url relative", change: func(c *Config) { c.API.UIPrometheusURL = "prometheus:9090" },
			want: `api.ui_prometheus_url: "prometheus:9090" is not an absolute http or https URL`},
		{name: "ui prometheus url", change: func(c *Config) { c.API.UIPrometheusURL = "http://prometheus:9090" }},
		{name: "worker metrics listen", change: func(c *Config) { c.Worker.MetricsListen = ":9101" }},
		{name: "worker metrics listen bad", change: func(c *Config) { c.Worker.MetricsListen = "9101" },
			want: `worker.metrics_listen: "9101" is not host:port`},
		{name: "sentinel", change: func(c *Config) {
			c.Redis.Addr = ""
			c.Redis.Sentinel = Sentinel{MasterName: "mymaster", Addrs: []string{"s1:26379", "s2:26379"}}
		}},
		{name: "sentinel without master name", change: func(c *Config) {
			c.Redis.Addr = ""
			c.Redis.Sentinel = Sentinel{Addrs: []string{"s1:26379"}}
		}, want: "redis.sentinel.master_name: is required with redis.sentinel.addrs"},
		{name: "sentinel without addrs", change: func(c *Config) {
			c.Redis.Addr = ""
			c.Redis.Sentinel = Sentinel{MasterName: "mymaster"}
		}, want: "redis.sentinel.addrs: at least one sentinel is required with redis.sentinel.master_name"},
		{name: "sentinel addr not host:port", change: func(c *Config) {
			c.Redis.Addr = ""
			c.Redis.Sentinel = Sentinel{MasterName: "m", Addrs: []string{"s1:26379", "s2"}}
		}, want: `redis.sentinel.addrs[1]: "s2" is not host:port`},
		{name: "sentinel and addr", change: func(c *Config) {
			c.Redis.Sentinel = Sentinel{MasterName: "m", Addrs: []string{"s1:26379"}}
		}, want: "redis.addr: set redis.addr or redis.sentinel, not both (an empty DINGQ_REDIS_ADDR= clears it)"},
		{name: "cluster", change: func(c *Config) {
			c.Redis.Addr = ""
			c.Redis.Cluster = RedisCluster{Addrs: []string{"n1:7000", "n2:7000", "n3:7000"}}
		}},
		{name: "cluster and addr", change: func(c *Config) {
			c.Redis.Cluster = RedisCluster{Addrs: []string{"n1:7000"}}
		}, want: "redis.addr: set redis.addr or redis.cluster, not both (an empty DINGQ_REDIS_ADDR= clears it)"},
		{name: "cluster with db", change: func(c *Config) {
			c.Redis.Addr = ""
			c.Redis.DB = 2
			c.Redis.Cluster = RedisCluster{Addrs: []string{"n1:7000"}}
		}, want: "redis.db: must be 0 with redis.cluster: a cluster has only database 0"},
		{name: "cluster addr bad", change: func(c *Config) {
			c.Redis.Addr = ""
			c.Redis.Cluster = RedisCluster{Addrs: []string{"n1"}}
		}, want: `redis.cluster.addrs[0]: "n1" is not host:port`},
		{name: "cluster and sentinel", change: func(c *Config) {
			c.Redis.Addr = ""
			c.Redis.Cluster = RedisCluster{Addrs: []string{"n1:7000"}}
			c.Redis.Sentinel = Sentinel{MasterName: "m", Addrs: []string{"s1:26379"}}
		}, want: "redis.sentinel: set redis.sentinel or redis.cluster, not both"},
		{name: "callback token without aes_key", change: func(c *Config) {
			c.Callback.Token, c.Callback.OwnerKey = "tok123456", "corp"
		}, want: "callback.aes_key: 0 bytes, want exactly 43 characters of [a-zA-Z0-9]"},
		{name: "callback token too short", change: func(c *Config) {
			c.Callback.Token, c.Callback.AESKey, c.Callback.OwnerKey = "tok", strings.Repeat("a", 43), "corp"
		}, want: "callback.token: 3 characters, want 6 to 64"},
		{name: "callback without owner key", change: func(c *Config) {
			c.Callback.Token, c.Callback.AESKey = "tok123456", strings.Repeat("a", 43)
		}, want: "callback.owner_key: required with callback.token: the corpId (API registrations) or the app's AppKey (console ones)"},
		{name: "callback complete", change: func(c *Config) {
			c.Callback.Token, c.Callback.AESKey, c.Callback.OwnerKey = "tok123456", strings.Repeat("a", 43), "corp"
			c.Callback.URL = "https://dingq.example.com/v1/callbacks/dingtalk"
		}},
		{name: "callback url without token", change: func(c *Config) { c.Callback.URL = "https://x.example.com/cb" },
			want: "callback.token: required with callback.url"},
		{name: "callback url relative", change: func(c *Config) {
			c.Callback.Token, c.Callback.AESKey, c.Callback.OwnerKey = "tok123456", strings.Repeat("a", 43), "corp"
			c.Callback.URL = "/v1/callbacks/dingtalk"
		}, want: "callback.url: must be an absolute http or https URL"},
		{name: "forward url without secret", change: func(c *Config) { c.Callback.ForwardURL = "http://app.internal/events" },
			want: "callback.forward_secret: required with forward_url: at least 16 characters"},
		{name: "timestamp window too long", change: func(c *Config) { c.Callback.TimestampWindow = 2 * time.Hour },
			want: "callback.timestamp_window: must be > 0 and <= 1h"},
		{name: "failed pull too often", change: func(c *Config) { c.Callback.FailedPullInterval = durp(30 * time.Second) },
			want: "callback.failed_pull_interval: must be 0s (never) or at least 1m"},
		{name: "failed pull never", change: func(c *Config) { c.Callback.FailedPullInterval = durp(0) }},
		{name: "session path relative", change: func(c *Config) { c.DingTalk.SessionPaths.Get = "getsession" },
			want: "dingtalk.session_paths.get: must be a path starting with /"},
		{name: "listen not host:port", change: func(c *Config) { c.API.Listen = "8080" },
			want: `api.listen: "8080" is not host:port`},
		{name: "tokens required on all interfaces", change: func(c *Config) { c.API.Listen = "0.0.0.0:8080" },
			want: "api.tokens: required when api.listen (0.0.0.0:8080) is not a loopback address"},
		{name: "tokens required on empty host", change: func(c *Config) { c.API.Listen = ":8080" },
			want: "api.tokens: required when api.listen (:8080) is not a loopback address"},
		{name: "tokens required on a LAN address", change: func(c *Config) { c.API.Listen = "10.1.2.3:8080" },
			want: "api.tokens: required when api.listen (10.1.2.3:8080) is not a loopback address"},
		{name: "tokens required on a host name", change: func(c *Config) { c.API.Listen = "dingq.internal:8080" },
			want: "api.tokens: required when api.listen (dingq.internal:8080) is not a loopback address"},
		{name: "no tokens on 127.0.0.2", change: func(c *Config) { c.API.Listen = "127.0.0.2:8080" }},
		{name: "no tokens on ::1", change: func(c *Config) { c.API.Listen = "[::1]:8080" }},
		{name: "no tokens on localhost", change: func(c *Config) { c.API.Listen = "localhost:8080" }},
		{name: "tokens on all interfaces", change: func(c *Config) {
			c.API.Listen, c.API.Tokens = "0.0.0.0:8080", []string{"0123456789abcdef"}
		}},
		{name: "token too short", change: func(c *Config) { c.API.Tokens = []string{"0123456789abcdef", "short"} },
			want: "api.tokens[1]: must be at least 16 characters"},
		{name: "max body negative", change: func(c *Config) { c.API.MaxBodyBytes = -1 },
			want: "api.max_body_bytes: must be > 0"},
		{name: "retention too short", change: func(c *Config) { c.Outcome.Retention = 59 * time.Second },
			want: "outcome.retention: must be >= 1m0s"},
		{name: "retention one minute", change: func(c *Config) { c.Outcome.Retention = time.Minute }},
		{name: "log level unknown", change: func(c *Config) { c.Log.Level = "verbose" },
			want: `log.level: "verbose" is not one of debug, info, warn, error`},
		{name: "log level upper case", change: func(c *Config) { c.Log.Level = "INFO" },
			want: `log.level: "INFO" is not one of debug, info, warn, error`},
		{name: "log format unknown", change: func(c *Config) { c.Log.Format = "text" },
			want: `log.format: "text" is not one of json, console`},
		{name: "log debug console", change: func(c *Config) { c.Log.Level, c.Log.Format = "debug", "console" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.change(c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !hasError(err, tt.want) {
				t.Fatalf("Validate() = %v, want an error %q", err, tt.want)
			}
			for _, e := range leafErrors(err) {
				if _, ok := e.(*FieldError); !ok {
					t.Errorf("error %q is a %T, want *FieldError", e, e)
				}
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := validConfig()
	c.Redis.DB = -1
	c.DingTalk.Apps[1].AgentID = 0
	c.Log.Format = "xml"
	err := c.Validate()
	var keys []string
	for _, e := range leafErrors(err) {
		fe, ok := e.(*FieldError)
		if !ok {
			t.Fatalf("error %q is a %T, want *FieldError", e, e)
		}
		keys = append(keys, fe.Key)
	}
	want := []string{"redis.db", "dingtalk.apps[1].agent_id", "log.format"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("keys = %q, want %q", keys, want)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Key != "redis.db" {
		t.Errorf("errors.As found %v, want the redis.db error", fe)
	}
}

func TestValidateDoesNotChangeConfig(t *testing.T) {
	c := &Config{DingTalk: DingTalk{Apps: []App{{Name: "hr", AppKey: "k", AppSecret: "s", AgentID: 1}}}}
	want := *c
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("Validate changed the config to %+v", c)
	}
}

func TestApp(t *testing.T) {
	c := validConfig()
	tests := []struct {
		name    string
		app     string
		wantOK  bool
		wantKey string
	}{
		{name: "app key form", app: "hr", wantOK: true, wantKey: "dingkeyhr"},
		{name: "corp form", app: "ops", wantOK: true},
		{name: "missing", app: "sales"},
		{name: "empty name", app: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, ok := c.App(tt.app)
			if ok != tt.wantOK {
				t.Fatalf("App(%q) ok = %v, want %v", tt.app, ok, tt.wantOK)
			}
			if ok && (a.Name != tt.app || a.AppKey != tt.wantKey) {
				t.Errorf("App(%q) = %+v", tt.app, a)
			}
		})
	}
}

func TestSecretsNeverInErrors(t *testing.T) {
	const secret = "S3cr3t-d0-n0t-sh0w"
	env := []string{"SECRET=" + secret, "DINGQ_TEST_SECRET=" + secret}
	checkSecretErrors(t, secret, env, []secretErrorCase{
		{name: "app secret, bad agent id", yaml: `
dingtalk:
  apps:
    - {name: hr, app_key: k, app_secret: "` + secret + `", agent_id: 0}
`, want: "dingtalk.apps[0].agent_id: must be > 0"},
		{name: "app secret from env, half a pair", yaml: `
dingtalk:
  apps:
    - {name: hr, app_secret: "${SECRET}", agent_id: 1}
`, want: "dingtalk.apps[0].app_key: is required with app_secret"},
		{name: "app secret with corp secret", yaml: `
dingtalk:
  apps:
    - {name: hr, app_key: k, app_secret: "${SECRET}", corp_id: c, corp_secret: ` + secret + `x, agent_id: 1}
`, want: "dingtalk.apps[0]: give app_key and app_secret, or corp_id and corp_secret, not both"},
		{name: "corp secret alone", yaml: `
dingtalk:
  apps:
    - {name: hr, corp_secret: ` + secret + `, agent_id: 1}
`, want: "dingtalk.apps[0].corp_id: is required with corp_secret"},
		{name: "short token is the secret", yaml: `
api:
  tokens: ["${SECRET:-x}", "` + secret[:10] + `"]
`, want: "api.tokens[1]: must be at least 16 characters"},
		{name: "token list given as a string", yaml: `
api:
  tokens: ` + secret + `
`, want: "line 3: api.tokens: want a list, got a single value"},
		{name: "token as a mapping", yaml: `
api:
  tokens:
    - {` + secret + `: 1}
`, want: "line 4: api.tokens[0]: want a string, got a mapping"},
		{name: "password as a list", yaml: `
redis:
  password: [` + secret + `]
`, want: "line 3: redis.password: want a string, got a list"},
		{name: "secret holding dollar brace", yaml: `
redis:
  password: "` + secret + `${oops"
`, want: `line 3: "${" has no closing "}" (write $$ for a literal $)`},
		{name: "secret with bad name in braces", yaml: `
redis:
  password: "${` + secret + `}"
`, want: "line 3: invalid variable name in ${...} (write $$ for a literal $)"},
		{name: "password with unknown key beside", yaml: `
redis:
  password: ` + secret + `
  passwd: x
`, want: `line 4: unknown key "redis.passwd"`},
		{name: "secret override, validation fails", yaml: "", environ: []string{
			"DINGQ_REDIS_PASSWORD=" + secret,
			"DINGQ_API_TOKENS=" + secret[:8],
		}, want: "api.tokens[0]: must be at least 16 characters"},
		{name: "ui password too short", yaml: `
api:
  ui_users: [{name: ops, password: "` + secret[:10] + `"}]
`, want: "api.ui_users[0].password: must be at least 16 characters"},
		{name: "sentinel password, no master", yaml: `
redis:
  sentinel: {addrs: ["s:26379"], password: "` + secret + `"}
`, want: "redis.sentinel.master_name: is required with redis.sentinel.addrs"},
		{name: "secret override of a missing app", yaml: "", environ: []string{
			"DINGQ_DINGTALK_APPS_0_APP_SECRET=" + secret,
		}, want: "DINGQ_DINGTALK_APPS_0_APP_SECRET: dingtalk.apps[0] does not exist: dingtalk.apps has 0 items"},
	})
}

// secretErrorCase is a configuration (yaml, with environ) whose error
// must be want, and must not show the secret.
type secretErrorCase struct {
	name    string
	yaml    string
	environ []string
	want    string // the error the case is about
}

// checkSecretErrors parses each case with env and its environ: the error
// is the case's, and shows no part of secret.
func checkSecretErrors(t *testing.T, secret string, env []string, tests []secretErrorCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), append(slices.Clone(env), tt.environ...))
			if !hasError(err, tt.want) {
				t.Errorf("Parse() = %v, want an error %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), secret[:8]) {
				t.Errorf("error shows the secret:\n%v", err)
			}
		})
	}
}

// TestExampleConfig keeps the config.yaml shipped at the repository root
// loading and valid.
func TestExampleConfig(t *testing.T) {
	data, err := os.ReadFile("../../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	environ := []string{
		"DINGQ_CONFIG=config.yaml",
		"DINGQ_HR_APP_SECRET=hr-app-secret",
		"DINGQ_API_TOKEN=0123456789abcdef0123",
	}
	c, err := Parse(data, environ)
	if err != nil {
		t.Fatalf("config.yaml: %v", err)
	}
	// The example spells out every default.
	want := Default()
	want.DingTalk.Apps = defaulted(App{Name: "hr", AppKey: "dingfakehr", AppSecret: "hr-app-secret", AgentID: 123456})
	want.API.Tokens = []string{"0123456789abcdef0123"}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("config.yaml = %+v\nwant %+v", c, want)
	}

	// Without its secrets it says which one is missing.
	_, err = Parse(data, environ[:2])
	var pe *ParseError
	if !errors.As(err, &pe) || !strings.Contains(pe.Message, "${DINGQ_API_TOKEN} is not set") {
		t.Errorf("without DINGQ_API_TOKEN: %v", err)
	}
}
