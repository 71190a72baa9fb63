package dingtalk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// TestErrorClass follows the table "Rate limits and what each error asks of
// a client" in dingtalk-api.md, row by row.
func TestErrorClass(t *testing.T) {
	const (
		send   = PathAsyncSendV2
		newAPI = "/v1.0/robot/oToMessages/batchSend"
	)
	tests := []struct {
		name          string
		err           *Error
		class         Class
		tokenInvalid  bool
		badCreds      bool
		needsOperator bool
		throttle      time.Duration // 0: not throttled
	}{
		// -1 system busy: retry with backoff.
		{name: "-1 system busy", err: &Error{HTTPStatus: 200, Code: -1, Path: send}, class: ClassTransient},

		// bad or expired token: refetch once, retry.
		{name: "88 sub_code 40014", err: &Error{HTTPStatus: 200, Code: 88, SubCode: "40014", Path: send}, class: ClassTokenInvalid, tokenInvalid: true},
		{name: "88 sub_code 40000", err: &Error{HTTPStatus: 200, Code: 88, SubCode: "40000", Path: send}, class: ClassTokenInvalid, tokenInvalid: true},
		{name: "40014", err: &Error{HTTPStatus: 200, Code: 40014, Path: send}, class: ClassTokenInvalid, tokenInvalid: true},
		{name: "42001", err: &Error{HTTPStatus: 200, Code: 42001, Path: send}, class: ClassTokenInvalid, tokenInvalid: true},
		{name: "40001", err: &Error{HTTPStatus: 200, Code: 40001, Path: send}, class: ClassTokenInvalid, tokenInvalid: true},
		{name: "400 InvalidAuthentication", err: &Error{HTTPStatus: 400, ErrorCode: "InvalidAuthentication", Path: newAPI}, class: ClassTokenInvalid, tokenInvalid: true},

		// 88 with another sub_code: no permission, give up, alert.
		{name: "88 sub_code 60011", err: &Error{HTTPStatus: 200, Code: 88, SubCode: "60011", Path: send}, class: ClassPermanent, needsOperator: true},

		// per-app rate limit: wait ~1 s (QPM: up to 60 s).
		{name: "90018", err: &Error{HTTPStatus: 200, Code: 90018, Path: send}, class: ClassThrottled, throttle: time.Second},
		{name: "403 QpsLimitForAppkeyAndApi", err: &Error{HTTPStatus: 403, ErrorCode: "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", Path: newAPI}, class: ClassThrottled, throttle: time.Second},
		{name: "403 QpmLimitForAppkeyAndApi", err: &Error{HTTPStatus: 403, ErrorCode: "Forbidden.AccessDenied.QpmLimitForAppkeyAndApi", Path: newAPI}, class: ClassThrottled, throttle: time.Minute},
		{name: "429", err: &Error{HTTPStatus: 429, Path: newAPI}, class: ClassThrottled, throttle: time.Second},

		// global rate limit: exponential backoff.
		{name: "90002", err: &Error{HTTPStatus: 200, Code: 90002, Path: send}, class: ClassThrottled, throttle: time.Second},
		{name: "403 QpsLimitForApi", err: &Error{HTTPStatus: 403, ErrorCode: "Forbidden.AccessDenied.QpsLimitForApi", Path: newAPI}, class: ClassThrottled, throttle: time.Second},
		{name: "45009", err: &Error{HTTPStatus: 200, Code: 45009, Path: send}, class: ClassThrottled, throttle: time.Second},

		// temporarily disabled: long backoff (minutes).
		{name: "90001", err: &Error{HTTPStatus: 200, Code: 90001, Path: send}, class: ClassThrottled, throttle: 2 * time.Minute},
		{name: "90003", err: &Error{HTTPStatus: 200, Code: 90003, Path: send}, class: ClassThrottled, throttle: 2 * time.Minute},
		{name: "90004", err: &Error{HTTPStatus: 200, Code: 90004, Path: send}, class: ClassThrottled, throttle: 2 * time.Minute},
		{name: "90005", err: &Error{HTTPStatus: 200, Code: 90005, Path: send}, class: ClassThrottled, throttle: 2 * time.Minute},
		{name: "90006", err: &Error{HTTPStatus: 200, Code: 90006, Path: send}, class: ClassThrottled, throttle: 2 * time.Minute},

		// status 1111: IP ban, pause ~5 min.
		{name: "IP ban wait 5m", err: &Error{HTTPStatus: 200, IPBanned: true, Wait: 5 * time.Minute, Path: send}, class: ClassThrottled, throttle: 5 * time.Minute},
		{name: "IP ban wait 7m", err: &Error{HTTPStatus: 200, IPBanned: true, Wait: 7 * time.Minute, Path: send}, class: ClassThrottled, throttle: 7 * time.Minute},
		{name: "IP ban no wait", err: &Error{HTTPStatus: 200, IPBanned: true, Path: send}, class: ClassThrottled, throttle: 5 * time.Minute},

		// monthly quota: give up, alert.
		{name: "90020", err: &Error{HTTPStatus: 200, Code: 90020, Path: send}, class: ClassPermanent, needsOperator: true},
		{name: "403 ApiCountLimitForOrg", err: &Error{HTTPStatus: 403, ErrorCode: "ApiCountLimitForOrg", Path: newAPI}, class: ClassPermanent, needsOperator: true},

		// bad credentials: give up, alert, never loop.
		{name: "gettoken 40089", err: &Error{HTTPStatus: 200, Code: 40089, Path: PathGetToken}, class: ClassPermanent, badCreds: true, needsOperator: true},
		{name: "gettoken 40096", err: &Error{HTTPStatus: 200, Code: 40096, Path: PathGetToken}, class: ClassPermanent, badCreds: true, needsOperator: true},
		{name: "gettoken 40001", err: &Error{HTTPStatus: 200, Code: 40001, Path: PathGetToken}, class: ClassPermanent, badCreds: true, needsOperator: true},
		{name: "400 invalidClientIdOrSecret", err: &Error{HTTPStatus: 400, ErrorCode: "invalidClientIdOrSecret", Path: PathAccessTokenV1}, class: ClassPermanent, badCreds: true, needsOperator: true},

		// bad userid: give up for that message.
		{name: "33012", err: &Error{HTTPStatus: 200, Code: 33012, Path: send}, class: ClassPermanent},
		{name: "40003", err: &Error{HTTPStatus: 200, Code: 40003, Path: send}, class: ClassPermanent},
		{name: "40031", err: &Error{HTTPStatus: 200, Code: 40031, Path: send}, class: ClassPermanent},
		{name: "60121", err: &Error{HTTPStatus: 200, Code: 60121, Path: send}, class: ClassPermanent},

		// bad agent_id: give up.
		{name: "40056", err: &Error{HTTPStatus: 200, Code: 40056, Path: send}, class: ClassPermanent},

		// bad request, our bug: give up.
		{name: "400002", err: &Error{HTTPStatus: 200, Code: 400002, Path: send}, class: ClassPermanent},
		{name: "40035", err: &Error{HTTPStatus: 200, Code: 40035, Path: send}, class: ClassPermanent},
		{name: "43004", err: &Error{HTTPStatus: 200, Code: 43004, Path: send}, class: ClassPermanent},
		{name: "22 invalid method", err: &Error{HTTPStatus: 200, Code: 22, Path: "/topapi/nope"}, class: ClassPermanent},
		{name: "HTTP 404", err: &Error{HTTPStatus: 404, Path: newAPI}, class: ClassPermanent},

		// IP not allowed: give up, alert.
		{name: "60020", err: &Error{HTTPStatus: 200, Code: 60020, Path: send}, class: ClassPermanent, needsOperator: true},
		{name: "403 IpNotInWhiteList", err: &Error{HTTPStatus: 403, ErrorCode: "IpNotInWhiteList", Path: newAPI}, class: ClassPermanent, needsOperator: true},

		// HTTP 5xx: transient.
		{name: "HTTP 500", err: &Error{HTTPStatus: 500, Path: send}, class: ClassTransient},
		{name: "HTTP 502", err: &Error{HTTPStatus: 502, Path: send}, class: ClassTransient},
		{name: "HTTP 503 with code", err: &Error{HTTPStatus: 503, ErrorCode: "ServiceUnavailable", Path: newAPI}, class: ClassTransient},

		// an errcode nobody documented: retry a bounded number of times.
		{name: "unknown 123456", err: &Error{HTTPStatus: 200, Code: 123456, Path: send}, class: ClassTransient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.err
			if got := e.Class(); got != tt.class {
				t.Errorf("Class: got %v, want %v", got, tt.class)
			}
			if got := Classify(e); got != tt.class {
				t.Errorf("Classify: got %v, want %v", got, tt.class)
			}
			if got := e.TokenInvalid(); got != tt.tokenInvalid {
				t.Errorf("TokenInvalid: got %v, want %v", got, tt.tokenInvalid)
			}
			if got := e.BadCredentials(); got != tt.badCreds {
				t.Errorf("BadCredentials: got %v, want %v", got, tt.badCreds)
			}
			if got := e.NeedsOperator(); got != tt.needsOperator {
				t.Errorf("NeedsOperator: got %v, want %v", got, tt.needsOperator)
			}
			d, ok := e.Throttled()
			if got, want := ok, tt.throttle > 0; got != want {
				t.Errorf("Throttled ok: got %v, want %v", got, want)
			}
			if d != tt.throttle {
				t.Errorf("Throttled delay: got %v, want %v", d, tt.throttle)
			}
			if got, want := e.Permanent(), tt.class == ClassPermanent; got != want {
				t.Errorf("Permanent: got %v, want %v", got, want)
			}
			if got, want := e.Temporary(), tt.class != ClassPermanent; got != want {
				t.Errorf("Temporary: got %v, want %v", got, want)
			}
		})
	}
}

func TestErrorError(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{name: "topapi token", err: &Error{HTTPStatus: 200, Code: 88, SubCode: "40014", Message: "invalid", SubMessage: "不合法的access_token", RequestID: "r1", Path: PathAsyncSendV2},
			want: "dingtalk: /topapi/message/corpconversation/asyncsend_v2: errcode 88 sub_code 40014: invalid 不合法的access_token (request_id r1)"},
		{name: "new host", err: &Error{HTTPStatus: 400, ErrorCode: "InvalidAuthentication", Message: "bad token", RequestID: "r2", Path: "/v1.0/x"},
			want: "dingtalk: /v1.0/x: HTTP 400 InvalidAuthentication: bad token (request_id r2)"},
		{name: "ip ban", err: &Error{HTTPStatus: 200, IPBanned: true, Wait: 5 * time.Minute, Path: PathGetToken},
			want: "dingtalk: /gettoken: outbound IP banned for 5m0s"},
		{name: "bare status", err: &Error{HTTPStatus: 502},
			want: "dingtalk: HTTP 502"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error(): got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestClassString(t *testing.T) {
	tests := []struct {
		name  string
		class Class
		want  string
	}{
		{name: "transient", class: ClassTransient, want: "transient"},
		{name: "throttled", class: ClassThrottled, want: "throttled"},
		{name: "token_invalid", class: ClassTokenInvalid, want: "token_invalid"},
		{name: "permanent", class: ClassPermanent, want: "permanent"},
		{name: "canceled", class: ClassCanceled, want: "canceled"},
		{name: "zero", class: 0, want: "Class(0)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.class.String(); got != tt.want {
				t.Errorf("String: got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Class
	}{
		{name: "nil", err: nil, want: 0},
		{name: "validation error", err: &ValidationError{Field: "agent_id", Reason: "required"}, want: ClassPermanent},
		{name: "wrapped validation error", err: fmt.Errorf("enqueue: %w", &ValidationError{Field: "agent_id"}), want: ClassPermanent},
		{name: "wrapped 90018", err: fmt.Errorf("wrap: %w", &Error{Code: 90018}), want: ClassThrottled},
		{name: "wrapped token invalid", err: fmt.Errorf("wrap: %w", &Error{Code: 88, SubCode: "40014", Path: PathAsyncSendV2}), want: ClassTokenInvalid},
		{name: "context canceled", err: context.Canceled, want: ClassCanceled},
		{name: "transport canceled", err: &TransportError{Method: "POST", Path: PathAsyncSendV2, Err: context.Canceled}, want: ClassCanceled},
		{name: "transport deadline", err: &TransportError{Method: "POST", Path: PathAsyncSendV2, Err: context.DeadlineExceeded}, want: ClassTransient},
		{name: "transport EOF", err: &TransportError{Method: "POST", Path: PathAsyncSendV2, Err: io.ErrUnexpectedEOF}, want: ClassTransient},
		{name: "unknown error", err: errors.New("boom"), want: ClassTransient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.err); got != tt.want {
				t.Errorf("Classify: got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		want   time.Duration
		wantOK bool
	}{
		{name: "nil", err: nil},
		{name: "wrapped 90018", err: fmt.Errorf("wrap: %w", &Error{Code: 90018}), want: time.Second, wantOK: true},
		{name: "90002", err: &Error{Code: 90002}, want: time.Second, wantOK: true},
		{name: "ip ban", err: &Error{IPBanned: true, Wait: 5 * time.Minute}, want: 5 * time.Minute, wantOK: true},
		{name: "token invalid", err: &Error{Code: 40014, Path: PathAsyncSendV2}},
		{name: "transport", err: &TransportError{Err: io.EOF}},
		{name: "validation", err: &ValidationError{Field: "agent_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := RetryAfter(tt.err)
			if ok != tt.wantOK {
				t.Errorf("RetryAfter ok: got %v, want %v", ok, tt.wantOK)
			}
			if got != tt.want {
				t.Errorf("RetryAfter: got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSharedLimit(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want bool
	}{
		{name: "90002", err: &Error{Code: 90002}, want: true},
		{name: "45009", err: &Error{Code: 45009}, want: true},
		{name: "new host QpsLimitForApi", err: &Error{HTTPStatus: 403, ErrorCode: "Forbidden.AccessDenied.QpsLimitForApi"}, want: true},
		{name: "disabled 90001", err: &Error{Code: 90001}, want: true},
		{name: "per app 90018", err: &Error{Code: 90018}},
		{name: "per app new host", err: &Error{HTTPStatus: 403, ErrorCode: "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"}},
		{name: "ip ban", err: &Error{IPBanned: true}},
		{name: "bad userid", err: &Error{Code: 33012}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.SharedLimit(); got != tt.want {
				t.Errorf("SharedLimit: got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTransportError(t *testing.T) {
	e := &TransportError{Method: "POST", Path: PathAsyncSendV2, Err: io.ErrUnexpectedEOF}
	if got, want := e.Error(), "dingtalk: POST /topapi/message/corpconversation/asyncsend_v2: unexpected EOF"; got != want {
		t.Errorf("Error(): got %q, want %q", got, want)
	}
	if got, want := errors.Is(e, io.ErrUnexpectedEOF), true; got != want {
		t.Errorf("errors.Is cause: got %v, want %v", got, want)
	}
	if got := e.Error(); strings.Contains(got, "access_token") {
		t.Errorf("Error(): got %q, want no access_token", got)
	}
}
