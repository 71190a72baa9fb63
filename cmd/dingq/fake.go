package main

import (
	"context"
	"errors"
	"fmt"
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
	)
	cmd := &cobra.Command{
		Use:   "fake-dingtalk",
		Short: "Run dingq's fake DingTalk server, for trials and tests",
		Long: `Serves a fake of DingTalk's legacy host (gettoken, asyncsend_v2) with DingTalk's
answers and error codes, and records every call. Point dingtalk.base_url at it.
What it saw: GET /_fake/stats, /_fake/calls, /_fake/sent; POST /_fake/reset.`,
		Example: `  dingq fake-dingtalk --listen 127.0.0.1:9090 --app dingfakehr:s3cret:123456`,
		Args:    cobra.NoArgs,
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
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen: %w", err)
			}
			srv := &http.Server{Handler: fake.New(fapps, &fake.Options{TokenLifetime: lifetime}), ReadHeaderTimeout: 5 * time.Second}
			fmt.Fprintf(cmd.OutOrStdout(), "fake DingTalk listening on http://%s with %d app(s)\n", ln.Addr(), len(fapps))
			return serveUntil(cmd.Context(), srv, ln)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&listen, "listen", "127.0.0.1:9090", "address to listen on")
	fl.StringArrayVar(&apps, "app", nil, "an app as APPKEY:APPSECRET[:AGENT_ID]; repeatable")
	fl.StringArrayVar(&corps, "corp", nil, "a legacy corp as CORPID:CORPSECRET[:AGENT_ID]; repeatable")
	fl.DurationVar(&lifetime, "token-lifetime", fake.DefaultTokenLifetime, "how long a token lives")
	return cmd
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
