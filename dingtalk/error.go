package dingtalk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Class says what an error from DingTalk asks of the caller. The table it
// follows is DingTalk's error-code documentation (dingtalk-api.md).
type Class int

// The classes of errors, from "try again" to "give up".
const (
	// ClassTransient: DingTalk was busy or unreachable (errcode -1, HTTP 5xx,
	// timeouts, resets, malformed answers, errcodes this package does not
	// know). Retry with backoff and jitter.
	ClassTransient Class = iota + 1
	// ClassThrottled: a rate limit, a temporary ban or an IP ban. Wait for
	// the delay [Error.Throttled] gives, then retry; it is not a failure.
	ClassThrottled
	// ClassTokenInvalid: the access token was refused. Drop it, fetch a new
	// one once, retry.
	ClassTokenInvalid
	// ClassPermanent: retrying cannot help (bad recipient, bad agent, bad
	// request, no permission, bad credentials, monthly quota used up).
	ClassPermanent
	// ClassCanceled: the caller's context ended. Not DingTalk's answer and
	// never a failure of the message.
	ClassCanceled
)

var classNames = map[Class]string{ClassTransient: "transient", ClassThrottled: "throttled",
	ClassTokenInvalid: "token_invalid", ClassPermanent: "permanent", ClassCanceled: "canceled"}

// String returns the class's name, as used in logs and metrics labels.
func (c Class) String() string {
	if s, ok := classNames[c]; ok {
		return s
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// Error is an answer in which DingTalk said no. It carries everything
// DingTalk said, and never the access token.
type Error struct {
	// HTTPStatus is the answer's HTTP status; the legacy host says 200 even
	// for errors.
	HTTPStatus int
	// Code is the legacy host's errcode; 0 on the new host.
	Code int
	// SubCode is topapi's sub_code, as in errcode 88 with sub_code "40014".
	SubCode string
	// Message is errmsg (legacy host) or message (new host).
	Message string
	// SubMessage is topapi's sub_msg.
	SubMessage string
	// ErrorCode is the new host's string code, as in "InvalidAuthentication".
	ErrorCode string
	// RequestID is DingTalk's request id, for DingTalk's support.
	RequestID string
	// Path is the endpoint's path, never with its query.
	Path string
	// IPBanned is set when the answer was the per-IP ban page (status 1111
	// or HTML): every call from this address is refused for Wait.
	IPBanned bool
	// Wait is how long DingTalk asked us to stay away, when it said.
	Wait time.Duration
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("dingtalk: ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	switch {
	case e.IPBanned:
		fmt.Fprintf(&b, "outbound IP banned for %s", e.Wait)
	case e.ErrorCode != "":
		fmt.Fprintf(&b, "HTTP %d %s", e.HTTPStatus, e.ErrorCode)
	case e.Code != 0:
		fmt.Fprintf(&b, "errcode %d", e.Code)
	default:
		fmt.Fprintf(&b, "HTTP %d", e.HTTPStatus)
	}
	if e.SubCode != "" {
		fmt.Fprintf(&b, " sub_code %s", e.SubCode)
	}
	if msg := strings.TrimSpace(e.Message + " " + e.SubMessage); msg != "" {
		b.WriteString(": ")
		b.WriteString(msg)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request_id %s)", e.RequestID)
	}
	return b.String()
}

// Codes DingTalk answers with, grouped by what they ask of a client.
var (
	tokenInvalidCodes   = map[int]bool{40014: true, 42001: true, 40001: true}
	tokenInvalidSubs    = map[string]bool{"40014": true, "40000": true}
	badCredentialCodes  = map[int]bool{40089: true, 40096: true, 40001: true, 40035: true}
	perAppThrottleCodes = map[int]bool{90018: true}
	globalThrottleCodes = map[int]bool{90002: true, 45009: true}
	disabledCodes       = map[int]bool{90001: true, 90003: true, 90004: true, 90005: true, 90006: true}
	// A custom robot that sent too fast ("send too fast"): blocked for
	// RobotBlock.
	robotBlockCodes = map[int]bool{410100: true, 660026: true, 130101: true}
	permanentCodes  = map[int]bool{
		90020: true,                                        // monthly quota used up
		33012: true, 40003: true, 40031: true, 60121: true, // bad userid
		40056:  true,                                     // bad agent_id
		400002: true, 40035: true, 43004: true, 22: true, // bad request
		60020: true, // IP not in whitelist
		40089: true, 40096: true,
		// callback registration: URL exists, no callback, bad tag, the URL
		// did not answer success, the URL is unreachable
		71006: true, 71007: true, 71008: true, 71009: true, 71012: true,
		// custom robot: its sign or timestamp refused, no such robot
		310000: true, 300001: true,
	}
	operatorCodes = map[int]bool{90020: true, 60020: true, 40089: true, 40096: true, 88: true}
)

// Delays DingTalk's documentation asks for.
const (
	perAppThrottleDelay = time.Second
	perMinuteDelay      = time.Minute
	globalThrottleDelay = time.Second
	disabledDelay       = 2 * time.Minute
	ipBanDelay          = 5 * time.Minute
)

func (e *Error) isTokenEndpoint() bool {
	return e.Path == PathGetToken || e.Path == PathAccessTokenV1
}

// BadCredentials reports whether the app's key and secret (or corp id and
// secret) were refused. Such an error stays until an operator fixes the
// configuration: never loop on it.
func (e *Error) BadCredentials() bool {
	if e.ErrorCode == "invalidClientIdOrSecret" {
		return true
	}
	return e.isTokenEndpoint() && badCredentialCodes[e.Code]
}

// TokenInvalid reports whether the access token was refused (bad, expired or
// missing): drop it, fetch a new one, and retry once.
func (e *Error) TokenInvalid() bool {
	if e.isTokenEndpoint() {
		return false
	}
	if e.Code == 88 {
		return tokenInvalidSubs[e.SubCode]
	}
	return tokenInvalidCodes[e.Code] || e.ErrorCode == "InvalidAuthentication"
}

// Throttled reports whether DingTalk asked us to slow down, and for how long
// at the least. For the limits shared by every caller of an API (90002) the
// delay is the first step of an exponential backoff.
func (e *Error) Throttled() (time.Duration, bool) {
	switch {
	case e.IPBanned:
		if e.Wait > 0 {
			return e.Wait, true
		}
		return ipBanDelay, true
	case perAppThrottleCodes[e.Code] || e.ErrorCode == "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi":
		return perAppThrottleDelay, true
	case strings.Contains(e.ErrorCode, "QpmLimit"):
		return perMinuteDelay, true
	case globalThrottleCodes[e.Code] || strings.HasSuffix(e.ErrorCode, "QpsLimitForApi"):
		return globalThrottleDelay, true
	case disabledCodes[e.Code]:
		return disabledDelay, true
	case robotBlockCodes[e.Code]:
		return RobotBlock, true
	case e.HTTPStatus == 429:
		return perAppThrottleDelay, true
	}
	return 0, false
}

// SharedLimit reports whether the throttling is by a limit shared with
// every caller of the API (90002, 45009, QpsLimitForApi) or a temporary
// disabling (90001, 90003–90006): DingTalk asks callers to back off from
// those exponentially, doubling Throttled's delay with every attempt.
func (e *Error) SharedLimit() bool {
	return globalThrottleCodes[e.Code] || strings.HasSuffix(e.ErrorCode, "QpsLimitForApi") || disabledCodes[e.Code]
}

// Temporary reports whether the same call may succeed later: the error is
// transient, throttled, or a token to refresh.
func (e *Error) Temporary() bool {
	c := e.Class()
	return c == ClassTransient || c == ClassThrottled || c == ClassTokenInvalid
}

// Permanent reports whether retrying cannot help.
func (e *Error) Permanent() bool { return e.Class() == ClassPermanent }

// NeedsOperator reports whether only a person can fix the cause: bad
// credentials, a missing permission, the monthly quota, the IP whitelist.
func (e *Error) NeedsOperator() bool {
	if e.BadCredentials() || strings.HasSuffix(e.ErrorCode, "IpNotInWhiteList") || strings.HasSuffix(e.ErrorCode, "ApiCountLimitForOrg") {
		return true
	}
	if e.Code == 88 {
		return !e.TokenInvalid()
	}
	return operatorCodes[e.Code]
}

// Class sorts the error by DingTalk's table of error codes.
func (e *Error) Class() Class {
	if _, ok := e.Throttled(); ok {
		return ClassThrottled
	}
	switch {
	case e.BadCredentials():
		return ClassPermanent
	case e.TokenInvalid():
		return ClassTokenInvalid
	case e.Code == -1:
		return ClassTransient
	case e.Code == 88, permanentCodes[e.Code]:
		return ClassPermanent
	case strings.HasSuffix(e.ErrorCode, "ApiCountLimitForOrg"), strings.HasSuffix(e.ErrorCode, "IpNotInWhiteList"):
		return ClassPermanent
	case e.HTTPStatus >= 500:
		return ClassTransient
	case e.HTTPStatus >= 400:
		// 400 bad request, 403 forbidden, 404 no such API: our request is wrong.
		return ClassPermanent
	}
	// An errcode this package does not know: retry a bounded number of times
	// rather than drop a message DingTalk might yet take.
	return ClassTransient
}

// TransportError is a call that got no usable answer: the connection
// failed, timed out, or the answer could not be read. Its text names the
// endpoint's path, never the URL with its token.
type TransportError struct {
	Method string
	Path   string
	Err    error
}

// Error implements error.
func (e *TransportError) Error() string {
	return fmt.Sprintf("dingtalk: %s %s: %v", e.Method, e.Path, e.Err)
}

// Unwrap returns the cause.
func (e *TransportError) Unwrap() error { return e.Err }

// Classify says what any error returned by this package asks of the caller.
// A nil error has no class (0).
func Classify(err error) Class {
	if err == nil {
		return 0
	}
	if errors.Is(err, context.Canceled) {
		return ClassCanceled
	}
	var de *Error
	if errors.As(err, &de) {
		return de.Class()
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		return ClassPermanent
	}
	return ClassTransient
}

// RetryAfter returns how long err asks the caller to wait before the next
// call, and whether it asks at all (only throttling does).
func RetryAfter(err error) (time.Duration, bool) {
	var de *Error
	if errors.As(err, &de) {
		return de.Throttled()
	}
	return 0, false
}
