package fake

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Fault is a failure the fake injects into the DingTalk calls it answers:
// an errcode, a broken gateway's HTTP status, a body that is not
// DingTalk's (malformed JSON, an HTML page), the per-IP ban, a call that
// never answers, a connection closed without an answer, or a delay. Add
// one with [Server.AddFault] or POST /_fake/faults; its JSON names are
// those of its tags.
//
// A fault does at most one of Code, Status (or Body, with or without a
// Status), IPBan, Hang and Close, and may add a Latency to it; a fault
// with a Latency alone delays the real answer.
type Fault struct {
	// Path is the endpoint the fault applies to, such as
	// dingtalk.PathAsyncSendV2 or dingtalk.PathGetToken; it must be one the
	// fake implements. If empty, every call but the admin endpoints', on any
	// path. Admin endpoints are never faulted.
	Path string `json:"path,omitempty"`
	// Code, if non-zero, answers HTTP 200 with {"errcode":Code,"errmsg":Msg},
	// plus request_id on topapi paths. -1 (system busy) is allowed.
	Code int `json:"code,omitempty"`
	// SubCode, with Code, adds "sub_code" and "sub_msg" to the answer, as
	// topapi does for errcode 88: {"errcode":88,"sub_code":"40014",…} is an
	// invalid token, "60011" a missing permission.
	SubCode string `json:"sub_code,omitempty"`
	// Msg is the errmsg of a Code. If empty, DingTalk's message for known
	// codes (-1 "系统繁忙", 90018, 33012 "无效的userid", …), for 88 with a
	// SubCode DingTalk's "ding talk error[subcode=…,submsg=…]", and
	// "fault injected" for any other code.
	Msg string `json:"msg,omitempty"`
	// Status, if non-zero, answers that HTTP status (100 to 599) with a
	// short text body that is not JSON, as a broken gateway would; with a
	// Body, with that body.
	Status int `json:"status,omitempty"`
	// Body, if not empty, answers these bytes as they are, with HTTP Status
	// (200 if zero): an HTML page (a body starting with '<', sent as
	// text/html) such as a proxy's error page, or anything else sent as
	// JSON, such as malformed JSON cut short: `{"errcode":0,"task_id":`.
	// Mind that DingTalk's own answer to a banned IP is an HTML page with
	// HTTP 200: the client takes any HTML at 200 for the ban.
	Body string `json:"body,omitempty"`
	// IPBan answers DingTalk's per-IP ban, HTTP 200 with
	// {"status":1111,"wait":5,"punish":"deny"} and no errcode: a client
	// pauses every call for five minutes.
	IPBan bool `json:"ip_ban,omitempty"`
	// Hang never answers: the call waits until the client gives up (the
	// request's context ends), then the connection is dropped. The call has
	// no effect: nothing is sent and no token is issued.
	Hang bool `json:"hang,omitempty"`
	// Close drops the connection as soon as the call is read, without a
	// byte of answer, as a proxy or DingTalk's front end that crashed
	// would: the client reads EOF. The call has no effect.
	Close bool `json:"close,omitempty"`
	// Latency delays the answer, faulted or real, by this long; a call whose
	// client gives up meanwhile has no effect. In JSON a duration string
	// such as "250ms".
	Latency Duration `json:"latency,omitempty"`
	// Times, if > 0, is how many more calls the fault fires on; it is
	// removed after the last. If zero, it fires until cleared.
	Times int `json:"times,omitempty"`
	// Fraction, if > 0, makes the fault fire on that fraction (at most 1) of
	// the calls it matches, drawn at random. If zero, on every one.
	Fraction float64 `json:"fraction,omitempty"`
}

// answers reports whether the fault answers in place of the endpoint.
func (f Fault) answers() bool { return f.Code != 0 || f.Status != 0 || f.Body != "" || f.IPBan }

// matches reports whether the fault applies to a call to path.
func (f Fault) matches(path string) bool { return f.Path == "" || f.Path == path }

// String describes the fault as calls record it: "code 90018",
// "status 500", "body (HTTP 502, 120 bytes)", "ip_ban", "hang", "close",
// "latency 250ms", or a fault with a latency such as
// "code -1, latency 250ms".
func (f Fault) String() string {
	var parts []string
	switch {
	case f.Code != 0 && f.SubCode != "":
		parts = append(parts, fmt.Sprintf("code %d sub_code %s", f.Code, f.SubCode))
	case f.Code != 0:
		parts = append(parts, fmt.Sprintf("code %d", f.Code))
	case f.Body != "":
		parts = append(parts, fmt.Sprintf("body (HTTP %d, %d bytes)", cmp.Or(f.Status, http.StatusOK), len(f.Body)))
	case f.Status != 0:
		parts = append(parts, fmt.Sprintf("status %d", f.Status))
	case f.IPBan:
		parts = append(parts, "ip_ban")
	case f.Hang:
		parts = append(parts, "hang")
	case f.Close:
		parts = append(parts, "close")
	}
	if f.Latency > 0 {
		parts = append(parts, "latency "+f.Latency.String())
	}
	return strings.Join(parts, ", ")
}

// validate says what is wrong with f, naming the field; paths are the
// fake's endpoints.
func (f Fault) validate(paths []string) error {
	var kinds []string
	for _, k := range []struct {
		name string
		set  bool
	}{{"code", f.Code != 0}, {"status", f.Status != 0 && f.Body == ""}, {"body", f.Body != ""},
		{"ip_ban", f.IPBan}, {"hang", f.Hang}, {"close", f.Close}} {
		if k.set {
			kinds = append(kinds, k.name)
		}
	}
	switch {
	case len(kinds) > 1:
		return fmt.Errorf("fault: set at most one of code, status (or body, with or without a status), ip_ban, hang and close, got %s",
			strings.Join(kinds, " and "))
	case len(kinds) == 0 && f.Latency <= 0:
		return errors.New("fault: set one of code, status, body, ip_ban, hang, close or latency")
	case f.Code == 0 && f.SubCode != "":
		return errors.New("fault: sub_code needs a code")
	case f.Code == 0 && f.Msg != "":
		return errors.New("fault: msg needs a code")
	case f.Status != 0 && (f.Status < 100 || f.Status > 599):
		return fmt.Errorf("fault: status must be in 100..599, got %d", f.Status)
	case f.Latency < 0:
		return fmt.Errorf("fault: latency must be >= 0, got %s", f.Latency)
	case f.Times < 0:
		return fmt.Errorf("fault: times must be >= 0, got %d", f.Times)
	case !(f.Fraction >= 0 && f.Fraction <= 1): // NaN too
		return fmt.Errorf("fault: fraction must be in [0, 1], got %g", f.Fraction)
	case f.Path != "" && !slices.Contains(paths, f.Path):
		return fmt.Errorf("fault: path %q is not an endpoint of the fake (want one of %s, or empty for all)",
			f.Path, strings.Join(paths, ", "))
	}
	return nil
}

// AddFault validates f and adds it after the faults already active. The
// error names the field at fault, as in "fault: fraction must be in
// [0, 1], got 1.5".
func (s *Server) AddFault(f Fault) error {
	if err := f.validate(s.paths()); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f)
	return nil
}

// ClearFaults removes every active fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Faults returns the active faults in the order they were added; Times
// shows how many calls a limited fault has left. It is never nil.
func (s *Server) Faults() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Fault{}, s.faults...)
}

// paths returns the fake's endpoints, sorted.
func (s *Server) paths() []string {
	out := make([]string, 0, len(s.routes))
	for p := range s.routes {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// fireFault returns the fault a call to path meets, or nil: the first, in
// the order added, whose path matches and whose fraction is drawn. A fault
// with Times counts the call, and goes with its last. s.mu is held.
func (s *Server) fireFault(path string) *Fault {
	for i := range s.faults {
		f := &s.faults[i]
		if !f.matches(path) || (f.Fraction > 0 && rand.Float64() >= f.Fraction) {
			continue
		}
		fired := *f
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
		}
		s.faulted++
		return &fired
	}
	return nil
}

// faultReply is the answer of a fault that answers in place of the
// endpoint: an errcode, an HTTP status, a body of its own or the per-IP
// ban.
func faultReply(f *Fault) reply {
	switch {
	case f.Body != "":
		rp := reply{status: f.Status, body: []byte(f.Body)}
		if strings.HasPrefix(strings.TrimSpace(f.Body), "<") {
			rp.contentType = "text/html; charset=utf-8"
		}
		return rp
	case f.Status != 0:
		text := http.StatusText(f.Status)
		if text == "" {
			text = "fault injected"
		}
		return reply{status: f.Status, text: true, body: []byte(strconv.Itoa(f.Status) + " " + text + "\n")}
	case f.IPBan:
		return ipBanReply(DefaultBan)
	}
	msg := f.Msg
	if msg == "" {
		msg = codeMessage(f.Code)
	}
	if f.SubCode == "" {
		return reply{code: f.Code, msg: msg}
	}
	subMsg := msg
	if n, err := strconv.Atoi(f.SubCode); err == nil && codeMessages[n] != "" {
		subMsg = codeMessages[n]
	}
	if f.Msg == "" && f.Code == codeTopAPIToken {
		return tokenError(f.SubCode, subMsg)
	}
	return reply{code: f.Code, subCode: f.SubCode, subMsg: subMsg, msg: msg}
}

// codeMessages are DingTalk's errmsg for the codes a fault is likely to
// inject.
var codeMessages = map[int]string{
	-1:                "系统繁忙",
	codeInvalidMethod: "Invalid method",
	codeTopAPIToken:   "鉴权异常",
	33012:             "无效的userid",
	40001:             "获取access_token时Secret错误，或者access_token无效",
	40014:             "不合法的access_token",
	codeMissingParam:  "缺少参数",
	codeBadAgentID:    "不合法的agentId",
	codeBadCorpSecret: "不合法的corpid或corpsecret",
	codeBadAppSecret:  "不合法的appKey或appSecret",
	42001:             "access_token超时",
	45009:             "接口调用超过限制",
	60011:             "没有调用该接口的权限",
	60020:             "访问ip不在白名单之中",
	90001:             "您的服务器调用钉钉开放平台所有接口的请求都被暂时禁用了",
	90002:             "您的服务器调用钉钉开放平台当前接口的所有请求都被暂时禁用了",
	codeThrottled:     "接口调用超过限流，请降低调用频率",
	90020:             "接口调用次数超过企业每月限额",
	codeBadParam:      "参数错误",
}

// codeMessage is DingTalk's errmsg for code, or "fault injected".
func codeMessage(code int) string {
	if m := codeMessages[code]; m != "" {
		return m
	}
	return "fault injected"
}

// sleep waits d, or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Duration is a time.Duration that is a string such as "250ms" in JSON. It
// also decodes from a number of nanoseconds.
type Duration time.Duration

// String returns the duration as time.Duration writes it.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the duration as a string such as "250ms".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string such as "250ms" or "1.5s", or a
// whole number of nanoseconds. null leaves d as it is.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: want a Go duration such as \"250ms\"", s)
		}
		*d = Duration(v)
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("duration %s: want a string such as \"250ms\" or whole nanoseconds", b)
	}
	*d = Duration(n)
	return nil
}
