package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// appYAML is the smallest dingtalk section that validates.
const appYAML = `
dingtalk:
  apps:
    - name: hr
      app_key: dingkeyhr
      app_secret: hrsecret
      agent_id: 1
`

func TestParseFullFile(t *testing.T) {
	const data = `# dingq in production
redis:
  addr: redis.internal:6380
  password: ${REDIS_PASSWORD}
  db: 3
  key_prefix: dingq-prod

dingtalk:
  base_url: http://127.0.0.1:9090   # dingq fake-dingtalk
  timeout: 15s
  apps:
    - name: hr
      app_key: dingabc123
      app_secret: ${HR_SECRET}
      agent_id: 2900000001
      coalesce: true
    - name: ops_alerts
      corp_id: dingcorp42
      corp_secret: "${OPS_SECRET}"
      agent_id: 7

worker:
  concurrency: 50
  max_retry: 10
  retry_base_delay: 2s
  retry_max_delay: 1h
  shutdown_timeout: 1m
  coalesce_window: 2s
  coalesce_max_delay: 30s

api:
  listen: 0.0.0.0:8443
  tokens:
    - ${API_TOKEN}
    - second-token-0123456789
  max_body_bytes: 65536

outcome:
  retention: 72h

log:
  level: debug
  format: console
`
	environ := []string{
		"REDIS_PASSWORD=p@ss: #word",
		"HR_SECRET=\"quoted\" & {braced}",
		"OPS_SECRET=ops-secret",
		"API_TOKEN=first-token-0123456789",
	}
	got, err := Parse([]byte(data), environ)
	if err != nil {
		t.Fatalf("Parse() = %v", err)
	}
	want := &Config{
		Redis: Redis{Addr: "redis.internal:6380", Password: "p@ss: #word", DB: 3, KeyPrefix: "dingq-prod"},
		DingTalk: DingTalk{
			BaseURL: "http://127.0.0.1:9090", APIBaseURL: "https://api.dingtalk.com",
			Timeout: 15 * time.Second,
			Apps: defaulted(
				App{Name: "hr", AppKey: "dingabc123", AppSecret: "\"quoted\" & {braced}", AgentID: 2900000001, Coalesce: true},
				App{Name: "ops_alerts", CorpID: "dingcorp42", CorpSecret: "ops-secret", AgentID: 7},
			),
			RateLimit:    FleetRateLimit{CallsPer20s: intp(10000)},
			SessionPaths: seedSessionPaths,
		},
		Worker: Worker{
			Concurrency:      50,
			MaxRetry:         10,
			RetryBaseDelay:   2 * time.Second,
			RetryMaxDelay:    time.Hour,
			ShutdownTimeout:  time.Minute,
			MaxLimitWait:     2 * time.Second,
			ResultsDelay:     10 * time.Second,
			ResultsMaxDelay:  30 * time.Minute,
			ResendDelay:      time.Minute,
			CoalesceWindow:   2 * time.Second,
			CoalesceMaxDelay: 30 * time.Second,
		},
		API: API{
			Listen:        "0.0.0.0:8443",
			Tokens:        []string{"first-token-0123456789", "second-token-0123456789"},
			MaxBodyBytes:  65536,
			MaxRecipients: 1_000_000,
		},
		Callback: Callback{TimestampWindow: 5 * time.Minute, StreamMaxLen: 100000, FailedPullInterval: durp(5 * time.Minute)},
		Outcome:  Outcome{Retention: 72 * time.Hour},
		Log:      Log{Level: "debug", Format: "console"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse() =\n%+v\nwant\n%+v", got, want)
	}
}

func TestParseAppliesDefaults(t *testing.T) {
	tests := []struct {
		name string
		yaml string
	}{
		{name: "keys left out", yaml: appYAML},
		{name: "keys empty", yaml: appYAML + `
redis:
  addr:
  key_prefix: ""
worker:
  concurrency: 0
  retry_max_delay:
api:
outcome: ~
log:
  level: ""
`},
	}
	want := Default()
	want.DingTalk.Apps = defaulted(App{Name: "hr", AppKey: "dingkeyhr", AppSecret: "hrsecret", AgentID: 1})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.yaml), nil)
			if err != nil {
				t.Fatalf("Parse() = %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Parse() = %+v, want %+v", got, want)
			}
		})
	}
}

func TestParseExpandsEnv(t *testing.T) {
	environ := []string{
		"KEY=from-env",
		"EMPTY=",
		"DB=7",
		"RETENTION=2h",
		"TWICE=first",
		"TWICE=second",
		"NULLISH=null",
	}
	tests := []struct {
		name    string
		yaml    string // the redis and outcome sections
		want    func(c *Config)
		wantErr string
	}{
		{name: "variable", yaml: "redis:\n  key_prefix: ${KEY}\n",
			want: func(c *Config) { c.Redis.KeyPrefix = "from-env" }},
		{name: "variable inside text", yaml: "redis:\n  key_prefix: a-${KEY}-b\n",
			want: func(c *Config) { c.Redis.KeyPrefix = "a-from-env-b" }},
		{name: "variable quoted", yaml: "redis:\n  key_prefix: \"${KEY}\"\n",
			want: func(c *Config) { c.Redis.KeyPrefix = "from-env" }},
		{name: "later entry wins", yaml: "redis:\n  key_prefix: ${TWICE}\n",
			want: func(c *Config) { c.Redis.KeyPrefix = "second" }},
		{name: "integer from env", yaml: "redis:\n  db: ${DB}\n",
			want: func(c *Config) { c.Redis.DB = 7 }},
		{name: "duration from env", yaml: "outcome:\n  retention: ${RETENTION}\n",
			want: func(c *Config) { c.Outcome.Retention = 2 * time.Hour }},
		{name: "default when unset", yaml: "redis:\n  db: ${NOPE:-4}\n",
			want: func(c *Config) { c.Redis.DB = 4 }},
		{name: "default when empty", yaml: "redis:\n  key_prefix: ${EMPTY:-fallback}\n",
			want: func(c *Config) { c.Redis.KeyPrefix = "fallback" }},
		{name: "default not used when set", yaml: "redis:\n  key_prefix: ${KEY:-fallback}\n",
			want: func(c *Config) { c.Redis.KeyPrefix = "from-env" }},
		{name: "empty default means the key's default", yaml: "redis:\n  key_prefix: ${NOPE:-}\n",
			want: func(c *Config) {}},
		{name: "set but empty is allowed", yaml: "redis:\n  key_prefix: ${EMPTY}\n",
			want: func(c *Config) {}},
		{name: "string stays a string", yaml: "redis:\n  password: ${NULLISH}\n  key_prefix: ${DB}\n",
			want: func(c *Config) { c.Redis.Password, c.Redis.KeyPrefix = "null", "7" }},
		{name: "empty integer means the default", yaml: "redis:\n  db: ${EMPTY}\nworker:\n  concurrency: ${EMPTY}\n",
			want: func(c *Config) {}},
		{name: "double dollar is a dollar", yaml: "redis:\n  password: pa$$word\n",
			want: func(c *Config) { c.Redis.Password = "pa$word" }},
		{name: "double dollar before a brace", yaml: "redis:\n  password: \"$${KEY}\"\n",
			want: func(c *Config) { c.Redis.Password = "${KEY}" }},
		{name: "bare dollar left alone", yaml: "redis:\n  password: $KEY$\n",
			want: func(c *Config) { c.Redis.Password = "$KEY$" }},
		{name: "comment lines ignored", yaml: "# password: ${NOPE}\nredis:\n  # key_prefix: ${NOPE}\n  db: 1\n",
			want: func(c *Config) { c.Redis.DB = 1 }},
		{name: "trailing comment ignored", yaml: "redis:\n  db: 2 # was ${NOPE}\n",
			want: func(c *Config) { c.Redis.DB = 2 }},
		{name: "hash inside a quoted value is no comment", yaml: "redis:\n  password: \"a #${KEY}\"\n",
			want: func(c *Config) { c.Redis.Password = "a #from-env" }},
		{name: "unset variable", yaml: "redis:\n  addr: localhost:6379\n  password: ${NOPE}\n",
			wantErr: "line 3: ${NOPE} is not set"},
		{name: "unset variable in a block scalar", yaml: "redis:\n  password: |\n    first\n    ${NOPE}\n",
			wantErr: "line 4: ${NOPE} is not set"},
		{name: "unterminated", yaml: "redis:\n  password: ${KEY\n",
			wantErr: `line 2: "${" has no closing "}" (write $$ for a literal $)`},
		{name: "bad name", yaml: "redis:\n  password: ${1KEY}\n",
			wantErr: "line 2: invalid variable name in ${...} (write $$ for a literal $)"},
		{name: "empty name", yaml: "redis:\n  password: \"${}\"\n",
			wantErr: "line 2: invalid variable name in ${...} (write $$ for a literal $)"},
		{name: "expanded value of the wrong type", yaml: "redis:\n  db: ${KEY}\n",
			wantErr: "line 2: redis.db: want an integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.yaml+appYAML), environ)
			if tt.wantErr != "" {
				if !hasError(err, tt.wantErr) {
					t.Fatalf("Parse() = %v, want an error %q", err, tt.wantErr)
				}
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Errorf("error is a %T, want *ParseError", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse() = %v", err)
			}
			want, err := Parse([]byte(appYAML), nil)
			if err != nil {
				t.Fatal(err)
			}
			tt.want(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Parse() = %+v, want %+v", got, want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{name: "unknown key", yaml: appYAML + "outcome:\n  retenton: 1h\n",
			want: `line 9: unknown key "outcome.retenton"`},
		{name: "unknown section", yaml: "redis:\n  db: 1\nworkers:\n  concurrency: 1\n",
			want: `line 3: unknown key "workers"`},
		{name: "unknown key in an app", yaml: "dingtalk:\n  apps:\n    - name: hr\n      agentid: 1\n",
			want: `line 4: unknown key "dingtalk.apps[0].agentid"`},
		{name: "key given twice", yaml: "redis:\n  db: 1\n  db: 2\n",
			want: `line 3: key "redis.db" is given twice (first on line 2)`},
		{name: "integer expected", yaml: "worker:\n  concurrency: many\n",
			want: "line 2: worker.concurrency: want an integer"},
		{name: "integer overflow", yaml: "redis:\n  db: 99999999999999999999\n",
			want: "line 2: redis.db: want an integer"},
		{name: "duration without unit", yaml: "dingtalk:\n  timeout: 10\n",
			want: "line 2: dingtalk.timeout: want a duration such as 10s or 1m30s"},
		{name: "section given a value", yaml: "redis: localhost\n",
			want: "line 1: redis: want a mapping, got a single value"},
		{name: "apps given a mapping", yaml: "dingtalk:\n  apps:\n    name: hr\n",
			want: "line 3: dingtalk.apps: want a list, got a mapping"},
		{name: "string given a list", yaml: "log:\n  level: [debug]\n",
			want: "line 2: log.level: want a string, got a list"},
		{name: "top level is a list", yaml: "- redis\n",
			want: "line 1: top level: want a mapping, got a list"},
		{name: "bad yaml", yaml: "redis:\n\tdb: 1\n",
			want: "line 2: found character that cannot start any token"},
		{name: "two documents", yaml: "redis:\n  db: 1\n---\nlog:\n  level: info\n",
			want: "line 3: only one YAML document is allowed"},
		{name: "merge of a scalar", yaml: "redis:\n  <<: x\n",
			want: "line 2: redis: << wants a mapping or a list of mappings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), nil)
			if !hasError(err, tt.want) {
				t.Fatalf("Parse() = %v, want an error %q", err, tt.want)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Errorf("error is a %T, want *ParseError", err)
			}
		})
	}
}

func TestParseAnchorsAndMerges(t *testing.T) {
	const data = `
dingtalk:
  apps:
    - &hr
      name: hr
      app_key: ${KEY}
      app_secret: $$ecret
      agent_id: 1
    - <<: *hr
      name: hr2
`
	c, err := Parse([]byte(data), []string{"KEY=k"})
	if err != nil {
		t.Fatalf("Parse() = %v", err)
	}
	want := defaulted(
		App{Name: "hr", AppKey: "k", AppSecret: "$ecret", AgentID: 1},
		App{Name: "hr2", AppKey: "k", AppSecret: "$ecret", AgentID: 1},
	)
	if !reflect.DeepEqual(c.DingTalk.Apps, want) {
		t.Errorf("apps = %+v, want %+v (each value expanded once)", c.DingTalk.Apps, want)
	}
}

func TestParseEmpty(t *testing.T) {
	tests := []struct {
		name string
		yaml string
	}{
		{name: "nothing", yaml: ""},
		{name: "comments only", yaml: "# nothing here\n"},
		{name: "null document", yaml: "---\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), nil)
			if got := leafErrors(err); len(got) != 1 || got[0].Error() != "dingtalk.apps: at least one app is required" {
				t.Errorf("Parse() = %v, want only the missing app", err)
			}
		})
	}
}

func TestParseEnvOverrides(t *testing.T) {
	const data = appYAML + `
    - name: ops
      corp_id: corp
      corp_secret: opssecret
      agent_id: 2
api:
  tokens: [from-file-0123456789]
`
	checkEnvOverrides(t, data, nil, []envOverrideCase{
		{name: "none", want: func(c *Config) {}},
		{name: "string", environ: []string{"DINGQ_REDIS_ADDR=redis:6380"},
			want: func(c *Config) { c.Redis.Addr = "redis:6380" }},
		{name: "secret string", environ: []string{"DINGQ_REDIS_PASSWORD=pw"},
			want: func(c *Config) { c.Redis.Password = "pw" }},
		{name: "key with underscore", environ: []string{"DINGQ_REDIS_KEY_PREFIX=other"},
			want: func(c *Config) { c.Redis.KeyPrefix = "other" }},
		{name: "int", environ: []string{"DINGQ_REDIS_DB=5"},
			want: func(c *Config) { c.Redis.DB = 5 }},
		{name: "int in worker", environ: []string{"DINGQ_WORKER_CONCURRENCY=64"},
			want: func(c *Config) { c.Worker.Concurrency = 64 }},
		{name: "int64", environ: []string{"DINGQ_API_MAX_BODY_BYTES=2048"},
			want: func(c *Config) { c.API.MaxBodyBytes = 2048 }},
		{name: "duration", environ: []string{"DINGQ_DINGTALK_TIMEOUT=3s"},
			want: func(c *Config) { c.DingTalk.Timeout = 3 * time.Second }},
		{name: "duration retention", environ: []string{"DINGQ_OUTCOME_RETENTION=24h"},
			want: func(c *Config) { c.Outcome.Retention = 24 * time.Hour }},
		{name: "list", environ: []string{"DINGQ_API_TOKENS=aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbb,,"},
			want: func(c *Config) { c.API.Tokens = []string{"aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"} }},
		{name: "log level", environ: []string{"DINGQ_LOG_LEVEL=warn"},
			want: func(c *Config) { c.Log.Level = "warn" }},
		{name: "empty resets to the default", environ: []string{"DINGQ_REDIS_KEY_PREFIX=", "DINGQ_API_TOKENS="},
			want: func(c *Config) { c.API.Tokens = nil }},
		{name: "app by index", environ: []string{"DINGQ_DINGTALK_APPS_0_APP_SECRET=new-secret"},
			want: func(c *Config) { c.DingTalk.Apps[0].AppSecret = "new-secret" }},
		{name: "second app int64", environ: []string{"DINGQ_DINGTALK_APPS_1_AGENT_ID=99"},
			want: func(c *Config) { c.DingTalk.Apps[1].AgentID = 99 }},
		{name: "later entry wins", environ: []string{"DINGQ_REDIS_DB=1", "DINGQ_REDIS_DB=2"},
			want: func(c *Config) { c.Redis.DB = 2 }},
		{name: "DINGQ_CONFIG is not an override", environ: []string{"DINGQ_CONFIG=/etc/dingq.yaml"},
			want: func(c *Config) {}},
		{name: "DINGQ_TEST_ variables are ignored", environ: []string{"DINGQ_TEST_REDIS=1"},
			want: func(c *Config) {}},
		{name: "other variables are ignored", environ: []string{"HOME=/root", "dingq_redis_db=x"},
			want: func(c *Config) {}},
		{name: "bad int", environ: []string{"DINGQ_REDIS_DB=five"},
			wantErr: `DINGQ_REDIS_DB: want an integer for redis.db, got "five"`},
		{name: "int64 overflow", environ: []string{"DINGQ_DINGTALK_APPS_0_AGENT_ID=9223372036854775808"},
			wantErr: `DINGQ_DINGTALK_APPS_0_AGENT_ID: want an integer for dingtalk.apps[0].agent_id, got "9223372036854775808"`},
		{name: "bad duration", environ: []string{"DINGQ_DINGTALK_TIMEOUT=10"},
			wantErr: `DINGQ_DINGTALK_TIMEOUT: want a duration such as 10s or 1m30s for dingtalk.timeout, got "10"`},
		{name: "app index out of range", environ: []string{"DINGQ_DINGTALK_APPS_2_APP_SECRET=x"},
			wantErr: "DINGQ_DINGTALK_APPS_2_APP_SECRET: dingtalk.apps[2] does not exist: dingtalk.apps has 2 items"},
		{name: "unknown app field", environ: []string{"DINGQ_DINGTALK_APPS_0_SECRET=x"},
			wantErr: "DINGQ_DINGTALK_APPS_0_SECRET: names no configuration key (DINGQ_CONFIG and DINGQ_TEST_* are ignored)"},
		{name: "unknown variable", environ: []string{"DINGQ_REDIS_ADRESS=x"},
			wantErr: "DINGQ_REDIS_ADRESS: names no configuration key (DINGQ_CONFIG and DINGQ_TEST_* are ignored)"},
		{name: "section is not a key", environ: []string{"DINGQ_REDIS=x"},
			wantErr: "DINGQ_REDIS: names no configuration key (DINGQ_CONFIG and DINGQ_TEST_* are ignored)"},
		{name: "override then validation", environ: []string{"DINGQ_WORKER_CONCURRENCY=0", "DINGQ_WORKER_MAX_RETRY=-1"},
			wantErr: "worker.max_retry: must be 0 (the default) to 1000"},
	})
}

// envOverrideCase is a set of DINGQ_ variables (environ) and what they
// change in the configuration (want), or the error they make (wantErr).
type envOverrideCase struct {
	name    string
	environ []string
	want    func(c *Config)
	wantErr string
}

// checkEnvOverrides parses data with base and each case's environ: the
// configuration is data's with base, changed as the case wants, or the
// error is the case's.
func checkEnvOverrides(t *testing.T, data string, base []string, tests []envOverrideCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(data), append(slices.Clone(base), tt.environ...))
			if tt.wantErr != "" {
				if !hasError(err, tt.wantErr) {
					t.Fatalf("Parse() = %v, want an error %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse() = %v", err)
			}
			want, err := Parse([]byte(data), base)
			if err != nil {
				t.Fatal(err)
			}
			tt.want(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Parse() = %+v, want %+v", got, want)
			}
		})
	}
}

func TestParseEnvErrorsAreTyped(t *testing.T) {
	_, err := Parse([]byte(appYAML), []string{"DINGQ_NOPE=1", "DINGQ_REDIS_DB=x"})
	got := leafErrors(err)
	if len(got) != 2 {
		t.Fatalf("Parse() = %v, want two errors", err)
	}
	for _, e := range got {
		if _, ok := e.(*EnvError); !ok {
			t.Errorf("error %q is a %T, want *EnvError", e, e)
		}
	}
	var ee *EnvError
	if !errors.As(err, &ee) || ee.Name != "DINGQ_NOPE" {
		t.Errorf("errors.As found %+v, want DINGQ_NOPE first", ee)
	}
}

func TestParseReferencedDingqVariablesAreNotOverrides(t *testing.T) {
	const data = appYAML + "api:\n  tokens: [\"${DINGQ_API_TOKEN}\"]\n# app_key: ${DINGQ_OLD_KEY}\n"
	environ := []string{"DINGQ_API_TOKEN=0123456789abcdef", "DINGQ_OLD_KEY=x"}
	c, err := Parse([]byte(data), environ)
	if err != nil {
		t.Fatalf("Parse() = %v", err)
	}
	if !reflect.DeepEqual(c.API.Tokens, []string{"0123456789abcdef"}) {
		t.Errorf("tokens = %q", c.API.Tokens)
	}
}

// TestEnvOverrideTypes covers the kinds dingq's Config does not use yet, on
// a struct of its own.
func TestEnvOverrideTypes(t *testing.T) {
	type inner struct {
		On      bool    `yaml:"on"`
		Count   uint16  `yaml:"count"`
		Ratio   float64 `yaml:"ratio"`
		Skipped string  `yaml:"-"`
		NoTag   string
		private string
	}
	type outer struct {
		Inner inner `yaml:"inner"`
	}
	tests := []struct {
		name    string
		env     string
		value   string
		want    inner
		wantErr string
	}{
		{name: "bool", env: "INNER_ON", value: "true", want: inner{On: true}},
		{name: "bad bool", env: "INNER_ON", value: "yes", wantErr: `want true or false for inner.on, got "yes"`},
		{name: "uint", env: "INNER_COUNT", value: "65535", want: inner{Count: 65535}},
		{name: "uint overflow", env: "INNER_COUNT", value: "65536", wantErr: `want a non-negative integer for inner.count, got "65536"`},
		{name: "float", env: "INNER_RATIO", value: "0.5", want: inner{Ratio: 0.5}},
		{name: "bad float", env: "INNER_RATIO", value: "half", wantErr: `want a number for inner.ratio, got "half"`},
		{name: "untagged field by its lower-cased name", env: "INNER_NOTAG", value: "x", want: inner{NoTag: "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o outer
			target, msg := findEnvTarget(reflect.ValueOf(&o).Elem(), tt.env, "")
			if msg != "" || !target.v.IsValid() {
				t.Fatalf("findEnvTarget(%q) = %+v, %q", tt.env, target, msg)
			}
			msg = setFromEnv(target, tt.value)
			if msg != tt.wantErr {
				t.Fatalf("setFromEnv() = %q, want %q", msg, tt.wantErr)
			}
			if msg == "" && o.Inner != tt.want {
				t.Errorf("got %+v, want %+v", o.Inner, tt.want)
			}
		})
	}
	for _, name := range []string{"INNER_SKIPPED", "INNER_PRIVATE", "INNER", "INNER_"} {
		var o outer
		if target, msg := findEnvTarget(reflect.ValueOf(&o).Elem(), name, ""); target.v.IsValid() || msg != "" {
			t.Errorf("findEnvTarget(%q) = %+v, %q, want nothing", name, target, msg)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	t.Setenv("DINGQ_TEST_HR_SECRET", "hr-secret")
	t.Setenv("DINGQ_WORKER_CONCURRENCY", "7")

	good := write("good.yaml", strings.Replace(appYAML, "hrsecret", "${DINGQ_TEST_HR_SECRET}", 1))
	unset := write("config.yaml", "redis:\n  db: 1\n\n\n\n\n\n\n\n\n\n"+
		"  password: ${DINGQ_HR_SECRET}\n")
	unknown := write("unknown.yaml", appYAML+"outcome:\n  retenton: 1h\n")

	t.Run("good file", func(t *testing.T) {
		c, err := Load(good)
		if err != nil {
			t.Fatalf("Load() = %v", err)
		}
		if c.DingTalk.Apps[0].AppSecret != "hr-secret" || c.Worker.Concurrency != 7 {
			t.Errorf("Load() = %+v, want the secret expanded and the override applied", c)
		}
	})
	tests := []struct {
		name string
		path string
		want string
	}{
		{name: "unset variable names file and line", path: unset, want: unset + ":12: ${DINGQ_HR_SECRET} is not set"},
		{name: "unknown key names file and line", path: unknown, want: unknown + `:9: unknown key "outcome.retenton"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.path)
			if !hasError(err, tt.want) {
				t.Fatalf("Load() = %v, want an error %q", err, tt.want)
			}
		})
	}
	t.Run("nonexistent file", func(t *testing.T) {
		path := filepath.Join(dir, "missing.yaml")
		_, err := Load(path)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
			t.Fatalf("Load() = %v, want a not-exist error naming %s", err, path)
		}
	})
}

func TestRateLimits(t *testing.T) {
	tests := []struct {
		name       string
		yaml       string
		environ    []string
		wantCalls  int
		wantRecips int
		wantFleet  int
		wantErr    string
	}{
		{name: "absent: DingTalk's standard edition", yaml: appYAML,
			wantCalls: 20, wantRecips: 5000, wantFleet: 10000},
		{name: "higher edition", yaml: `
dingtalk:
  apps:
    - {name: hr, app_key: dingkeyhr, app_secret: hrsecret, agent_id: 1, rate_limit: {calls_per_second: 40, recipients_per_minute: 10000}}
  rate_limit:
    calls_per_20s: 20000
`, wantCalls: 40, wantRecips: 10000, wantFleet: 20000},
		{name: "zero turns a limit off", yaml: `
dingtalk:
  apps:
    - {name: hr, app_key: dingkeyhr, app_secret: hrsecret, agent_id: 1, rate_limit: {calls_per_second: 0}}
  rate_limit: {calls_per_20s: 0}
`, wantCalls: 0, wantRecips: 5000, wantFleet: 0},
		{name: "from the environment", yaml: appYAML,
			environ:   []string{"DINGQ_DINGTALK_APPS_0_RATE_LIMIT_CALLS_PER_SECOND=60", "DINGQ_DINGTALK_RATE_LIMIT_CALLS_PER_20S=0"},
			wantCalls: 60, wantRecips: 5000, wantFleet: 0},
		{name: "negative", yaml: `
dingtalk:
  apps:
    - {name: hr, app_key: dingkeyhr, app_secret: hrsecret, agent_id: 1, rate_limit: {recipients_per_minute: -5}}
`, wantErr: "dingtalk.apps[0].rate_limit.recipients_per_minute: must be >= 0 (0 turns the limit off), got -5"},
		{name: "not a number from the environment", yaml: appYAML,
			environ: []string{"DINGQ_DINGTALK_RATE_LIMIT_CALLS_PER_20S=lots"},
			wantErr: "dingtalk.rate_limit.calls_per_20s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml), tt.environ)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse() = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse() = %v", err)
			}
			rl := c.DingTalk.Apps[0].RateLimit
			if *rl.CallsPerSecond != tt.wantCalls || *rl.RecipientsPerMinute != tt.wantRecips || *c.DingTalk.RateLimit.CallsPer20s != tt.wantFleet {
				t.Errorf("limits: calls %d, recipients %d, fleet %d; want %d, %d, %d", *rl.CallsPerSecond,
					*rl.RecipientsPerMinute, *c.DingTalk.RateLimit.CallsPer20s, tt.wantCalls, tt.wantRecips, tt.wantFleet)
			}
		})
	}
}
