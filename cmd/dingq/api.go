package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/internal/api"
	"github.com/dingq/dingq/internal/callback"
	"github.com/dingq/dingq/internal/config"
	"github.com/dingq/dingq/producer"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
)

func newAPICmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "api",
		Short: "Serve the HTTP API: messages and broadcasts (/v1/messages), sessions (/v1/sessions), DingTalk callbacks (/v1/callbacks/dingtalk)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, p, err := setupProducer(cmd.Context(), g.configPath)
			if err != nil {
				return err
			}
			defer e.close()
			warnEviction(cmd.Context(), e.redis, e.log)
			ln, err := net.Listen("tcp", e.cfg.API.Listen)
			if err != nil {
				return fmt.Errorf("api.listen: %w", err)
			}
			e.log.Info("api listening", zap.String("addr", ln.Addr().String()), zap.Int("tokens", len(e.cfg.API.Tokens)),
				zap.String("ui", "http://"+ln.Addr().String()+api.UIPath+"/"), zap.Int("ui_users", len(e.cfg.API.UIUsers)),
				zap.Bool("ui_read_only", e.cfg.API.UIReadOnly))
			return serveAPI(cmd.Context(), ln, p, e.cfg, e.redis, e.log)
		},
	}
}

// newHTTPServer returns a server of h with the timeouts every dingq
// listener has, reading a request within read, logging to log.
func newHTTPServer(h http.Handler, read time.Duration, log *zap.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       read,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          zap.NewStdLog(log),
	}
}

// serveAPI serves the API on ln until ctx is done, then drains requests for
// up to 10 seconds.
func serveAPI(ctx context.Context, ln net.Listener, p *producer.Producer, cfg *config.Config, rdb redis.UniversalClient, log *zap.Logger) error {
	c := cfg.API
	ac := api.Config{Producer: p, Tokens: c.Tokens, MaxBodyBytes: c.MaxBodyBytes,
		MaxRecipients: c.MaxRecipients, Logger: log.Named("api"), UIReadOnly: c.UIReadOnly}
	for _, u := range c.UIUsers {
		ac.UIUsers = append(ac.UIUsers, api.UIUser{Name: u.Name, Password: u.Password})
	}
	ui := api.NewUI(api.UIOptions{Redis: asynqRedisOpt(cfg.Redis), ReadOnly: c.UIReadOnly, PrometheusURL: c.UIPrometheusURL})
	defer ui.Close()
	ac.UI = ui
	metricsH, m := apiMetrics(rdb, log)
	ac.Metrics = metricsH
	if cb := cfg.Callback; cb.On() {
		crypto, err := dingtalk.NewCallbackCrypto(cb.Token, cb.AESKey, cb.OwnerKey)
		if err != nil {
			return fmt.Errorf("callback: %w", err)
		}
		rcv, err := callback.New(callback.Config{Crypto: crypto, Redis: rdb, KeyPrefix: cfg.Redis.KeyPrefix,
			Window: cb.TimestampWindow, Enqueue: p.EnqueueEvent, Logger: log.Named("callback"), Metrics: m})
		if err != nil {
			return err
		}
		ac.Callbacks = map[string]http.Handler{"": rcv}
	}
	h, err := api.New(ac)
	if err != nil {
		return err
	}
	return serveUntil(ctx, newHTTPServer(h, 30*time.Second, log.Named("http")), ln)
}
