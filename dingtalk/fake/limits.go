package fake

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/dingq/dingq/dingtalk"
)

// Limits are the rate limits the fake enforces. A zero field turns that
// limit off; the zero Limits enforce none. Set them with [Options], with
// [Server.SetLimits] or with PUT /_fake/limits; their JSON names are those
// of their tags.
type Limits struct {
	// CallsPerSecond caps calls per app per API (endpoint path) in any
	// sliding 1-second window (t-1s, t]. A call over it answers errcode
	// 90018 (HTTP 200, "接口调用超过限流，请降低调用频率"), or on the new host
	// (/v1.0/) HTTP 403 Forbidden.AccessDenied.QpsLimitForAppkeyAndApi, and
	// has no effect. The token endpoints (gettoken and
	// /v1.0/oauth2/accessToken) are exempt, and so are calls whose app is
	// unknown (no token the fake issued). Every call to an endpoint counts,
	// whatever its answer, but for the ones this limit refused.
	CallsPerSecond int `json:"calls_per_second"`
	// RecipientsPerMinute caps the recipients (userid_list ids plus
	// dept_id_list ids, each department counting as 1, and to_all_user as 1)
	// of accepted asyncsend_v2 calls per app in any sliding 60-second
	// window. As DingTalk does, the call still answers ok with a task_id:
	// the recipients over the limit are dropped (the first ones of the call
	// that fit are kept, users before departments), recorded in
	// [Sent.Dropped] and reported by getsendresult in forbidden_list with
	// code "143103".
	RecipientsPerMinute int `json:"recipients_per_minute"`
	// CallsPer20s caps all calls from every client (DingTalk's per-IP rule)
	// in any sliding 20-second window, gettoken and calls refused by
	// CallsPerSecond included. The call over it starts a ban: it and every
	// call until Ban has passed answer DingTalk's IP ban,
	// {"status":1111,"wait":M,"punish":"deny"} with M the ban in minutes
	// (rounded up), and have no effect. Banned calls do not count, and the
	// count starts again from zero after a ban.
	CallsPer20s int `json:"calls_per_20s"`
	// Ban is how long the IP ban lasts. If zero, DefaultBan (5 minutes).
	Ban Duration `json:"ban,omitempty"`
}

// DefaultLimits are DingTalk's standard-edition limits: 20 calls/s per app
// per API, 5,000 recipients a minute per app, 10,000 calls in 20 s.
var DefaultLimits = Limits{CallsPerSecond: 20, RecipientsPerMinute: 5000, CallsPer20s: 10000}

// DefaultBan is how long the IP ban lasts when Limits leave Ban zero:
// DingTalk's 5 minutes.
const DefaultBan = 5 * time.Minute

// The spans of the limits' sliding windows.
const (
	perSecondSpan = time.Second
	perMinuteSpan = time.Minute
	perIPSpan     = 20 * time.Second
)

// The limits a refused call names in [Call.Limit]: the JSON names of the
// Limits fields.
const (
	limitCallsPerSecond = "calls_per_second"
	limitCallsPer20s    = "calls_per_20s"
)

// Validate says what is wrong with l, naming the field by its JSON name, as
// in "limits: calls_per_second must be >= 0, got -1".
func (l Limits) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{{limitCallsPerSecond, l.CallsPerSecond}, {"recipients_per_minute", l.RecipientsPerMinute}, {limitCallsPer20s, l.CallsPer20s}} {
		if f.v < 0 {
			return fmt.Errorf("limits: %s must be >= 0, got %d", f.name, f.v)
		}
	}
	if l.Ban < 0 {
		return fmt.Errorf("limits: ban must be >= 0, got %s", l.Ban)
	}
	return nil
}

// ban is how long an IP ban lasts: Ban, else DefaultBan.
func (l Limits) ban() time.Duration {
	if l.Ban > 0 {
		return time.Duration(l.Ban)
	}
	return DefaultBan
}

// SetLimits validates l and enforces it from the next call on, in place of
// the limits in force. The calls and recipients already counted stay
// counted, and an IP ban in force lasts while CallsPer20s is non-zero; but
// the calls made while CallsPerSecond or CallsPer20s was off were not
// counted by it. (Recipients are always counted.)
func (s *Server) SetLimits(l Limits) error {
	if err := l.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits = l
	return nil
}

// Limits returns the limits in force; the zero Limits if none.
func (s *Server) Limits() Limits {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limits
}

// apiKey names one app's calls to one endpoint.
type apiKey struct{ app, path string }

// limit applies the call limits to x before its endpoint answers it: the
// per-IP rule to every call, the per-app-per-API rule to a call of an
// endpoint (routed; the token endpoints aside) whose app is known. A call over a limit
// gets its answer and true, and is not counted; any other call is counted
// and gets false. s.mu is held.
func (s *Server) limit(x *exchange, routed bool) (reply, bool) {
	l := s.limits
	if l.CallsPer20s > 0 {
		if x.now.Before(s.bannedUntil) {
			s.ipBanned++
			x.limit = limitCallsPer20s
			return ipBanReply(l.ban()), true
		}
		if s.ipCalls.total(x.now) >= l.CallsPer20s {
			s.bannedUntil = x.now.Add(l.ban())
			s.ipCalls.clear()
			s.ipBanned++
			x.limit = limitCallsPer20s
			return ipBanReply(l.ban()), true
		}
		s.ipCalls.add(x.now, 1)
	}
	path := x.req.URL.Path
	tokenPath := path == dingtalk.PathGetToken || path == dingtalk.PathAccessTokenV1
	if l.CallsPerSecond > 0 && routed && !tokenPath && x.app != "" {
		w := windowOf(s.apiCalls, apiKey{x.app, path}, perSecondSpan)
		if w.total(x.now) >= l.CallsPerSecond {
			s.throttled++
			x.limit = limitCallsPerSecond
			if isV1(path) {
				return v1Throttled(), true
			}
			return reply{code: codeThrottled, msg: codeMessage(codeThrottled)}, true
		}
		w.add(x.now, 1)
	}
	return reply{}, false
}

// admit counts an accepted asyncsend_v2 call of app with n recipients
// against the limit of recipients per minute, and in the stats. It returns
// how many of them fit, the first ones of the call (n if all do); the
// others are dropped. s.mu is held.
func (s *Server) admit(app string, n int, now time.Time) int {
	sends := windowOf(s.sends, app, perSecondSpan)
	sends.add(now, 1)
	s.maxCallsPerSecond[app] = max(s.maxCallsPerSecond[app], sends.total(now))

	delivered := windowOf(s.delivered, app, perMinuteSpan)
	keep := n
	if lim := s.limits.RecipientsPerMinute; lim > 0 {
		keep = min(keep, max(lim-delivered.total(now), 0))
	}
	if keep > 0 {
		delivered.add(now, keep)
	}
	s.maxRecipientsPerMinute[app] = max(s.maxRecipientsPerMinute[app], delivered.total(now))
	return keep
}

// allRecipient stands for to_all_user among a call's recipients.
const allRecipient = "@all"

// recipients lists a send's recipients as the limit of recipients per
// minute counts them: each user id, then each department id, then
// allRecipient for to_all_user.
func recipients(r dingtalk.SendRequest) []string {
	out := slices.Concat(r.UserIDs, r.DeptIDs)
	if r.ToAllUser {
		out = append(out, allRecipient)
	}
	return out
}

// ipBanReply is DingTalk's answer to an outbound IP over its call limit:
// HTTP 200, no errcode, and "wait" the ban in whole minutes, rounded up (at
// least 1), as DingTalk's and dingtalk.Client's "wait" are.
func ipBanReply(ban time.Duration) reply {
	wait := max(int64((ban+time.Minute-1)/time.Minute), 1)
	return reply{body: []byte(`{"status":1111,"wait":` + strconv.FormatInt(wait, 10) + `,"punish":"deny"}`)}
}

// window is a sliding time window of weighted events, oldest first: the
// calls of the last second, or the recipients delivered in the last
// minute. Pruned whenever it is read, it holds only the events inside its
// span, so its memory is bounded by what a limit lets in.
type window struct {
	span   time.Duration
	events []event
	head   int // events[:head] have left the window
	sum    int // the weight of events[head:]
}

// event is n things (calls, recipients) at one time.
type event struct {
	at time.Time
	n  int
}

// windowOf returns m's window for k, making one of span if there is none.
func windowOf[K comparable](m map[K]*window, k K, span time.Duration) *window {
	w := m[k]
	if w == nil {
		w = &window{span: span}
		m[k] = w
	}
	return w
}

// total returns the weight of the events in (now-span, now].
func (w *window) total(now time.Time) int {
	cut := now.Add(-w.span)
	for w.head < len(w.events) && !w.events[w.head].at.After(cut) {
		w.sum -= w.events[w.head].n
		w.head++
	}
	switch {
	case w.head == len(w.events):
		w.events, w.head = w.events[:0], 0
	case w.head > len(w.events)/2:
		// Move the live events down, so the slice does not grow forever.
		n := copy(w.events, w.events[w.head:])
		clear(w.events[n:])
		w.events, w.head = w.events[:n], 0
	}
	return w.sum
}

// add adds n things at now, the latest time the window has seen.
func (w *window) add(now time.Time, n int) {
	w.events = append(w.events, event{at: now, n: n})
	w.sum += n
}

// clear forgets every event.
func (w *window) clear() { w.events, w.head, w.sum = w.events[:0], 0, 0 }
