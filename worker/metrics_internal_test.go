package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/internal/metrics"
	"github.com/dingq/dingq/internal/metrics/metricstest"
	"github.com/dingq/dingq/internal/ratelimit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

var _ net.Error = timeoutError{}

// TestErrcode: the errcode label of each kind of answer, never more than
// a short code.
func TestErrcode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"success", nil, "0"},
		{"errcode", &dingtalk.Error{HTTPStatus: 200, Code: 33012}, "33012"},
		{"errcode wrapped", fmt.Errorf("sending: %w", &dingtalk.Error{Code: 90018}), "90018"},
		{"system busy", &dingtalk.Error{Code: -1}, "-1"},
		{"new host code", &dingtalk.Error{HTTPStatus: 403, ErrorCode: "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"}, "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"},
		{"odd new host code", &dingtalk.Error{HTTPStatus: 400, ErrorCode: "no such {thing}"}, "other"},
		{"ip ban", &dingtalk.Error{HTTPStatus: 200, IPBanned: true}, "ip_banned"},
		{"gateway", &dingtalk.Error{HTTPStatus: 502}, "http_5xx"},
		{"not found", &dingtalk.Error{HTTPStatus: 404}, "http_4xx"},
		{"redirect", &dingtalk.Error{HTTPStatus: 302}, "http_other"},
		{"client timeout", &dingtalk.TransportError{Path: "/x", Err: timeoutError{}}, "timeout"},
		{"deadline", &dingtalk.TransportError{Path: "/x", Err: context.DeadlineExceeded}, "timeout"},
		{"canceled", &dingtalk.TransportError{Path: "/x", Err: context.Canceled}, "canceled"},
		{"connection refused", &dingtalk.TransportError{Path: "/x", Err: errors.New("connection refused")}, "transport"},
		{"invalid request", &dingtalk.ValidationError{Field: "userid_list", Reason: "too many"}, "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errcode(tt.err); got != tt.want {
				t.Errorf("errcode(%v): got %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

// TestLimitsMetrics: a call admitted at once waits 0; one whose slot is
// too far off goes back to the queue; the rate gauge follows the factor
// DingTalk's 90018 lowers.
func TestLimitsMetrics(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	reg := prometheus.NewRegistry()
	l := newLimits(ratelimit.New(rdb, "test"), []App{{Name: "hr", RateLimit: AppLimits{CallsPerSecond: 2}}}, -1,
		20*time.Millisecond, zap.NewNop(), metrics.New(reg))
	ctx := context.Background()
	api := dingtalk.PathAsyncSendV2

	if err := l.admit(ctx, "hr", api, 1); err != nil {
		t.Fatalf("first admit: %v", err)
	}
	var te *throttledError
	if err := l.admit(ctx, "hr", api, 1); !errors.As(err, &te) {
		t.Fatalf("second admit at once: %v, want it handed back to the queue", err)
	}
	rate := func() float64 {
		return metricstest.Value(t, reg, "dingq_limiter_rate", "app", "hr", "api", api)
	}
	if got := rate(); got != 2 {
		t.Errorf("rate before throttling: got %v, want 2", got)
	}
	l.observe(ctx, "hr", api, &dingtalk.Error{HTTPStatus: 200, Code: 90018, Path: api})
	if got := rate(); got < 1.39 || got > 1.41 {
		t.Errorf("rate after a 90018: got %v, want 2×0.7", got)
	}
	tests := []struct {
		metric string
		want   float64
	}{
		{"dingq_limiter_wait_seconds", 1},
		{"dingq_limiter_deferred_total", 1},
	}
	for _, tt := range tests {
		if got := metricstest.Value(t, reg, tt.metric, "app", "hr", "api", api); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.metric, got, tt.want)
		}
	}
}
