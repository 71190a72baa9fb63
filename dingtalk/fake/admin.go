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

	"github.com/dingq/dingq/dingtalk"
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
	// PathAdminLimits shows (GET) and sets (PUT, Limits as JSON) the rate
	// limits.
	PathAdminLimits = adminPrefix + "limits"
	// PathAdminResults shows (GET) and sets (PUT, Results as JSON) what
	// getsendresult reports of delivered users.
	PathAdminResults = adminPrefix + "results"
	// PathAdminPush pushes events to an app's callback: POST with
	// {"app":"KEY","events":[{...},...],"times":N}.
	PathAdminPush = adminPrefix + "push"
	// PathAdminCallbacks lists the registered callbacks (GET), without
	// their secrets.
	PathAdminCallbacks = adminPrefix + "callbacks"
	// PathAdminRobots lists what the robots took (GET), as [RobotRecords]:
	// the custom robots' messages and the enterprise robots' batch sends.
	PathAdminRobots = adminPrefix + "robots"
)

// adminMethods are the HTTP methods each admin endpoint takes.
var adminMethods = map[string][]string{
	PathAdminCalls:     {http.MethodGet},
	PathAdminSent:      {http.MethodGet},
	PathAdminStats:     {http.MethodGet},
	PathAdminReset:     {http.MethodPost},
	PathAdminFaults:    {http.MethodGet, http.MethodPost, http.MethodDelete},
	PathAdminRevoke:    {http.MethodPost},
	PathAdminLimits:    {http.MethodGet, http.MethodPut},
	PathAdminResults:   {http.MethodGet, http.MethodPut},
	PathAdminPush:      {http.MethodPost},
	PathAdminCallbacks: {http.MethodGet},
	PathAdminRobots:    {http.MethodGet},
}

// Stats is the answer of GET /_fake/stats.
type Stats struct {
	Calls int `json:"calls"`
	Sent  int `json:"sent"`
	// Pushed counts the events pushed to callbacks ([Server.Push] and
	// POST /_fake/push) that the receiver took (answered an encrypted
	// "success"); the check_url of registrations is not counted.
	Pushed int `json:"pushed"`
	// PushFailed counts the events pushed that the receiver did not take,
	// and that went to their app's failed list.
	PushFailed int `json:"push_failed"`
	// SessionsOpen counts the sessions create_session opened and
	// close_session did not close.
	SessionsOpen int `json:"sessions_open"`
	// TokenFetches counts token calls (gettoken, and the new host's
	// /v1.0/oauth2/accessToken) by the appkey or corpid they named.
	TokenFetches map[string]int `json:"token_fetches"`
	// Faulted counts the calls a fault fired on, latency alone included.
	Faulted int `json:"faulted"`
	// Throttled counts the calls the limits answered 90018
	// (CallsPerSecond); calls a fault answered 90018 are not among them.
	Throttled int `json:"throttled"`
	// IPBanned counts the calls the limits answered with the IP ban
	// (CallsPer20s), the call that started a ban included.
	IPBanned int `json:"ip_banned"`
	// MaxCallsPerSecond is, by app id, the most accepted asyncsend_v2 calls
	// seen in any sliding 1-second window, limits or not.
	MaxCallsPerSecond map[string]int `json:"max_calls_per_second"`
	// MaxRecipientsPerMinute is, by app id, the most recipients seen in any
	// sliding 60-second window, limits or not, that the limit of recipients
	// per minute let through (and counted): the daily limits may still
	// have dropped some of them.
	MaxRecipientsPerMinute map[string]int `json:"max_recipients_per_minute"`
	// Dropped counts, by app id, the recipients the silent limits dropped:
	// the limit of recipients per minute and the daily limits.
	Dropped map[string]int `json:"dropped"`
	// DroppedByCode counts the same recipients by their forbidden_list
	// code: "143103" (recipients per minute), "143105" (messages per user
	// per day), "143106" (same content the same day).
	DroppedByCode map[string]int `json:"dropped_by_code"`
	// Recalled counts the tasks recalled, each once.
	Recalled int `json:"recalled"`
	// Limits are the limits in force.
	Limits Limits `json:"limits"`
}

// Stats returns how many calls, accepted sends, recalled tasks, faulted
// calls, pushed events and open sessions the fake has seen, its gettoken calls by the appkey or corpid they
// named, what the limits refused and dropped, and the highest rates each
// app reached. The maps are never nil.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{
		Calls:                  len(s.calls),
		Sent:                   len(s.sent),
		Pushed:                 s.pushed,
		PushFailed:             s.pushFailed,
		SessionsOpen:           s.openSessions(),
		TokenFetches:           maps.Clone(s.fetches),
		Faulted:                s.faulted,
		Throttled:              s.throttled,
		IPBanned:               s.ipBanned,
		MaxCallsPerSecond:      maps.Clone(s.maxCallsPerSecond),
		MaxRecipientsPerMinute: maps.Clone(s.maxRecipientsPerMinute),
		Dropped:                maps.Clone(s.dropped),
		DroppedByCode:          maps.Clone(s.droppedByCode),
		Recalled:               s.recalled,
		Limits:                 s.limits,
	}
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
	case PathAdminCallbacks:
		v = s.Callbacks()
	case PathAdminRobots:
		v = s.redactedRobots()
	case PathAdminPush:
		var req pushRequest
		err := decodeStrict(w, r, &req, "push", `{"app":"KEY","events":[...],"times":N}`)
		var pushed, failed int
		if err == nil {
			pushed, failed, err = s.pushAll(req)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		okReply(field{"pushed", pushed}, field{"failed", failed}).write(w)
		return
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
	case PathAdminLimits:
		if r.Method == http.MethodGet {
			v = s.Limits()
			break
		}
		var l Limits
		err := decodeStrict(w, r, &l, "limits", "Limits")
		if err == nil {
			err = s.SetLimits(l)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		okReply().write(w)
		return
	case PathAdminResults:
		if r.Method == http.MethodGet {
			v = s.Results()
			break
		}
		var res Results
		err := decodeStrict(w, r, &res, "results", "Results")
		if err == nil {
			err = s.SetResults(res)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		okReply().write(w)
		return
	case PathAdminFaults:
		switch r.Method {
		case http.MethodGet:
			v = s.Faults()
		case http.MethodPost:
			var f Fault
			err := decodeStrict(w, r, &f, "fault", "a Fault")
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

// decodeStrict reads a request's body into v: one JSON object, no unknown
// field, at most MaxBodyBytes. Errors start with prefix, as in "fault:
// empty body, want a Fault as a JSON object", want naming v's type.
func decodeStrict(w http.ResponseWriter, r *http.Request, v any, prefix, want string) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: empty body, want %s as a JSON object", prefix, want)
		}
		return fmt.Errorf("%s: decoding JSON: %w", prefix, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: decoding JSON: data after the object", prefix)
	}
	return nil
}

// redactedSent is Sent with any secret or token in a message replaced by
// "***", and Token left out.
func (s *Server) redactedSent() []Sent {
	sent := s.Sent()
	s.mu.Lock()
	defer s.mu.Unlock()
	secrets := s.secrets()
	for i := range sent {
		m := &sent[i]
		m.Token = ""
		if b := s.redact(m.Body); string(b) != string(m.Body) {
			m.Body = b
			m.Request = decodeWire(b)
		}
		for j, d := range m.Dropped {
			for _, secret := range secrets {
				d.ID = string(replaceSecret([]byte(d.ID), secret))
			}
			m.Dropped[j] = d
		}
	}
	return sent
}

// RobotRecords is the answer of GET /_fake/robots: what the robots took,
// each list in order, never nil.
type RobotRecords struct {
	// Sent are the custom group robots' messages ([Server.RobotSent]),
	// each naming its robot by [RobotSent.RobotID], never by its token.
	Sent []RobotSent `json:"sent"`
	// Batches are the enterprise robots' batch sends
	// ([Server.RobotBatches]).
	Batches []RobotBatch `json:"batches"`
}

// redactedRobots is RobotSent and RobotBatches with any app secret, access
// token, robot token or robot secret in a message replaced by "***".
func (s *Server) redactedRobots() RobotRecords {
	out := RobotRecords{Sent: s.RobotSent(), Batches: s.RobotBatches()}
	s.mu.Lock()
	defer s.mu.Unlock()
	var extra []string
	for tok, rb := range s.robots {
		extra = append(extra, tok, rb.secret)
	}
	secrets := s.secrets(extra...)
	hide := func(b []byte) []byte {
		for _, secret := range secrets {
			b = replaceSecret(b, secret)
		}
		return b
	}
	for i := range out.Sent {
		m := &out.Sent[i]
		b, err := json.Marshal(m.Message)
		if err != nil {
			continue
		}
		if h := hide(b); string(h) != string(b) {
			var r dingtalk.RobotMessage
			if json.Unmarshal(h, &r) != nil {
				// A secret that spelled part of the JSON itself: show
				// nothing of the message rather than the secret.
				r = dingtalk.RobotMessage{MsgType: m.Message.MsgType}
			}
			m.Message = &r
		}
	}
	for i := range out.Batches {
		out.Batches[i].MsgParam = string(hide([]byte(out.Batches[i].MsgParam)))
	}
	return out
}
