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
	)
	cmd := &cobra.Command{
		Use:   "fake-dingtalk",
		Short: "Run dingq's fake DingTalk server, for trials and tests",
		Long: `Serves a fake of DingTalk's legacy host (gettoken, asyncsend_v2, getsendresult)
with DingTalk's answers and error codes, and records every call. Point
dingtalk.base_url at it. What it saw: GET /_fake/stats, /_fake/calls,
/_fake/sent; POST /_fake/reset.

It enforces DingTalk's rate limits, standard edition by default (0 turns one
off, --no-limits all): --calls-per-second per app per API (over it: errcode
90018; gettoken exempt), --recipients-per-minute per app (the recipients over
it are silently dropped, as DingTalk does; getsendresult lists them with code
143103), --calls-per-20s over all calls (over it: the IP ban
{"status":1111,...} on every call for --ban). GET/PUT /_fake/limits shows and
changes them at any time. The stats add "throttled", "ip_banned", "dropped"
by app, and the highest rates each app reached: "max_calls_per_second"
(accepted sends in any second) and "max_recipients_per_minute".

Make DingTalk misbehave with faults: --fault at start, or at any time
GET/POST/DELETE /_fake/faults (list, add one as JSON, clear). A fault answers
an errcode ("code", with "sub_code" and "msg"), an HTTP status ("status"),
the per-IP ban ("ip_ban"), never ("hang"), and/or late ("latency"), on one
endpoint ("path") or all, for the next "times" calls or a "fraction" of them.
POST /_fake/revoke?app=APPKEY revokes an app's token at once.`,
		Example: `  dingq fake-dingtalk --listen 127.0.0.1:9090 --app dingfakehr:s3cret:123456
  dingq fake-dingtalk --app dingfakehr:s3cret --calls-per-second 40 --ban 1m
  dingq fake-dingtalk --app dingfakehr:s3cret --no-limits \
    --fault '{"path":"/topapi/message/corpconversation/asyncsend_v2","status":500,"fraction":0.3}' \
    --fault '{"path":"/gettoken","code":-1,"times":2}'`,
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
			f := fake.New(fapps, &fake.Options{TokenLifetime: lifetime, Limits: lim})
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
			fmt.Fprintf(cmd.OutOrStdout(), "fake DingTalk listening on http://%s with %d app(s)\n", ln.Addr(), len(fapps))
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
	return cmd
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
