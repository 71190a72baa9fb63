package main

import (
	"github.com/spf13/cobra"
	"go.uber.org/zap"
)

func newWorkerCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "Take tasks from the queues and send them to DingTalk",
		Long: `Runs one worker process: it takes send tasks from Redis, calls DingTalk with the
app's cached token and records each outcome. Run as many as you like against one
Redis. SIGTERM or Ctrl-C stops taking tasks, waits worker.shutdown_timeout for
running ones and hands the rest back to the queue.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := setup(cmd.Context(), g.configPath)
			if err != nil {
				return err
			}
			defer e.close()
			warnEviction(cmd.Context(), e.redis, e.log)
			w, reg, err := newWorker(e.cfg, e.redis, e.log)
			if err != nil {
				return err
			}
			if addr := e.cfg.Worker.MetricsListen; addr != "" {
				stop, err := serveMetrics(addr, metricsHandler(reg, e.log), e.log)
				if err != nil {
					return err
				}
				defer stop() // once the worker has stopped
			}
			e.log.Info("worker starting", zap.String("redis", redisTarget(e.cfg.Redis)),
				zap.String("dingtalk", e.cfg.DingTalk.BaseURL), zap.Int("concurrency", e.cfg.Worker.Concurrency),
				zap.Strings("apps", appNames(e.cfg)))
			err = w.Run(cmd.Context())
			e.log.Info("worker stopped")
			return err
		},
	}
}
