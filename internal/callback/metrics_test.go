package callback_test

import (
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/internal/callback"
	"github.com/dingq/dingq/internal/metrics"
	"github.com/dingq/dingq/internal/metrics/metricstest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// TestReceiverMetrics: each refusal counts under its reason, each event
// taken under its type; a re-push of the same request counts nothing.
func TestReceiverMetrics(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	c, err := dingtalk.NewCallbackCrypto(token, aesKey, owner)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s := &sink{seen: map[string]bool{}}
	r, err := callback.New(callback.Config{Crypto: c, Redis: rdb, Enqueue: s.enqueue, Now: func() time.Time { return now },
		Metrics: metrics.New(reg)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	e := &env{srv: srv, crypto: c, sink: s, mr: mr}

	ts := strconv.FormatInt(now.UnixMilli(), 10)
	enc, sig, _ := c.Seal([]byte(`{"EventType":"user_add_org"}`), ts, "n1")
	q := func(sig, ts, nonce string) url.Values {
		return url.Values{"signature": {sig}, "timestamp": {ts}, "nonce": {nonce}}
	}
	e.raw(t, q(strings.Repeat("0", 40), ts, "n1"), `{"encrypt":"`+enc+`"}`)                      // signature
	e.raw(t, q(strings.Repeat("0", 40), ts, "n1"), `{"encrypt":"`+enc+`"}`)                      // signature
	e.raw(t, q(sig, "12", "n1"), `{"encrypt":"`+enc+`"}`)                                        // timestamp
	e.raw(t, url.Values{}, `{}`)                                                                 // query
	e.raw(t, q(sig, ts, "n1"), `{"encrypt":"`+strings.Repeat("A", callback.DefaultMaxBody)+`"}`) // too_large
	e.raw(t, q(sig, ts, "n1"), `{"encrypt":"`+enc+`"}`)                                          // taken: user_add_org
	e.raw(t, q(sig, ts, "n1"), `{"encrypt":"`+enc+`"}`)                                          // the same request again: nothing
	e.push(t, nil, `{"EventType":"user_add_org","n":2}`, "n1")                                   // replay
	e.push(t, nil, `{"EventType":"check_url"}`, "n2")                                            // taken: check_url

	tests := []struct {
		metric string
		labels []string
		want   float64
	}{
		{"dingq_callback_requests_rejected_total", []string{"reason", callback.ReasonSignature}, 2},
		{"dingq_callback_requests_rejected_total", []string{"reason", callback.ReasonTimestamp}, 1},
		{"dingq_callback_requests_rejected_total", []string{"reason", callback.ReasonQuery}, 1},
		{"dingq_callback_requests_rejected_total", []string{"reason", callback.ReasonTooLarge}, 1},
		{"dingq_callback_requests_rejected_total", []string{"reason", callback.ReasonReplay}, 1},
		{"dingq_callback_requests_rejected_total", nil, 6},
		{"dingq_callback_events_received_total", []string{"event_type", "user_add_org"}, 1},
		{"dingq_callback_events_received_total", []string{"event_type", "check_url"}, 1},
		{"dingq_callback_events_received_total", nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.metric+strings.Join(tt.labels, "="), func(t *testing.T) {
			if got := metricstest.Value(t, reg, tt.metric, tt.labels...); got != tt.want {
				t.Errorf("%s%v: got %v, want %v", tt.metric, tt.labels, got, tt.want)
			}
		})
	}
	if n := s.count(); n != 1 {
		t.Errorf("events queued: %d, want 1", n)
	}
}
