package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/dingtalk/fake"
	"github.com/dingq/dingq/internal/config"
	"github.com/dingq/dingq/producer"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
)

func newDemoCmd() *cobra.Command {
	var listen, level string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole system in one process: in-memory Redis, fake DingTalk, api and worker",
		Long: `Starts an in-memory Redis (miniredis), dingq's fake DingTalk, a worker and the
HTTP API in this one process, sends a sample message, prints its outcome and a
ready curl line, and runs until Ctrl-C. Nothing is kept after it stops.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), cmd.OutOrStdout(), listen, level)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "API address (a free port is taken if this one is busy)")
	cmd.Flags().StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}

func runDemo(ctx context.Context, out io.Writer, listen, level string) error {
	log, err := newLogger(config.Log{Level: level, Format: "console"})
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	mr, err := miniredis.Run()
	if err != nil {
		return fmt.Errorf("starting in-memory redis: %w", err)
	}
	defer mr.Close()

	const appKey, agentID = "dingdemo", 1000
	secret, apiToken := randomHex(16), randomHex(16)
	robot := dingtalk.Robot{Token: randomHex(16), Secret: "SEC" + randomHex(16)}
	fk := fake.New([]fake.App{{Key: appKey, Secret: secret, AgentID: agentID}}, &fake.Options{Robots: []dingtalk.Robot{robot}})
	fakeLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fakeSrv := &http.Server{Handler: fk, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = fakeSrv.Serve(fakeLn) }()
	defer fakeSrv.Close()

	cfg := config.Default()
	cfg.Redis.Addr = mr.Addr()
	cfg.DingTalk.BaseURL = "http://" + fakeLn.Addr().String()
	cfg.DingTalk.APIBaseURL = cfg.DingTalk.BaseURL
	cfg.DingTalk.Apps = []config.App{{Name: "demo", AppKey: appKey, AppSecret: secret, AgentID: agentID}}
	cfg.DingTalk.Robots = []config.Robot{
		{Name: "alerts", Webhooks: []config.RobotWebhook{{AccessToken: robot.Token, Secret: robot.Secret}}},
		{Name: "helpdesk", App: "demo"},
	}
	cfg.API.Listen = listen
	cfg.API.Tokens = []string{apiToken}
	cfg.API.UIUsers = []config.UIUser{{Name: "demo", Password: apiToken}}
	cfg.Log = config.Log{Level: level, Format: "console"}
	if err := cfg.Validate(); err != nil {
		return err
	}

	rdb := newRedis(cfg.Redis) // a plain client: cfg.Redis.Addr is the miniredis
	defer rdb.Close()
	w, _, err := newWorker(cfg, rdb, log)
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Shutdown()
	p, err := newProducer(cfg, rdb)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		log.Warn("API address busy, taking a free port", zap.String("addr", listen), zap.Error(err))
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return err
		}
	}
	apiURL := "http://" + ln.Addr().String()
	apiErr := make(chan error, 1)
	apiCtx, stopAPI := context.WithCancel(ctx)
	defer stopAPI()
	go func() { apiErr <- serveAPI(apiCtx, ln, p, cfg, rdb, log) }()

	fmt.Fprintf(out, "dingq demo: in-memory redis %s, fake DingTalk %s, API %s\n", mr.Addr(), cfg.DingTalk.BaseURL, apiURL)
	start := time.Now()
	id, err := p.Send(ctx, &producer.Message{App: "demo", UserIDs: []string{"manager1", "staff7"},
		Msg: dingtalk.TextMessage("Hello from dingq: this work notification went producer → asynq → worker → DingTalk.")})
	if err != nil {
		return fmt.Errorf("sending the sample message: %w", err)
	}
	fmt.Fprintf(out, "\nsample message %s queued; waiting for the worker…\n", id)
	o, err := waitFor(ctx, p, id, 30*time.Second, func(o *producer.Outcome) {
		fmt.Fprintf(out, "  %6s  %s\n", time.Since(start).Round(time.Millisecond), o.Status)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\noutcome (GET %s/v1/messages/%s):\n", apiURL, id)
	printOutcome(out, o)
	if sent := fk.Sent(); len(sent) > 0 {
		fmt.Fprintf(out, "\nwhat the fake DingTalk received (POST %s):\n%s\n", dingtalk.PathAsyncSendV2, sent[len(sent)-1].Body)
	}
	fmt.Fprintf(out, `
Send your own:

  curl -s -X POST %[1]s/v1/messages \
    -H 'Authorization: Bearer %[2]s' -H 'Content-Type: application/json' \
    -d '{"app":"demo","userid_list":["u1"],"msg":{"msgtype":"markdown","markdown":{"title":"Hi","text":"**dingq** works"}}}'

  curl -s -H 'Authorization: Bearer %[2]s' %[1]s/v1/messages/<id>

Robots: "alerts" posts into a group chat (signed, 20 a minute), "helpdesk" messages users one to one:

  curl -s -X POST %[1]s/v1/robot-messages \
    -H 'Authorization: Bearer %[2]s' -H 'Content-Type: application/json' \
    -d '{"robot":"alerts","msg":{"msgtype":"text","text":{"content":"db-1: disk full"}}}'

  curl -s -X POST %[1]s/v1/robot-messages \
    -H 'Authorization: Bearer %[2]s' -H 'Content-Type: application/json' \
    -d '{"robot":"helpdesk","userIds":["u1","u2"],"msgKey":"sampleText","msgParam":{"content":"ticket 7 answered"}}'

The asynq web UI: %[1]s/ui/ (user demo, password %[2]s)

Running until Ctrl-C.
`, apiURL, apiToken)

	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "\nstopping")
		return nil
	case err := <-apiErr:
		return err
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return strings.ToLower(hex.EncodeToString(b))
}
