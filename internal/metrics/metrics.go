package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Label values the methods take.
const (
	// LayerMemory: the token was in this process's memory (the hot path).
	LayerMemory = "memory"
	// LayerRedis: the token was taken from the cache in Redis, where
	// another process put it.
	LayerRedis = "redis"
	// SinkForward and SinkStream are the sinks of callback events: the
	// forward URL and the Redis Stream.
	SinkForward = "forward"
	SinkStream  = "stream"
	// AppUnknown is the app label of a message or broadcast for an app
	// the worker counting it is not configured for (a producer without a
	// list of apps takes any well-formed name).
	AppUnknown = "unknown"
)

// Values of the result labels.
const (
	resultOK    = "ok"
	resultError = "error"
)

// MaxEventTypes bounds the distinct values of the event_type label: types
// first seen after that many are counted as "other", and so is a type
// that is not a short word of letters, digits, '_', '.' and '-'. An event
// without a type is counted as "none".
const MaxEventTypes = 50

// Buckets of the histograms, in seconds.
var (
	// CallBuckets: DingTalk's answers, from a few milliseconds to the
	// client's timeout.
	CallBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	// WaitBuckets: waits for a rate-limit slot, from none to the longest
	// worker.max_limit_wait (1m).
	WaitBuckets = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2, 5, 10, 30, 60}
)

// Metrics are dingq's Prometheus metrics. A nil *Metrics measures
// nothing. It is safe for concurrent use.
type Metrics struct {
	calls           *prometheus.CounterVec
	callDuration    *prometheus.HistogramVec
	tokenFetches    *prometheus.CounterVec
	tokenHits       *prometheus.CounterVec
	limiterWait     *prometheus.HistogramVec
	limiterDeferred *prometheus.CounterVec
	limiterRate     *prometheus.GaugeVec
	messages        *prometheus.CounterVec
	recipients      *prometheus.CounterVec
	cbReceived      *prometheus.CounterVec
	cbRejected      *prometheus.CounterVec
	cbForwarded     *prometheus.CounterVec

	mu         sync.Mutex
	eventTypes map[string]bool
}

// New returns dingq's metrics, registered on reg (none if reg is nil). It
// panics if reg holds them already, like prometheus.MustRegister.
func New(reg prometheus.Registerer) *Metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dingq", Name: name, Help: help}, labels)
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "dingq", Name: name, Help: help,
			Buckets: buckets}, labels)
	}
	m := &Metrics{
		calls: counter("dingtalk_calls_total",
			`Calls to DingTalk's API by app, API path and errcode: "0" for success, DingTalk's errcode or string code, or what went wrong when DingTalk gave no answer (http_4xx, http_5xx, ip_banned, timeout, transport, canceled, invalid).`,
			"app", "api", "errcode"),
		callDuration: histogram("dingtalk_call_duration_seconds",
			"How long a call to DingTalk's API took, whatever its answer.", CallBuckets, "app", "api"),
		tokenFetches: counter("token_fetches_total",
			"Access tokens this process fetched from DingTalk (gettoken), by result: ok or error.", "app", "result"),
		tokenHits: counter("token_cache_hits_total",
			"Access tokens served from the cache without a fetch, by layer: memory (this process) or redis (fetched by another process).",
			"app", "layer"),
		limiterWait: histogram("limiter_wait_seconds",
			"How long a call waited in place for its rate-limit slot (0 when a slot was free).", WaitBuckets, "app", "api"),
		limiterDeferred: counter("limiter_deferred_total",
			"Tasks handed back to the queue because their rate-limit slot was too far off (not a failure).", "app", "api"),
		limiterRate: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "dingq", Name: "limiter_rate",
			Help: "Calls per second the rate limiter allows the app to the API now: its configured limit times the factor it keeps lowered while DingTalk throttles (90018)."},
			[]string{"app", "api"}),
		messages: counter("messages_total",
			"Records that reached a final status, by kind (message, broadcast, session, callback) and status (sent, failed, canceled, done).",
			"app", "kind", "status"),
		recipients: counter("recipients_total",
			"Recipients counted once each at their final state: sent (a single message DingTalk accepted), rejected (its message or batch failed), canceled, and for broadcasts what getsendresult said: read, unread, invalid, forbidden, failed, unknown.",
			"app", "status"),
		cbReceived: counter("callback_events_received_total",
			"Events DingTalk pushed that the callback receiver took, by event type.", "event_type"),
		cbRejected: counter("callback_requests_rejected_total",
			"Pushes the callback receiver refused, by reason.", "reason"),
		cbForwarded: counter("callback_events_forwarded_total",
			"Callback events handed to a sink (forward URL or Redis Stream), by result: ok or error.", "sink", "result"),
		eventTypes: map[string]bool{},
	}
	if reg != nil {
		reg.MustRegister(m.calls, m.callDuration, m.tokenFetches, m.tokenHits, m.limiterWait, m.limiterDeferred,
			m.limiterRate, m.messages, m.recipients, m.cbReceived, m.cbRejected, m.cbForwarded)
	}
	return m
}

// Call counts one call of app to DingTalk's api that answered errcode
// ("0" for success) after d.
func (m *Metrics) Call(app, api, errcode string, d time.Duration) {
	if m == nil {
		return
	}
	m.calls.WithLabelValues(app, api, errcode).Inc()
	m.callDuration.WithLabelValues(app, api).Observe(d.Seconds())
}

// TokenFetch counts one gettoken call of app this process made.
func (m *Metrics) TokenFetch(app string, ok bool) {
	if m == nil {
		return
	}
	m.tokenFetches.WithLabelValues(app, result(ok)).Inc()
}

// TokenCacheHit counts a token of app served from layer (LayerMemory or
// LayerRedis) without a fetch.
func (m *Metrics) TokenCacheHit(app, layer string) {
	if m == nil {
		return
	}
	m.tokenHits.WithLabelValues(app, layer).Inc()
}

// LimiterWait records that a call of app to api waited d for its slot.
func (m *Metrics) LimiterWait(app, api string, d time.Duration) {
	if m == nil {
		return
	}
	m.limiterWait.WithLabelValues(app, api).Observe(d.Seconds())
}

// LimiterDeferred counts a task of app to api handed back to the queue to
// wait for its slot.
func (m *Metrics) LimiterDeferred(app, api string) {
	if m == nil {
		return
	}
	m.limiterDeferred.WithLabelValues(app, api).Inc()
}

// LimiterRate sets the calls per second the limiter allows app to api now.
func (m *Metrics) LimiterRate(app, api string, perSecond float64) {
	if m == nil {
		return
	}
	m.limiterRate.WithLabelValues(app, api).Set(perSecond)
}

// Message counts a record of app and kind that reached final status.
func (m *Metrics) Message(app, kind, status string) {
	if m == nil {
		return
	}
	m.messages.WithLabelValues(app, kind, status).Inc()
}

// Recipients counts n recipients of app that reached status.
func (m *Metrics) Recipients(app, status string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.recipients.WithLabelValues(app, status).Add(float64(n))
}

// CallbackReceived counts an event of eventType the callback receiver
// took. At most MaxEventTypes types are told apart.
func (m *Metrics) CallbackReceived(eventType string) {
	if m == nil {
		return
	}
	m.cbReceived.WithLabelValues(m.eventType(eventType)).Inc()
}

// CallbackRejected counts a push the callback receiver refused for reason.
func (m *Metrics) CallbackRejected(reason string) {
	if m == nil {
		return
	}
	m.cbRejected.WithLabelValues(reason).Inc()
}

// CallbackForwarded counts a callback event handed to sink (SinkForward
// or SinkStream), or not if !ok.
func (m *Metrics) CallbackForwarded(sink string, ok bool) {
	if m == nil {
		return
	}
	m.cbForwarded.WithLabelValues(sink, result(ok)).Inc()
}

// eventType is the label value of event type t.
func (m *Metrics) eventType(t string) string {
	switch {
	case t == "":
		return "none"
	case !word(t):
		return "other"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.eventTypes[t] {
		if len(m.eventTypes) >= MaxEventTypes {
			return "other"
		}
		m.eventTypes[t] = true
	}
	return t
}

// word reports whether s is at most 64 letters, digits, '_', '.' and '-'.
func word(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

func result(ok bool) string {
	if ok {
		return resultOK
	}
	return resultError
}
