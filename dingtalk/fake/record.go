package fake

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/dingq/dingq/dingtalk"
)

// Call is one call the fake answered, admin endpoints aside.
type Call struct {
	Time   time.Time `json:"time"`
	Method string    `json:"method"`
	// Path is the URL's path, never its query (where tokens and secrets
	// travel).
	Path string `json:"path"`
	// App is the app key (or corp id) the call was for: named by the
	// gettoken query or the new host's token request, or owning the
	// access token used; "" if unknown.
	App string `json:"app"`
	// ErrCode is the errcode the fake answered; 0 is ok, and also what a
	// call answered without an errcode (a fault's HTTP status or IP ban, or
	// any answer of the new host) or never answered records.
	ErrCode int `json:"errcode"`
	// Status is the answer's HTTP status when it was not 200.
	Status int `json:"status,omitempty"`
	// Code is the new host's error code, as in "InvalidAuthentication",
	// when a call to a /v1.0/ path was refused with one; "" otherwise.
	Code string `json:"code,omitempty"`
	// Fault describes the fault that fired on the call, as [Fault.String]
	// does ("code 90018", "status 500", "ip_ban", "hang", "latency 200ms");
	// "" if none did. A call whose client gave up during a latency has
	// " (client gave up)" added.
	Fault string `json:"fault,omitempty"`
	// Limit names the limit that refused the call by its JSON name in
	// [Limits]: "calls_per_second" (answered 90018) or "calls_per_20s"
	// (answered the IP ban); "" if none did.
	Limit string `json:"limit,omitempty"`
	// Body is the request body as received, nil if empty (as for GET). Any
	// access token or app secret in it is replaced by "***", and a body that
	// is not JSON is kept as a JSON string.
	Body json.RawMessage `json:"body"`
}

// Sent is one accepted asyncsend_v2 call.
type Sent struct {
	TaskID int64 `json:"task_id"`
	// App is the app key (or corp id) whose token was used.
	App string `json:"app"`
	// Token is the token used, so tests can check that no message went out
	// with another app's token. It is never shown by the admin endpoints.
	Token string `json:"-"`
	// Body is the exact JSON body DingTalk received.
	Body json.RawMessage `json:"body"`
	// Request is Body, decoded.
	Request dingtalk.SendWire `json:"request"`
	Time    time.Time         `json:"time"`
	// Dropped are the recipients the silent limits dropped, with the code
	// getsendresult reports them with, in the call's order: user ids, then
	// department ids, then "@all" for to_all_user. The limit of recipients
	// per minute ("143103") drops the last ones of the call; the daily
	// limits ("143106" same content, "143105" too many messages today) drop
	// users alone.
	Dropped []Drop `json:"dropped,omitempty"`
	// Recalled is when the task was first recalled; zero if never.
	Recalled time.Time `json:"recalled,omitzero"`

	userDrops int     // Dropped[:userDrops] are user ids
	results   Results // in force when it was sent, for getsendresult
}

// Drop is one recipient of a send that a silent limit dropped.
type Drop struct {
	// ID is the user id, department id or "@all" (to_all_user).
	ID string `json:"id"`
	// Code is the forbidden_list code getsendresult reports it with:
	// dingtalk.ForbiddenAppPerMinute ("143103"), dingtalk.ForbiddenDaily
	// ("143105") or dingtalk.ForbiddenSameContent ("143106").
	Code string `json:"code"`
}

// record appends the call x answered with rp. s.mu is held.
func (s *Server) record(x *exchange, rp reply) {
	status := rp.status
	if status == http.StatusOK {
		status = 0
	}
	s.calls = append(s.calls, Call{
		Time:    x.now,
		Method:  x.req.Method,
		Path:    x.req.URL.Path,
		App:     x.app,
		ErrCode: rp.code,
		Status:  status,
		Code:    rp.errorCode,
		Fault:   x.fault,
		Limit:   x.limit,
		Body:    s.redact(x.body, append([]string{x.token}, x.hide...)...),
	})
}

// Calls returns a copy of every call answered since New or Reset, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	for i, c := range s.calls {
		c.Body = slices.Clone(c.Body)
		out[i] = c
	}
	return out
}

// Sent returns a copy of every accepted asyncsend_v2 call since New or
// Reset, in order.
func (s *Server) Sent() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Sent, len(s.sent))
	for i, m := range s.sent {
		m.Body = slices.Clone(m.Body)
		m.Dropped = slices.Clone(m.Dropped)
		// Decode again rather than share the recorded message's pointers.
		m.Request = decodeWire(m.Body)
		out[i] = m
	}
	return out
}

// TokenFetches returns how many gettoken calls, successful or failed, named
// appID as their appkey or corpid since New or Reset. For a known app with
// both forms set, appID may be either; calls naming the other count too.
func (s *Server) TokenFetches(appID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.app(appID)
	if a == nil {
		return s.fetches[appID]
	}
	n := s.fetches[a.Key]
	if a.CorpID != a.Key {
		n += s.fetches[a.CorpID]
	}
	return n
}

// redacted replaces a secret or token found in a recorded body.
const redacted = "***"

// redact returns a copy of body with every app secret, every token issued
// and extra replaced by "***", nil for an empty body, and a body that is not
// JSON turned into a JSON string. s.mu is held.
func (s *Server) redact(body []byte, extra ...string) json.RawMessage {
	if len(body) == 0 {
		return nil
	}
	out := slices.Clone(body)
	for _, secret := range s.secrets(extra...) {
		out = replaceSecret(out, secret)
	}
	if !json.Valid(out) {
		out, _ = json.Marshal(string(out))
	}
	return out
}

// secrets lists every value that must never be shown: app secrets, tokens
// and extra, longest first. s.mu is held.
func (s *Server) secrets(extra ...string) []string {
	var out []string
	add := func(v string) {
		if v != "" {
			out = append(out, v)
		}
	}
	for _, a := range s.byKey {
		add(a.Secret)
		add(a.CorpSecret)
	}
	for _, a := range s.byCorp {
		add(a.Secret)
		add(a.CorpSecret)
	}
	for v := range s.byValue {
		add(v)
	}
	for _, v := range extra {
		add(v)
	}
	// Longest first: a secret that starts another must not be replaced
	// first and leave the other's tail showing.
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// replaceSecret replaces secret in b, written raw or JSON-escaped.
func replaceSecret(b []byte, secret string) []byte {
	b = bytes.ReplaceAll(b, []byte(secret), []byte(redacted))
	if esc, err := json.Marshal(secret); err == nil {
		esc = esc[1 : len(esc)-1]
		if !bytes.Equal(esc, []byte(secret)) {
			b = bytes.ReplaceAll(b, esc, []byte(redacted))
		}
	}
	return b
}

// decodeWire decodes an asyncsend_v2 body; a body that does not decode gives
// the zero SendWire.
func decodeWire(b []byte) dingtalk.SendWire {
	var w dingtalk.SendWire
	if err := json.Unmarshal(b, &w); err != nil {
		return dingtalk.SendWire{}
	}
	return w
}
