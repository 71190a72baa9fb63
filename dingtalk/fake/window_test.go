package fake

import (
	"testing"
	"time"
)

func TestWindow(t *testing.T) {
	tests := []struct {
		name  string
		span  time.Duration
		step  time.Duration
		n     int // events added, one a step, weight 2 each
		limit int // the most events the window may hold at once
	}{
		{name: "1s of 1ms steps", span: time.Second, step: time.Millisecond, n: 10000, limit: 2 * 1000},
		{name: "steps as long as the span", span: time.Second, step: time.Second, n: 100, limit: 2},
		{name: "one instant", span: time.Minute, n: 500, limit: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &window{span: tt.span}
			now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
			for i := range tt.n {
				if i > 0 {
					now = now.Add(tt.step)
				}
				w.total(now)
				w.add(now, 2)
				inWindow := tt.n
				if tt.step > 0 {
					inWindow = min(i+1, int(tt.span/tt.step))
				}
				if got, want := w.total(now), 2*min(i+1, inWindow); got != want {
					t.Fatalf("event %d: total = %d, want %d", i, got, want)
				}
				if got := len(w.events); got > tt.limit {
					t.Fatalf("event %d: %d events held, want at most %d", i, got, tt.limit)
				}
			}
			if got := w.total(now.Add(tt.span)); got != 0 || len(w.events) != 0 {
				t.Errorf("a span later: total %d with %d events held, want 0 and none", got, len(w.events))
			}
		})
	}
}
