package metrics_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dingq/dingq/internal/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMethods: each method moves its metric, with its labels.
func TestMethods(t *testing.T) {
	tests := []struct {
		name   string
		do     func(m *metrics.Metrics)
		metric string
		want   string
	}{
		{"call", func(m *metrics.Metrics) {
			m.Call("hr", "/topapi/x", "0", 20*time.Millisecond)
			m.Call("hr", "/topapi/x", "0", 30*time.Millisecond)
			m.Call("hr", "/topapi/x", "33012", time.Millisecond)
		}, "dingq_dingtalk_calls_total", `
dingq_dingtalk_calls_total{api="/topapi/x",app="hr",errcode="0"} 2
dingq_dingtalk_calls_total{api="/topapi/x",app="hr",errcode="33012"} 1
`},
		{"token fetch", func(m *metrics.Metrics) {
			m.TokenFetch("hr", true)
			m.TokenFetch("hr", false)
			m.TokenFetch("hr", false)
		}, "dingq_token_fetches_total", `
dingq_token_fetches_total{app="hr",result="error"} 2
dingq_token_fetches_total{app="hr",result="ok"} 1
`},
		{"token cache hit", func(m *metrics.Metrics) {
			m.TokenCacheHit("hr", metrics.LayerMemory)
			m.TokenCacheHit("hr", metrics.LayerRedis)
		}, "dingq_token_cache_hits_total", `
dingq_token_cache_hits_total{app="hr",layer="memory"} 1
dingq_token_cache_hits_total{app="hr",layer="redis"} 1
`},
		{"limiter deferred", func(m *metrics.Metrics) { m.LimiterDeferred("hr", "/a") }, "dingq_limiter_deferred_total", `
dingq_limiter_deferred_total{api="/a",app="hr"} 1
`},
		{"limiter rate", func(m *metrics.Metrics) {
			m.LimiterRate("hr", "/a", 20)
			m.LimiterRate("hr", "/a", 14)
		}, "dingq_limiter_rate", `
dingq_limiter_rate{api="/a",app="hr"} 14
`},
		{"messages", func(m *metrics.Metrics) {
			m.Message("hr", "message", "sent")
			m.Message("hr", "broadcast", "done")
		}, "dingq_messages_total", `
dingq_messages_total{app="hr",kind="broadcast",status="done"} 1
dingq_messages_total{app="hr",kind="message",status="sent"} 1
`},
		{"recipients", func(m *metrics.Metrics) {
			m.Recipients("hr", "read", 40)
			m.Recipients("hr", "read", 2)
			m.Recipients("hr", "unread", 0) // nothing to count: no series
		}, "dingq_recipients_total", `
dingq_recipients_total{app="hr",status="read"} 42
`},
		{"callback rejected", func(m *metrics.Metrics) { m.CallbackRejected("signature") }, "dingq_callback_requests_rejected_total", `
dingq_callback_requests_rejected_total{reason="signature"} 1
`},
		{"callback forwarded", func(m *metrics.Metrics) {
			m.CallbackForwarded(metrics.SinkForward, true)
			m.CallbackForwarded(metrics.SinkStream, false)
		}, "dingq_callback_events_forwarded_total", `
dingq_callback_events_forwarded_total{result="error",sink="stream"} 1
dingq_callback_events_forwarded_total{result="ok",sink="forward"} 1
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewPedanticRegistry()
			m := metrics.New(reg)
			tt.do(m)
			if err := testutil.GatherAndCompare(reg, strings.NewReader(help(t, reg, tt.metric)+tt.want), tt.metric); err != nil {
				t.Error(err)
			}
		})
	}
}

// help returns the HELP and TYPE lines of metric in reg.
func help(t *testing.T, reg *prometheus.Registry, metric string) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == metric {
			return fmt.Sprintf("# HELP %s %s\n# TYPE %s %s\n", metric, mf.GetHelp(), metric,
				strings.ToLower(mf.GetType().String()))
		}
	}
	t.Fatalf("%s not gathered", metric)
	return ""
}

// TestHistograms: durations land in seconds, in the buckets.
func TestHistograms(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.Call("hr", "/a", "0", 7*time.Millisecond)
	m.Call("hr", "/a", "-1", 3*time.Second)
	m.LimiterWait("hr", "/a", 0)
	m.LimiterWait("hr", "/a", 1500*time.Millisecond)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			if h := mt.GetHistogram(); h != nil {
				got[mf.GetName()] = [2]float64{float64(h.GetSampleCount()), h.GetSampleSum()}
			}
		}
	}
	want := map[string][2]float64{
		"dingq_dingtalk_call_duration_seconds": {2, 3.007},
		"dingq_limiter_wait_seconds":           {2, 1.5},
	}
	for name, w := range want {
		g := got[name]
		if g[0] != w[0] || g[1] < w[1]-1e-9 || g[1] > w[1]+1e-9 {
			t.Errorf("%s: count, sum %v, want %v", name, g, w)
		}
	}
}

// TestEventTypesBounded: odd and excess event types are counted as other,
// missing ones as none.
func TestEventTypesBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.CallbackReceived("")
	m.CallbackReceived("user_add_org")
	m.CallbackReceived("has spaces")
	m.CallbackReceived(strings.Repeat("x", 65))
	for i := range metrics.MaxEventTypes + 10 {
		m.CallbackReceived(fmt.Sprintf("type_%d", i))
	}
	m.CallbackReceived("user_add_org") // seen before the cap: itself
	if n := testutil.CollectAndCount(reg, "dingq_callback_events_received_total"); n != metrics.MaxEventTypes+2 {
		t.Errorf("event_type series: got %d, want %d (the cap, plus none and other)", n, metrics.MaxEventTypes+2)
	}
	for _, tt := range []struct {
		name string
		typ  string
		want float64
	}{
		{"none", "none", 1},
		{"known", "user_add_org", 2},
		{"other", "other", 2 + 11}, // two odd names, eleven past the cap
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := gathered(t, reg, "dingq_callback_events_received_total", "event_type", tt.typ)
			if got != tt.want {
				t.Errorf("event_type=%q: got %v, want %v", tt.typ, got, tt.want)
			}
		})
	}
}

// gathered returns the value of metric's counter whose label is value.
func gathered(t *testing.T, reg *prometheus.Registry, metric, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return mt.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestNil: every method of a nil *Metrics does nothing.
func TestNil(t *testing.T) {
	var m *metrics.Metrics
	m.Call("a", "b", "0", time.Second)
	m.TokenFetch("a", true)
	m.TokenCacheHit("a", metrics.LayerMemory)
	m.LimiterWait("a", "b", time.Second)
	m.LimiterDeferred("a", "b")
	m.LimiterRate("a", "b", 1)
	m.Message("a", "message", "sent")
	m.Recipients("a", "sent", 1)
	m.CallbackReceived("x")
	m.CallbackRejected("signature")
	m.CallbackForwarded(metrics.SinkForward, true)
}

// TestNewNilRegisterer: New(nil) registers nothing and still counts.
func TestNewNilRegisterer(t *testing.T) {
	m := metrics.New(nil)
	m.Call("a", "b", "0", time.Second)
	reg := prometheus.NewRegistry()
	metrics.New(reg) // the same names register again without a conflict
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 0 {
		t.Errorf("series on a registry nothing measured in: %d %v, want 0", n, err)
	}
}
