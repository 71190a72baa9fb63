package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// robotsConfig is validConfig with a custom group robot of two webhooks
// (robots[0]) and app hr's enterprise robot (robots[1]).
func robotsConfig() *Config {
	c := validConfig()
	c.DingTalk.Robots = []Robot{
		{Name: "alerts", Webhooks: []RobotWebhook{{AccessToken: "tok0", Secret: "SECzero"}, {AccessToken: "tok1"}}},
		{Name: "hrbot", App: "hr"},
	}
	return c
}

// robotsYAML has both kinds of robot; the tokens and secrets come from the
// environment (robotsEnv).
const robotsYAML = `
dingtalk:
  api_base_url: http://127.0.0.1:9090
  apps:
    - name: hr
      app_key: dingkeyhr
      app_secret: hrsecret
      agent_id: 1
    - name: ops
      corp_id: dingcorp
      corp_secret: opssecret
      agent_id: 2
  robots:
    - name: alerts
      webhooks:
        - access_token: ${ALERTS_TOKEN_0}
          secret: ${ALERTS_SECRET_0}
        - access_token: "${ALERTS_TOKEN_1}"
      rate_limit:
        messages: 10
        per: 30s
    - name: hrbot
      app: hr
      robot_code: dingrobothr
`

var robotsEnv = []string{"ALERTS_TOKEN_0=tok0", "ALERTS_SECRET_0=SECzero", "ALERTS_TOKEN_1=tok1"}

func TestRobotDefaults(t *testing.T) {
	d := Default()
	if d.DingTalk.APIBaseURL != "https://api.dingtalk.com" {
		t.Errorf("Default() api_base_url = %q, want %q", d.DingTalk.APIBaseURL, "https://api.dingtalk.com")
	}
	if d.DingTalk.Robots != nil {
		t.Errorf("Default() robots = %+v, want none", d.DingTalk.Robots)
	}

	tests := []struct {
		name string
		yaml string
		want Robot
	}{
		{name: "rate_limit left out", yaml: `
    - name: alerts
      webhooks: [{access_token: t}]
`, want: Robot{Name: "alerts", Webhooks: []RobotWebhook{{AccessToken: "t"}},
			RateLimit: RobotRateLimit{Messages: 20, Per: time.Minute}}},
		{name: "rate_limit zero", yaml: `
    - name: alerts
      webhooks: [{access_token: t}]
      rate_limit: {messages: 0, per: 0s}
`, want: Robot{Name: "alerts", Webhooks: []RobotWebhook{{AccessToken: "t"}},
			RateLimit: RobotRateLimit{Messages: 20, Per: time.Minute}}},
		{name: "only messages given", yaml: `
    - name: alerts
      webhooks: [{access_token: t}]
      rate_limit: {messages: 5}
`, want: Robot{Name: "alerts", Webhooks: []RobotWebhook{{AccessToken: "t"}},
			RateLimit: RobotRateLimit{Messages: 5, Per: time.Minute}}},
		{name: "enterprise robot, empty webhooks", yaml: `
    - name: hrbot
      app: hr
      webhooks: []
`, want: Robot{Name: "hrbot", App: "hr", RateLimit: RobotRateLimit{Messages: 20, Per: time.Minute}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(appYAML+"  robots:"+tt.yaml), nil)
			if err != nil {
				t.Fatalf("Parse() = %v", err)
			}
			if len(c.DingTalk.Robots) != 1 || !reflect.DeepEqual(c.DingTalk.Robots[0], tt.want) {
				t.Errorf("robots = %+v, want [%+v]", c.DingTalk.Robots, tt.want)
			}
			if c.DingTalk.APIBaseURL != "https://api.dingtalk.com" {
				t.Errorf("api_base_url = %q, want the default", c.DingTalk.APIBaseURL)
			}
		})
	}
}

func TestParseRobots(t *testing.T) {
	c, err := Parse([]byte(robotsYAML), robotsEnv)
	if err != nil {
		t.Fatalf("Parse() = %v", err)
	}
	if c.DingTalk.APIBaseURL != "http://127.0.0.1:9090" {
		t.Errorf("api_base_url = %q, want %q", c.DingTalk.APIBaseURL, "http://127.0.0.1:9090")
	}
	want := []Robot{
		{Name: "alerts", Webhooks: []RobotWebhook{{AccessToken: "tok0", Secret: "SECzero"}, {AccessToken: "tok1"}},
			RateLimit: RobotRateLimit{Messages: 10, Per: 30 * time.Second}},
		{Name: "hrbot", App: "hr", RobotCode: "dingrobothr", RateLimit: RobotRateLimit{Messages: 20, Per: time.Minute}},
	}
	if !reflect.DeepEqual(c.DingTalk.Robots, want) {
		t.Errorf("robots = %+v\nwant %+v", c.DingTalk.Robots, want)
	}
	for _, name := range []string{"alerts", "hrbot"} {
		if r, ok := c.Robot(name); !ok || r.Name != name {
			t.Errorf("Robot(%q) = %+v, %v", name, r, ok)
		}
	}
	if r, ok := c.Robot("hr"); ok {
		t.Errorf("Robot(%q) = %+v, want none: hr is an app", "hr", r)
	}

	// A robot's unknown key is refused like any other.
	_, err = Parse([]byte(robotsYAML+"      token: x\n"), robotsEnv)
	if want := `line 25: unknown key "dingtalk.robots[1].token"`; !hasError(err, want) {
		t.Errorf("unknown key: Parse() = %v, want %q", err, want)
	}
}

func TestValidateRobots(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   string // the one error, in full; "" for none
	}{
		{name: "valid", change: func(c *Config) {}},
		{name: "no robots", change: func(c *Config) { c.DingTalk.Robots = nil }},
		{name: "robot named as an app", change: func(c *Config) { c.DingTalk.Robots[1].Name = "hr" }},
		{name: "name 64 characters", change: func(c *Config) { c.DingTalk.Robots[0].Name = strings.Repeat("a", 64) }},
		{name: "enterprise robot with robot_code", change: func(c *Config) { c.DingTalk.Robots[1].RobotCode = "code" }},
		{name: "webhook without secret", change: func(c *Config) { c.DingTalk.Robots[0].Webhooks[0].Secret = "" }},
		{name: "messages 0 is the default 20", change: func(c *Config) { c.DingTalk.Robots[0].RateLimit.Messages = 0 }},
		{name: "per 0 is the default 1m", change: func(c *Config) { c.DingTalk.Robots[0].RateLimit.Per = 0 }},
		{name: "messages 1", change: func(c *Config) { c.DingTalk.Robots[0].RateLimit.Messages = 1 }},
		{name: "messages 1000", change: func(c *Config) { c.DingTalk.Robots[0].RateLimit.Messages = 1000 }},
		{name: "api_base_url empty is the default", change: func(c *Config) { c.DingTalk.APIBaseURL = "" }},
		{name: "api_base_url http fake", change: func(c *Config) { c.DingTalk.APIBaseURL = "http://127.0.0.1:9090" }},

		{name: "name missing", change: func(c *Config) { c.DingTalk.Robots[1].Name = "" },
			want: "dingtalk.robots[1].name: is required"},
		{name: "name upper case", change: func(c *Config) { c.DingTalk.Robots[0].Name = "Alerts" },
			want: `dingtalk.robots[0].name: "Alerts" must be 1 to 64 of a-z, 0-9, '_' and '-', starting with a letter or digit`},
		{name: "name with a dot", change: func(c *Config) { c.DingTalk.Robots[0].Name = "robot.alerts" },
			want: `dingtalk.robots[0].name: "robot.alerts" must be 1 to 64 of a-z, 0-9, '_' and '-', starting with a letter or digit`},
		{name: "name 65 characters", change: func(c *Config) { c.DingTalk.Robots[0].Name = strings.Repeat("a", 65) },
			want: `dingtalk.robots[0].name: "` + strings.Repeat("a", 65) + `" must be 1 to 64 of a-z, 0-9, '_' and '-', starting with a letter or digit`},
		{name: "duplicate name", change: func(c *Config) { c.DingTalk.Robots[1].Name = "alerts" },
			want: `dingtalk.robots[1].name: "alerts" is used twice`},
		{name: "neither webhooks nor app", change: func(c *Config) { c.DingTalk.Robots[0].Webhooks = nil },
			want: "dingtalk.robots[0]: give webhooks (a custom group robot) or app (an enterprise robot)"},
		{name: "empty webhooks, no app", change: func(c *Config) { c.DingTalk.Robots[0].Webhooks = []RobotWebhook{} },
			want: "dingtalk.robots[0]: give webhooks (a custom group robot) or app (an enterprise robot)"},
		{name: "both webhooks and app", change: func(c *Config) { c.DingTalk.Robots[0].App = "hr" },
			want: "dingtalk.robots[0]: give webhooks (a custom group robot) or app (an enterprise robot), not both"},
		{name: "empty access_token", change: func(c *Config) { c.DingTalk.Robots[0].Webhooks[1].AccessToken = "" },
			want: "dingtalk.robots[0].webhooks[1].access_token: is required"},
		{name: "secret without access_token", change: func(c *Config) { c.DingTalk.Robots[0].Webhooks[0].AccessToken = "" },
			want: "dingtalk.robots[0].webhooks[0].access_token: is required"},
		{name: "app not in dingtalk.apps", change: func(c *Config) { c.DingTalk.Robots[1].App = "sales" },
			want: `dingtalk.robots[1].app: "sales" is not one of dingtalk.apps`},
		{name: "app with corp_id credentials only", change: func(c *Config) { c.DingTalk.Robots[1].App = "ops" },
			want: `dingtalk.robots[1].app: app "ops" has no app_key: an enterprise robot's token takes app_key and app_secret`},
		{name: "robot_code without app", change: func(c *Config) { c.DingTalk.Robots[0].RobotCode = "code" },
			want: "dingtalk.robots[0].robot_code: is for an enterprise robot (with app)"},
		{name: "messages over 1000", change: func(c *Config) { c.DingTalk.Robots[0].RateLimit.Messages = 1001 },
			want: "dingtalk.robots[0].rate_limit.messages: must be 1 to 1000"},
		{name: "messages negative", change: func(c *Config) { c.DingTalk.Robots[1].RateLimit.Messages = -1 },
			want: "dingtalk.robots[1].rate_limit.messages: must be 1 to 1000"},
		{name: "per negative", change: func(c *Config) { c.DingTalk.Robots[0].RateLimit.Per = -time.Second },
			want: "dingtalk.robots[0].rate_limit.per: must be > 0"},
		{name: "the same webhook twice in a robot", change: func(c *Config) {
			c.DingTalk.Robots[0].Webhooks[1].AccessToken = c.DingTalk.Robots[0].Webhooks[0].AccessToken
		}, want: "dingtalk.robots[0].webhooks[1].access_token: is the same webhook as dingtalk.robots[0].webhooks[0].access_token"},
		{name: "the same webhook in two robots", change: func(c *Config) {
			c.DingTalk.Robots = append(c.DingTalk.Robots, Robot{Name: "alerts-critical",
				Webhooks: []RobotWebhook{{AccessToken: c.DingTalk.Robots[0].Webhooks[1].AccessToken}}})
		}, want: "dingtalk.robots[2].webhooks[0].access_token: is the same webhook as dingtalk.robots[0].webhooks[1].access_token"},
		{name: "the webhook URL as access_token", change: func(c *Config) {
			c.DingTalk.Robots[0].Webhooks[0].AccessToken = "https://oapi.dingtalk.com/robot/send?access_token=" + c.DingTalk.Robots[0].Webhooks[0].AccessToken
		}, want: "dingtalk.robots[0].webhooks[0].access_token: give only the access_token of the webhook's URL, not the URL"},
		{name: "api_base_url relative", change: func(c *Config) { c.DingTalk.APIBaseURL = "/v1.0" },
			want: `dingtalk.api_base_url: "/v1.0" is not an absolute http or https URL`},
		{name: "api_base_url ftp", change: func(c *Config) { c.DingTalk.APIBaseURL = "ftp://api.dingtalk.com" },
			want: `dingtalk.api_base_url: "ftp://api.dingtalk.com" is not an absolute http or https URL`},
		{name: "api_base_url without host", change: func(c *Config) { c.DingTalk.APIBaseURL = "https://" },
			want: `dingtalk.api_base_url: "https://" is not an absolute http or https URL`},
		{name: "api_base_url unparsable", change: func(c *Config) { c.DingTalk.APIBaseURL = "http://[::1" },
			want: `dingtalk.api_base_url: "http://[::1" is not an absolute http or https URL`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := robotsConfig()
			tt.change(c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			leaves := leafErrors(err)
			if len(leaves) != 1 || leaves[0].Error() != tt.want {
				t.Fatalf("Validate() = %v, want only %q", err, tt.want)
			}
			var fe *FieldError
			if !errors.As(leaves[0], &fe) || fe.Key != strings.SplitN(tt.want, ": ", 2)[0] {
				t.Errorf("error %v: want a *FieldError keyed %q", leaves[0], strings.SplitN(tt.want, ": ", 2)[0])
			}
		})
	}
}

// TestValidateRobotsReportsEveryProblem: each robot's problems are
// reported, not only the first.
func TestValidateRobotsReportsEveryProblem(t *testing.T) {
	c := robotsConfig()
	c.DingTalk.Robots[0].Webhooks[1].AccessToken = ""
	c.DingTalk.Robots[0].RateLimit.Per = -1
	c.DingTalk.Robots[1].App = "ops"
	c.DingTalk.Robots = append(c.DingTalk.Robots, Robot{Name: "alerts", Webhooks: []RobotWebhook{{AccessToken: "t"}}})
	var keys []string
	for _, e := range leafErrors(c.Validate()) {
		fe, ok := e.(*FieldError)
		if !ok {
			t.Fatalf("error %q is a %T, want *FieldError", e, e)
		}
		keys = append(keys, fe.Key)
	}
	want := []string{"dingtalk.robots[0].webhooks[1].access_token", "dingtalk.robots[0].rate_limit.per",
		"dingtalk.robots[1].app", "dingtalk.robots[2].name"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("keys = %q, want %q", keys, want)
	}
}

func TestValidateRobotsDoesNotChangeConfig(t *testing.T) {
	c := &Config{DingTalk: DingTalk{
		Apps:   []App{{Name: "hr", AppKey: "k", AppSecret: "s", AgentID: 1}},
		Robots: []Robot{{Name: "alerts", Webhooks: []RobotWebhook{{AccessToken: "t"}}}, {Name: "hrbot", App: "hr", Webhooks: []RobotWebhook{}}},
	}}
	want := *c
	want.DingTalk.Robots = []Robot{{Name: "alerts", Webhooks: []RobotWebhook{{AccessToken: "t"}}}, {Name: "hrbot", App: "hr", Webhooks: []RobotWebhook{}}}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("Validate changed the config to %+v", c)
	}
}

// TestRobotSecretsNeverInErrors: a webhook's access_token and secret
// (secret:"true") appear in no error, whatever else is wrong.
func TestRobotSecretsNeverInErrors(t *testing.T) {
	const secret = "SECr0b0t-d0-n0t-sh0w"
	// The robots' tags say secret, as the package's rule wants.
	for _, f := range []string{"AccessToken", "Secret"} {
		sf, _ := reflect.TypeFor[RobotWebhook]().FieldByName(f)
		if sf.Tag.Get("secret") != "true" {
			t.Errorf("RobotWebhook.%s: not tagged secret:\"true\"", f)
		}
	}
	head := appYAML + "  robots:\n"
	env := []string{"ROBOT_SECRET=" + secret}
	checkSecretErrors(t, secret, env, []secretErrorCase{
		{name: "token and secret, name missing", yaml: head + `
    - webhooks: [{access_token: ` + secret + `, secret: "` + secret + `x"}]
`, want: "dingtalk.robots[0].name: is required"},
		{name: "token from env, both webhooks and app", yaml: head + `
    - {name: alerts, app: hr, webhooks: [{access_token: "${ROBOT_SECRET}"}]}
`, want: "dingtalk.robots[0]: give webhooks (a custom group robot) or app (an enterprise robot), not both"},
		{name: "secret without token", yaml: head + `
    - {name: alerts, webhooks: [{secret: ` + secret + `}]}
`, want: "dingtalk.robots[0].webhooks[0].access_token: is required"},
		{name: "token, bad rate limit", yaml: head + `
    - {name: alerts, webhooks: [{access_token: ` + secret + `}], rate_limit: {messages: 5000}}
`, want: "dingtalk.robots[0].rate_limit.messages: must be 1 to 1000"},
		{name: "token, duplicate robot", yaml: head + `
    - {name: alerts, webhooks: [{access_token: ` + secret + `}]}
    - {name: alerts, webhooks: [{access_token: ` + secret + `2}]}
`, want: `dingtalk.robots[1].name: "alerts" is used twice`},
		{name: "token as a list", yaml: head + `
    - {name: alerts, webhooks: [{access_token: [` + secret + `]}]}
`, want: "line 10: dingtalk.robots[0].webhooks[0].access_token: want a string, got a list"},
		{name: "webhook as a string", yaml: head + `
    - {name: alerts, webhooks: [` + secret + `]}
`, want: "line 10: dingtalk.robots[0].webhooks[0]: want a mapping, got a single value"},
		{name: "secret holding dollar brace", yaml: head + `
    - {name: alerts, webhooks: [{access_token: t, secret: "` + secret + `${x"}]}
`, want: `line 10: "${" has no closing "}" (write $$ for a literal $)`},
		{name: "token override, validation fails", yaml: head + `
    - {name: alerts, webhooks: [{access_token: t}], robot_code: c}
`, environ: []string{"DINGQ_DINGTALK_ROBOTS_0_WEBHOOKS_0_ACCESS_TOKEN=" + secret,
			"DINGQ_DINGTALK_ROBOTS_0_WEBHOOKS_0_SECRET=" + secret},
			want: "dingtalk.robots[0].robot_code: is for an enterprise robot (with app)"},
		{name: "token override of a missing webhook", yaml: head + `
    - {name: alerts, webhooks: [{access_token: t}]}
`, environ: []string{"DINGQ_DINGTALK_ROBOTS_0_WEBHOOKS_1_ACCESS_TOKEN=" + secret},
			want: "DINGQ_DINGTALK_ROBOTS_0_WEBHOOKS_1_ACCESS_TOKEN: dingtalk.robots[0].webhooks[1] does not exist: dingtalk.robots[0].webhooks has 1 items"},
	})
}

// TestRobotEnvOverrides: DINGQ_ variables reach into the robots list and
// into each robot's webhooks list (a list within a list).
func TestRobotEnvOverrides(t *testing.T) {
	checkEnvOverrides(t, robotsYAML, robotsEnv, []envOverrideCase{
		{name: "webhook access_token", environ: []string{"DINGQ_DINGTALK_ROBOTS_0_WEBHOOKS_0_ACCESS_TOKEN=new-token"},
			want: func(c *Config) { c.DingTalk.Robots[0].Webhooks[0].AccessToken = "new-token" }},
		{name: "second webhook's secret", environ: []string{"DINGQ_DINGTALK_ROBOTS_0_WEBHOOKS_1_SECRET=SECnew"},
			want: func(c *Config) { c.DingTalk.Robots[0].Webhooks[1].Secret = "SECnew" }},
		{name: "rate limit", environ: []string{"DINGQ_DINGTALK_ROBOTS_0_RATE_LIMIT_MESSAGES=5", "DINGQ_DINGTALK_ROBOTS_0_RATE_LIMIT_PER=2m"},
			want: func(c *Config) { c.DingTalk.Robots[0].RateLimit = RobotRateLimit{Messages: 5, Per: 2 * time.Minute} }},
		{name: "rate limit reset to the default", environ: []string{"DINGQ_DINGTALK_ROBOTS_0_RATE_LIMIT_MESSAGES="},
			want: func(c *Config) { c.DingTalk.Robots[0].RateLimit.Messages = 20 }},
		{name: "robot_code", environ: []string{"DINGQ_DINGTALK_ROBOTS_1_ROBOT_CODE=other"},
			want: func(c *Config) { c.DingTalk.Robots[1].RobotCode = "other" }},
		{name: "name", environ: []string{"DINGQ_DINGTALK_ROBOTS_1_NAME=payroll"},
			want: func(c *Config) { c.DingTalk.Robots[1].Name = "payroll" }},
		{name: "api_base_url", environ: []string{"DINGQ_DINGTALK_API_BASE_URL=https://api.example.com"},
			want: func(c *Config) { c.DingTalk.APIBaseURL = "https://api.example.com" }},
		{name: "api_base_url reset to the default", environ: []string{"DINGQ_DINGTALK_API_BASE_URL="},
			want: func(c *Config) { c.DingTalk.APIBaseURL = "https://api.dingtalk.com" }},

		{name: "access_token emptied", environ: []string{"DINGQ_DINGTALK_ROBOTS_0_WEBHOOKS_1_ACCESS_TOKEN="},
			wantErr: "dingtalk.robots[0].webhooks[1].access_token: is required"},
		{name: "app emptied", environ: []string{"DINGQ_DINGTALK_ROBOTS_1_APP="},
			wantErr: "dingtalk.robots[1]: give webhooks (a custom group robot) or app (an enterprise robot)"},
		{name: "bad integer", environ: []string{"DINGQ_DINGTALK_ROBOTS_0_RATE_LIMIT_MESSAGES=many"},
			wantErr: `DINGQ_DINGTALK_ROBOTS_0_RATE_LIMIT_MESSAGES: want an integer for dingtalk.robots[0].rate_limit.messages, got "many"`},
		{name: "bad api_base_url", environ: []string{"DINGQ_DINGTALK_API_BASE_URL=api.example.com"},
			wantErr: `dingtalk.api_base_url: "api.example.com" is not an absolute http or https URL`},
		{name: "webhook out of range", environ: []string{"DINGQ_DINGTALK_ROBOTS_0_WEBHOOKS_2_ACCESS_TOKEN=x"},
			wantErr: "DINGQ_DINGTALK_ROBOTS_0_WEBHOOKS_2_ACCESS_TOKEN: dingtalk.robots[0].webhooks[2] does not exist: dingtalk.robots[0].webhooks has 2 items"},
		{name: "robot out of range", environ: []string{"DINGQ_DINGTALK_ROBOTS_2_NAME=x"},
			wantErr: "DINGQ_DINGTALK_ROBOTS_2_NAME: dingtalk.robots[2] does not exist: dingtalk.robots has 2 items"},
		// The robot is missing, not its webhook: say so, as for a leaf of
		// a missing robot.
		{name: "webhook of a robot out of range", environ: []string{"DINGQ_DINGTALK_ROBOTS_2_WEBHOOKS_0_ACCESS_TOKEN=x"},
			wantErr: "DINGQ_DINGTALK_ROBOTS_2_WEBHOOKS_0_ACCESS_TOKEN: dingtalk.robots[2] does not exist: dingtalk.robots has 2 items"},
		{name: "unknown webhook field", environ: []string{"DINGQ_DINGTALK_ROBOTS_0_WEBHOOKS_0_TOKEN=x"},
			wantErr: "DINGQ_DINGTALK_ROBOTS_0_WEBHOOKS_0_TOKEN: names no configuration key (DINGQ_CONFIG and DINGQ_TEST_* are ignored)"},
		{name: "the webhooks list itself", environ: []string{"DINGQ_DINGTALK_ROBOTS_0_WEBHOOKS=x"},
			wantErr: "DINGQ_DINGTALK_ROBOTS_0_WEBHOOKS: names no configuration key (DINGQ_CONFIG and DINGQ_TEST_* are ignored)"},
	})
}

// TestRobotSecretWrittenAsKey: a token or secret written where a key goes
// (a webhook as "{SEC…}", which YAML reads as a mapping whose key is the
// secret) is refused without being shown.
func TestRobotSecretWrittenAsKey(t *testing.T) {
	tests := []struct {
		name   string
		secret string
	}{
		{name: "signing secret", secret: "SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"},
		{name: "access_token", secret: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(appYAML+"  robots:\n    - {name: alerts, webhooks: [{"+tt.secret+"}]}\n"), nil)
			if err == nil {
				t.Fatal("Parse() = nil, want an error")
			}
			if !strings.Contains(err.Error(), "dingtalk.robots[0].webhooks[0]") {
				t.Errorf("Parse() = %v, want it to name dingtalk.robots[0].webhooks[0]", err)
			}
			if strings.Contains(err.Error(), tt.secret[:16]) {
				t.Errorf("error shows the secret:\n%v", err)
			}
		})
	}
}
