package fake

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
)

// adminPrefix starts the fake's own endpoints, which DingTalk does not have.
const adminPrefix = "/_fake/"

// Paths of the admin endpoints.
const (
	PathAdminCalls = adminPrefix + "calls"
	PathAdminSent  = adminPrefix + "sent"
	PathAdminStats = adminPrefix + "stats"
	PathAdminReset = adminPrefix + "reset"
)

// Stats is the answer of GET /_fake/stats.
type Stats struct {
	Calls int `json:"calls"`
	Sent  int `json:"sent"`
	// TokenFetches counts gettoken calls by the appkey or corpid they named.
	TokenFetches map[string]int `json:"token_fetches"`
}

// Stats returns how many calls and accepted sends the fake has seen, and
// its gettoken calls by the appkey or corpid they named.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Calls: len(s.calls), Sent: len(s.sent), TokenFetches: maps.Clone(s.fetches)}
}

// serveAdmin answers the admin endpoints. They are not recorded as calls,
// and show no secret and no token.
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	method := http.MethodGet
	switch r.URL.Path {
	case PathAdminCalls, PathAdminSent, PathAdminStats:
	case PathAdminReset:
		method = http.MethodPost
	default:
		notFound().write(w)
		return
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var v any
	switch r.URL.Path {
	case PathAdminCalls:
		v = s.Calls() // bodies were redacted when recorded
	case PathAdminSent:
		v = s.redactedSent()
	case PathAdminStats:
		v = s.Stats()
	case PathAdminReset:
		s.Reset()
		okReply().write(w)
		return
	}
	// Unescaped, so the bodies read back are the bytes DingTalk received.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, "encoding: "+err.Error(), http.StatusInternalServerError)
		return
	}
	writeRaw(w, http.StatusOK, b.Bytes())
}

// redactedSent is Sent with any secret or token in a message replaced by
// "***", and Token left out.
func (s *Server) redactedSent() []Sent {
	sent := s.Sent()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range sent {
		m := &sent[i]
		m.Token = ""
		if b := s.redact(m.Body); string(b) != string(m.Body) {
			m.Body = b
			m.Request = decodeWire(b)
		}
	}
	return sent
}
