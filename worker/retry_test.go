package worker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
)

func TestThrottleWait(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		n     int
		limit time.Duration
		want  time.Duration
	}{
		{name: "per app 90018, first", err: &dingtalk.Error{Code: 90018}, n: 1, limit: 10 * time.Minute, want: time.Second},
		{name: "per app 90018, fifth", err: &dingtalk.Error{Code: 90018}, n: 5, limit: 10 * time.Minute, want: time.Second},
		{name: "shared 90002, first", err: &dingtalk.Error{Code: 90002}, n: 1, limit: 10 * time.Minute, want: time.Second},
		{name: "shared 90002, second", err: &dingtalk.Error{Code: 90002}, n: 2, limit: 10 * time.Minute, want: 2 * time.Second},
		{name: "shared 90002, third", err: &dingtalk.Error{Code: 90002}, n: 3, limit: 10 * time.Minute, want: 4 * time.Second},
		{name: "shared 45009, wrapped", err: fmt.Errorf("send: %w", &dingtalk.Error{Code: 45009}), n: 4, limit: 10 * time.Minute, want: 8 * time.Second},
		{name: "shared, capped", err: &dingtalk.Error{Code: 90002}, n: 15, limit: 10 * time.Minute, want: 10 * time.Minute},
		{name: "shared, huge attempt", err: &dingtalk.Error{Code: 90002}, n: 1000, limit: 10 * time.Minute, want: 10 * time.Minute},
		{name: "disabled: DingTalk's delay beats a smaller cap", err: &dingtalk.Error{Code: 90001}, n: 3, limit: time.Second, want: 2 * time.Minute},
		{name: "ip ban", err: &dingtalk.Error{IPBanned: true, Wait: 5 * time.Minute}, n: 3, limit: time.Second, want: 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := throttleWait(tt.err, tt.n, tt.limit); got != tt.want {
				t.Errorf("throttleWait: got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRetryDelay(t *testing.T) {
	delay := retryDelay(time.Second, time.Minute)
	tests := []struct {
		name     string
		n        int
		err      error
		min, max time.Duration
	}{
		{name: "transient, first retry", n: 0, err: errors.New("reset"), min: 500 * time.Millisecond, max: time.Second},
		{name: "transient, fourth retry", n: 3, err: errors.New("reset"), min: 4 * time.Second, max: 8 * time.Second},
		{name: "transient, capped", n: 30, err: errors.New("reset"), min: 30 * time.Second, max: time.Minute},
		{name: "throttled with its wait", n: 0, err: &throttledError{err: &dingtalk.Error{Code: 90002}, wait: 8 * time.Second},
			min: 8 * time.Second, max: 8*time.Second + 8*time.Second/5},
		{name: "throttled by DingTalk", n: 7, err: &dingtalk.Error{Code: 90018}, min: time.Second, max: 1200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 200 {
				if got := delay(tt.n, tt.err, nil); got < tt.min || got > tt.max {
					t.Fatalf("delay: got %v, want %v to %v", got, tt.min, tt.max)
				}
			}
		})
	}
}

func TestIsFailure(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "nil", err: nil, want: false},
		{name: "transient", err: &dingtalk.TransportError{Err: errors.New("reset")}, want: true},
		{name: "permanent", err: &dingtalk.Error{Code: 33012}, want: true},
		{name: "per app throttle", err: &dingtalk.Error{Code: 90018}, want: false},
		{name: "throttled, waited", err: &throttledError{err: &dingtalk.Error{Code: 90002}, wait: time.Second}, want: false},
		{name: "ip ban", err: &dingtalk.Error{IPBanned: true}, want: false},
		{name: "canceled", err: fmt.Errorf("send: %w", context.Canceled), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isFailure(tt.err); got != tt.want {
				t.Errorf("isFailure(%v): got %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
