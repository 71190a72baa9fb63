package fake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// adminPrefix starts the fake's own endpoints, which DingTalk does not have.
const adminPrefix = "/_fake/"

// Paths of the admin endpoints.
const (
	PathAdminCalls = adminPrefix + "calls"
	PathAdminSent  = adminPrefix + "sent"
	PathAdminStats = adminPrefix + "stats"
	PathAdminReset = adminPrefix + "reset"
	// PathAdminFaults lists (GET), adds (POST, a Fault as JSON) and clears
	// (DELETE) the faults.
	PathAdminFaults = adminPrefix + "faults"
	// PathAdminRevoke revokes an app's token: POST /_fake/revoke?app=APPID.
	PathAdminRevoke = adminPrefix + "revoke"
)

// adminMethods are the HTTP methods each admin endpoint takes.
var adminMethods = map[string][]string{
	PathAdminCalls:  {http.MethodGet},
	PathAdminSent:   {http.MethodGet},
	PathAdminStats:  {http.MethodGet},
	PathAdminReset:  {http.MethodPost},
	PathAdminFaults: {http.MethodGet, http.MethodPost, http.MethodDelete},
	PathAdminRevoke: {http.MethodPost},
}

// Stats is the answer of GET /_fake/stats.
type Stats struct {
	Calls int `json:"calls"`
	Sent  int `json:"sent"`
	// TokenFetches counts gettoken calls by the appkey or corpid they named.
	TokenFetches map[string]int `json:"token_fetches"`
	// Faulted counts the calls a fault fired on, latency alone included.
	Faulted int `json:"faulted"`
}

// Stats returns how many calls, accepted sends and faulted calls the fake
// has seen, and its gettoken calls by the appkey or corpid they named.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Calls: len(s.calls), Sent: len(s.sent), TokenFetches: maps.Clone(s.fetches), Faulted: s.faulted}
}

// serveAdmin answers the admin endpoints. They are not recorded as calls,
// and show no secret and no token.
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	methods, ok := adminMethods[r.URL.Path]
	if !ok {
		notFound().write(w)
		return
	}
	if !slices.Contains(methods, r.Method) {
		w.Header().Set("Allow", strings.Join(methods, ", "))
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
	case PathAdminRevoke:
		app := r.URL.Query().Get("app")
		if app == "" {
			http.Error(w, "revoke: missing query parameter app, as in "+PathAdminRevoke+"?app=APPKEY", http.StatusBadRequest)
			return
		}
		okReply(field{"revoked", s.Revoke(app)}).write(w)
		return
	case PathAdminFaults:
		switch r.Method {
		case http.MethodGet:
			v = s.Faults()
		case http.MethodPost:
			f, err := decodeFault(w, r)
			if err == nil {
				err = s.AddFault(f)
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			okReply().write(w)
			return
		case http.MethodDelete:
			s.ClearFaults()
			okReply().write(w)
			return
		}
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

// decodeFault reads the Fault in a request's body: one JSON object, no
// unknown field, at most MaxBodyBytes.
func decodeFault(w http.ResponseWriter, r *http.Request) (Fault, error) {
	var f Fault
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return Fault{}, errors.New("fault: empty body, want a Fault as a JSON object")
		}
		return Fault{}, fmt.Errorf("fault: decoding JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Fault{}, errors.New("fault: decoding JSON: data after the object")
	}
	return f, nil
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
