package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/dingq/dingq/internal/metrics"
	"github.com/hibiken/asynq"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// newRegistry returns a Prometheus registry holding the Go runtime's and
// the process's collectors and dingq's metrics.
func newRegistry() (*prometheus.Registry, *metrics.Metrics) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg, metrics.New(reg)
}

// metricsHandler serves what reg gathers in Prometheus's text format.
func metricsHandler(reg *prometheus.Registry, log *zap.Logger) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: zap.NewStdLog(log.Named("metrics")),
		Registry: reg, Timeout: 10 * time.Second})
}

// apiMetrics returns the api process's /metrics handler and the metrics
// its callback receivers count: Go and process collectors, dingq's
// metrics, and asynq's queue metrics (asynq_queue_size,
// asynq_queue_latency_seconds, asynq_tasks_processed_total,
// asynq_tasks_failed_total, asynq_tasks_enqueued_total by state…) read
// from rdb at each scrape.
func apiMetrics(rdb redis.UniversalClient, log *zap.Logger) (http.Handler, *metrics.Metrics) {
	reg, m := newRegistry()
	// The inspector shares rdb: nothing to close.
	reg.MustRegister(asynqmetrics.NewQueueMetricsCollector(asynq.NewInspectorFromRedisClient(rdb)))
	return metricsHandler(reg, log), m
}

// serveMetrics serves h at GET /metrics on addr (worker.metrics_listen)
// until stop is called.
func serveMetrics(addr string, h http.Handler, log *zap.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("worker.metrics_listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := newHTTPServer(mux, 10*time.Second, log.Named("metrics"))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", zap.Error(err))
		}
	}()
	log.Info("metrics listening", zap.String("addr", ln.Addr().String()), zap.String("path", "/metrics"))
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}
