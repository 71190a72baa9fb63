package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/dingtalk/fake"
	"github.com/spf13/cobra"
)

func newFakeCmd() *cobra.Command {
	var (
		listen   string
		apps     []string
		corps    []string
		lifetime time.Duration
		faults   []string
		limits   limitFlags
		delivery deliveryFlags
		robots   robotFlags
	)
	cmd := &cobra.Command{
		Use:   "fake-dingtalk",
		Short: "Run dingq's fake DingTalk server, for trials and tests",
		Long: `Serves a fake of DingTalk's legacy host (gettoken, asyncsend_v2,
getsendprogress, getsendresult, recall, the /call_back/ endpoints, the
seed's session endpoints getsession, create_session and close_session under
/topapi/v2/, and the custom robots' /robot/send) and of its new host
(POST /v1.0/oauth2/accessToken and the enterprise robot's
/v1.0/robot/oToMessages/batchSend) with DingTalk's answers and error codes,
and records every call. Point dingtalk.base_url, and the new host's URL if
you use it, at it. What it saw: GET /_fake/stats, /_fake/calls,
/_fake/sent, /_fake/robots; POST /_fake/reset.

Robots: --robot TOKEN[:SECRET] adds a custom group robot (its webhook's
access_token, and its secret if it signs). A robot takes 20 messages in any
--robot-window and is then blocked for --robot-block (DingTalk: a minute
and 10 minutes; shorten them for trials). Each app's enterprise robot has
the app's key as its robot code; --robot-user-limit caps the messages one
user takes from one robot in any --robot-window (the users over it are
answered in flowControlledStaffIdList; DingTalk publishes no figure, so 0,
the default, turns this off). --result-invalid also makes batchSend list
those users in invalidStaffIdList. GET /_fake/robots lists the robots'
messages (each robot named by 8 hex digits of the SHA-256 of its token,
never the token) and the batch sends.

It enforces DingTalk's rate limits, standard edition by default (0 turns one
off, --no-limits all): --calls-per-second per app per API (over it: errcode
90018; gettoken exempt), --recipients-per-minute per app (the recipients over
it are silently dropped, as DingTalk does; getsendresult lists them with code
143103), --calls-per-20s over all calls (over it: the IP ban
{"status":1111,...} on every call for --ban). GET/PUT /_fake/limits shows and
changes them at any time. The stats add "throttled", "ip_banned", "dropped"
by app and "dropped_by_code", and the highest rates each app reached:
"max_calls_per_second" (accepted sends in any second) and
"max_recipients_per_minute".

DingTalk's daily limits are always enforced, silently, per app, user and
China-time day, unless --no-daily-limits: the same content to a user twice
a day is dropped (code 143106), and so is a user's 501st message of the day
(code 143105).

Delivery: getsendprogress tells a task done --delivery-time after its send
(0: at once). getsendresult reports each delivered user by a hash of its id
alone, the same in every task: --result-invalid, --result-forbidden-daily
(code 143105), --result-forbidden-same (code 143106) and --result-failed
are fractions of the users (at most 1 together), --result-read the fraction
of the others that read it; the rest are unread. GET/PUT /_fake/results
shows and changes these fractions at any time.

Make DingTalk misbehave with faults: --fault at start, or at any time
GET/POST/DELETE /_fake/faults (list, add one as JSON, clear). A fault answers
an errcode ("code", with "sub_code" and "msg"), an HTTP status ("status"),
a body of its own ("body": an HTML page, or JSON cut short; HTML at HTTP 200
is what DingTalk bans an IP with), the per-IP ban ("ip_ban"), never
("hang"), by closing the connection ("close"), and/or late ("latency"), on
one endpoint ("path") or all, for the next "times" calls or a "fraction" of
them.
POST /_fake/revoke?app=APPKEY revokes an app's token at once.

Callbacks: register_call_back posts DingTalk's encrypted check_url event to
the URL (owner key: the app's corp id, else its key) and wants an encrypted
"success" within 1500 ms (else 71012 unreachable, 71009 anything else).
POST /_fake/push {"app":"APPKEY","events":[{"EventType":"user_add_org",...}],"times":2}
pushes events to the app's callback, each "times" times in a row as
DingTalk's re-pushes do; the events not taken wait in
get_call_back_failed_result. GET /_fake/callbacks lists the registrations
(never their token or aes_key).`,
		Example: `  dingq fake-dingtalk --listen 127.0.0.1:9090 --app dingfakehr:s3cret:123456
  dingq fake-dingtalk --app dingfakehr:s3cret --calls-per-second 40 --ban 1m
  dingq fake-dingtalk --app dingfakehr:s3cret --delivery-time 30s --result-invalid 0.02 --result-read 0.6
  dingq fake-dingtalk --app dingfakehr:s3cret --robot 0a1b2c3d:SEC9f8e7d --robot 4e5f6a7b \
    --robot-window 10s --robot-block 30s --robot-user-limit 5
  dingq fake-dingtalk --app dingfakehr:s3cret --no-limits \
    --fault '{"path":"/topapi/message/corpconversation/asyncsend_v2","status":500,"fraction":0.3}' \
    --fault '{"path":"/gettoken","code":-1,"times":2}' \
    --fault '{"body":"{\"errcode\":0,\"task_id\":","fraction":0.1}' --fault '{"close":true,"times":3}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var fapps []fake.App
			for _, a := range apps {
				key, secret, agent, err := parseAppFlag("--app", a)
				if err != nil {
					return err
				}
				fapps = append(fapps, fake.App{Key: key, Secret: secret, AgentID: agent})
			}
			for _, c := range corps {
				id, secret, agent, err := parseAppFlag("--corp", c)
				if err != nil {
					return err
				}
				fapps = append(fapps, fake.App{CorpID: id, CorpSecret: secret, AgentID: agent})
			}
			if len(fapps) == 0 {
				return errors.New("give at least one --app KEY:SECRET[:AGENT_ID] or --corp ID:SECRET[:AGENT_ID]")
			}
			lim, err := limits.limits(cmd)
			if err != nil {
				return err
			}
			opts := &fake.Options{TokenLifetime: lifetime, Limits: lim}
			if err := delivery.apply(opts); err != nil {
				return err
			}
			if err := robots.apply(opts); err != nil {
				return err
			}
			f := fake.New(fapps, opts)
			for i, v := range faults {
				if err := addFaultFlag(f, v); err != nil {
					return fmt.Errorf("--fault #%d: %w", i+1, err)
				}
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen: %w", err)
			}
			ctx := cmd.Context()
			srv := &http.Server{Handler: f, ReadHeaderTimeout: 5 * time.Second,
				// Calls hung by a fault end when the command does.
				BaseContext: func(net.Listener) context.Context { return ctx }}
			fmt.Fprintf(cmd.OutOrStdout(), "fake DingTalk listening on http://%s with %d app(s) and %d robot(s)\n", ln.Addr(), len(fapps), len(opts.Robots))
			return serveUntil(ctx, srv, ln)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&listen, "listen", "127.0.0.1:9090", "address to listen on")
	fl.StringArrayVar(&apps, "app", nil, "an app as APPKEY:APPSECRET[:AGENT_ID]; repeatable")
	fl.StringArrayVar(&corps, "corp", nil, "a legacy corp as CORPID:CORPSECRET[:AGENT_ID]; repeatable")
	fl.DurationVar(&lifetime, "token-lifetime", fake.DefaultTokenLifetime, "how long a token lives")
	fl.StringArrayVar(&faults, "fault", nil, `a fault as JSON, such as '{"path":"/gettoken","code":-1,"times":2}'; repeatable`)
	fl.IntVar(&limits.callsPerSecond, "calls-per-second", fake.DefaultLimits.CallsPerSecond,
		"calls per app per API in any second, over which calls answer 90018 (0: no limit)")
	fl.IntVar(&limits.recipientsPerMinute, "recipients-per-minute", fake.DefaultLimits.RecipientsPerMinute,
		"recipients per app in any minute, over which they are dropped (0: no limit)")
	fl.IntVar(&limits.callsPer20s, "calls-per-20s", fake.DefaultLimits.CallsPer20s,
		"calls in any 20 seconds, over which every call gets the IP ban (0: no limit)")
	fl.DurationVar(&limits.ban, "ban", fake.DefaultBan, "how long the IP ban lasts")
	fl.BoolVar(&limits.none, "no-limits", false, "enforce no rate limit")
	fl.BoolVar(&delivery.noDailyLimits, "no-daily-limits", false,
		"enforce neither daily limit (same content to a user twice a day: 143106; over 500 messages a user a day: 143105)")
	fl.DurationVar(&delivery.deliveryTime, "delivery-time", 0,
		"how long after its send getsendprogress tells a task done (0: at once)")
	fl.Float64Var(&delivery.results.Invalid, "result-invalid", 0,
		"fraction of users getsendresult lists as invalid")
	fl.Float64Var(&delivery.results.ForbiddenDaily, "result-forbidden-daily", 0,
		"fraction of users getsendresult lists as forbidden with code 143105")
	fl.Float64Var(&delivery.results.ForbiddenSame, "result-forbidden-same", 0,
		"fraction of users getsendresult lists as forbidden with code 143106")
	fl.Float64Var(&delivery.results.Failed, "result-failed", 0,
		"fraction of users getsendresult lists as failed")
	fl.Float64Var(&delivery.results.Read, "result-read", 0,
		"fraction of the delivered users getsendresult lists as read (the others unread)")
	fl.StringArrayVar(&robots.robots, "robot", nil,
		"a custom group robot as TOKEN[:SECRET] (its webhook's access_token, and its secret if it signs); repeatable")
	fl.DurationVar(&robots.window, "robot-window", time.Minute,
		"the window in which a custom robot takes 20 messages (DingTalk: a minute), and of --robot-user-limit")
	fl.DurationVar(&robots.block, "robot-block", dingtalk.RobotBlock,
		"how long a custom robot over its limit is blocked (DingTalk: 10 minutes)")
	fl.IntVar(&robots.userLimit, "robot-user-limit", 0,
		"messages one user takes from one enterprise robot in any --robot-window, over which batchSend flow-controls it (0: no limit)")
	return cmd
}

// robotFlags are the robot flags of fake-dingtalk.
type robotFlags struct {
	robots    []string
	window    time.Duration
	block     time.Duration
	userLimit int
}

// apply sets what the flags ask for in opts. The error names the flag at
// fault, and never shows a robot's token or secret.
func (rf robotFlags) apply(opts *fake.Options) error {
	switch {
	case rf.window <= 0:
		return fmt.Errorf("--robot-window must be > 0, got %s", rf.window)
	case rf.block <= 0:
		return fmt.Errorf("--robot-block must be > 0, got %s", rf.block)
	case rf.userLimit < 0:
		return fmt.Errorf("--robot-user-limit must be >= 0 (0 turns the limit off), got %d", rf.userLimit)
	}
	seen := map[string]int{}
	for i, v := range rf.robots {
		r, err := parseRobotFlag(v)
		if err != nil {
			return fmt.Errorf("--robot #%d: %w", i+1, err)
		}
		if j, ok := seen[r.Token]; ok {
			return fmt.Errorf("--robot #%d: the same token as --robot #%d", i+1, j)
		}
		seen[r.Token] = i + 1
		opts.Robots = append(opts.Robots, r)
	}
	opts.RobotWindow = rf.window
	opts.RobotBlock = rf.block
	opts.RobotUserLimit = rf.userLimit
	return nil
}

// parseRobotFlag parses TOKEN[:SECRET]. Its errors do not show the value:
// both halves are secrets.
func parseRobotFlag(v string) (dingtalk.Robot, error) {
	parts := strings.Split(v, ":")
	switch {
	case len(parts) > 2:
		return dingtalk.Robot{}, fmt.Errorf("want TOKEN[:SECRET], got %d parts", len(parts))
	case strings.TrimSpace(parts[0]) == "":
		return dingtalk.Robot{}, errors.New("want TOKEN[:SECRET], got an empty token")
	case len(parts) == 2 && strings.TrimSpace(parts[1]) == "":
		return dingtalk.Robot{}, errors.New("want TOKEN[:SECRET], got an empty secret after the colon (leave out the colon for a robot that does not sign)")
	}
	r := dingtalk.Robot{Token: parts[0]}
	if len(parts) == 2 {
		r.Secret = parts[1]
	}
	return r, nil
}

// deliveryFlags are the delivery and daily-limit flags of fake-dingtalk.
type deliveryFlags struct {
	noDailyLimits bool
	deliveryTime  time.Duration
	results       fake.Results
}

// apply sets what the flags ask for in opts. The error names the flag at
// fault.
func (df deliveryFlags) apply(opts *fake.Options) error {
	if df.deliveryTime < 0 {
		return fmt.Errorf("--delivery-time must be >= 0 (0: delivered at once), got %s", df.deliveryTime)
	}
	r := df.results
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"--result-invalid", r.Invalid},
		{"--result-forbidden-daily", r.ForbiddenDaily},
		{"--result-forbidden-same", r.ForbiddenSame},
		{"--result-failed", r.Failed},
		{"--result-read", r.Read},
	} {
		if !(f.v >= 0 && f.v <= 1) { // NaN too
			return fmt.Errorf("%s must be a fraction between 0 and 1, got %g", f.name, f.v)
		}
	}
	if err := r.Validate(); err != nil {
		return fmt.Errorf("--result-invalid + --result-forbidden-daily + --result-forbidden-same + --result-failed must be at most 1, got %g",
			r.Invalid+r.ForbiddenDaily+r.ForbiddenSame+r.Failed)
	}
	opts.NoDailyLimits = df.noDailyLimits
	opts.DeliveryTime = df.deliveryTime
	opts.Results = &r
	return nil
}

// limitFlags are the rate-limit flags of fake-dingtalk.
type limitFlags struct {
	callsPerSecond      int
	recipientsPerMinute int
	callsPer20s         int
	ban                 time.Duration
	none                bool
}

// limits returns the limits the flags ask for: nil with --no-limits. The
// error names the flag at fault.
func (lf limitFlags) limits(cmd *cobra.Command) (*fake.Limits, error) {
	for _, f := range []struct {
		name, zero string
		neg        bool
	}{
		{"--calls-per-second", "turns the limit off", lf.callsPerSecond < 0},
		{"--recipients-per-minute", "turns the limit off", lf.recipientsPerMinute < 0},
		{"--calls-per-20s", "turns the limit off", lf.callsPer20s < 0},
		{"--ban", "means 5m", lf.ban < 0},
	} {
		if f.neg {
			return nil, fmt.Errorf("%s must be >= 0 (0 %s)", f.name, f.zero)
		}
		if lf.none && cmd.Flags().Changed(strings.TrimPrefix(f.name, "--")) {
			return nil, fmt.Errorf("--no-limits and %s: give one or the other", f.name)
		}
	}
	if lf.none {
		return nil, nil
	}
	return &fake.Limits{
		CallsPerSecond:      lf.callsPerSecond,
		RecipientsPerMinute: lf.recipientsPerMinute,
		CallsPer20s:         lf.callsPer20s,
		Ban:                 fake.Duration(lf.ban),
	}, nil
}

// addFaultFlag adds the fault one --fault gives as JSON: one object, no
// unknown field.
func addFaultFlag(f *fake.Server, v string) error {
	dec := json.NewDecoder(strings.NewReader(v))
	dec.DisallowUnknownFields()
	var fault fake.Fault
	if err := dec.Decode(&fault); err != nil {
		return fmt.Errorf("want a fault as a JSON object: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("want one JSON object, got more after it")
	}
	return f.AddFault(fault)
}

// parseAppFlag parses ID:SECRET[:AGENT_ID].
func parseAppFlag(flag, v string) (id, secret string, agent int64, err error) {
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return "", "", 0, fmt.Errorf("%s: want ID:SECRET[:AGENT_ID], got %d part(s)", flag, len(parts))
	}
	if len(parts) == 3 {
		if agent, err = strconv.ParseInt(parts[2], 10, 64); err != nil || agent <= 0 {
			return "", "", 0, fmt.Errorf("%s %s:…: AGENT_ID must be a positive number", flag, parts[0])
		}
	}
	return parts[0], parts[1], agent, nil
}

// serveUntil serves srv on ln until ctx is done, then shuts it down.
func serveUntil(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
