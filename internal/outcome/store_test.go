package outcome_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/dingq/dingq/internal/outcome"
)

// testRetention is the retention of the stores under test.
const testRetention = time.Hour

// clock is a settable clock safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// setup returns a store on a fresh miniredis, the miniredis and the store's
// clock, which starts at a whole millisecond.
func setup(t *testing.T) (*outcome.Store, *miniredis.Miniredis, *clock) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	s := outcome.NewStore(rdb, "test", testRetention)
	c := &clock{t: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)}
	s.SetClock(c.Now)
	return s, mr, c
}

// create creates a plain record for id or fails the test.
func create(t *testing.T, s *outcome.Store, id string) {
	t.Helper()
	ok, err := s.Create(context.Background(), &outcome.Outcome{ID: id, App: "app1", Recipients: 2}, "fp-"+id)
	if err != nil {
		t.Fatalf("Create(%s): %v", id, err)
	}
	if !ok {
		t.Fatalf("Create(%s): got false, want true", id)
	}
}

// get reads id's record or fails the test.
func get(t *testing.T, s *outcome.Store, id string) *outcome.Outcome {
	t.Helper()
	o, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return o
}

// apply applies tr to id or fails the test, and returns the attempt count.
func apply(t *testing.T, s *outcome.Store, id string, tr outcome.Transition) int {
	t.Helper()
	n, err := s.Apply(context.Background(), id, tr)
	if err != nil {
		t.Fatalf("Apply(%s, %s): %v", id, tr.To, err)
	}
	return n
}

func TestCreateGet(t *testing.T) {
	s, _, c := setup(t)
	ctx := context.Background()
	created := c.Now()
	sendAt := created.Add(90 * time.Minute)

	ok, err := s.Create(ctx, &outcome.Outcome{ID: "m1", App: "app1", Recipients: 7, SendAt: sendAt}, "fp1")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if ok != true {
		t.Errorf("Create: got %v, want %v", ok, true)
	}
	o := get(t, s, "m1")

	if got, want := o.ID, "m1"; got != want {
		t.Errorf("ID: got %v, want %v", got, want)
	}
	if got, want := o.App, "app1"; got != want {
		t.Errorf("App: got %v, want %v", got, want)
	}
	if got, want := o.Status, outcome.StatusQueued; got != want {
		t.Errorf("Status: got %v, want %v", got, want)
	}
	if got, want := o.Recipients, 7; got != want {
		t.Errorf("Recipients: got %v, want %v", got, want)
	}
	if got, want := o.Attempts, 0; got != want {
		t.Errorf("Attempts: got %v, want %v", got, want)
	}
	if got, want := o.TaskID, int64(0); got != want {
		t.Errorf("TaskID: got %v, want %v", got, want)
	}
	if got, want := o.RequestID, ""; got != want {
		t.Errorf("RequestID: got %v, want %v", got, want)
	}
	if got, want := o.SendAt.Equal(sendAt), true; got != want {
		t.Errorf("SendAt: got %v, want %v", o.SendAt, sendAt)
	}
	if got, want := o.CreatedAt.Equal(created), true; got != want {
		t.Errorf("CreatedAt: got %v, want %v", o.CreatedAt, created)
	}
	if got, want := o.UpdatedAt.Equal(created), true; got != want {
		t.Errorf("UpdatedAt: got %v, want %v", o.UpdatedAt, created)
	}
	if got, want := o.LastError == nil, true; got != want {
		t.Errorf("LastError: got %v, want nil", o.LastError)
	}
	if got, want := len(o.History), 0; got != want {
		t.Errorf("len(History): got %v, want %v", got, want)
	}
	fp, err := s.Fingerprint(ctx, "m1")
	if err != nil {
		t.Fatalf("Fingerprint: %v", err)
	}
	if got, want := fp, "fp1"; got != want {
		t.Errorf("Fingerprint: got %v, want %v", got, want)
	}
}

func TestCreateWithoutSendAt(t *testing.T) {
	s, _, _ := setup(t)
	create(t, s, "m1")
	o := get(t, s, "m1")
	if got, want := o.SendAt.IsZero(), true; got != want {
		t.Errorf("SendAt.IsZero: got %v, want %v (SendAt %v)", got, want, o.SendAt)
	}
}

func TestCreateTwice(t *testing.T) {
	s, _, c := setup(t)
	ctx := context.Background()
	created := c.Now()
	create(t, s, "m1")
	apply(t, s, "m1", outcome.Transition{To: outcome.StatusSending, NewAttempt: true})

	c.Add(time.Minute)
	ok, err := s.Create(ctx, &outcome.Outcome{ID: "m1", App: "other", Recipients: 99}, "fp-other")
	if err != nil {
		t.Fatalf("second Create: %v", err)
	}
	if got, want := ok, false; got != want {
		t.Errorf("second Create: got %v, want %v", got, want)
	}
	o := get(t, s, "m1")
	if got, want := o.App, "app1"; got != want {
		t.Errorf("App: got %v, want %v", got, want)
	}
	if got, want := o.Recipients, 2; got != want {
		t.Errorf("Recipients: got %v, want %v", got, want)
	}
	if got, want := o.Status, outcome.StatusSending; got != want {
		t.Errorf("Status: got %v, want %v", got, want)
	}
	if got, want := o.Attempts, 1; got != want {
		t.Errorf("Attempts: got %v, want %v", got, want)
	}
	if got, want := o.CreatedAt.Equal(created), true; got != want {
		t.Errorf("CreatedAt: got %v, want %v", o.CreatedAt, created)
	}
	fp, err := s.Fingerprint(ctx, "m1")
	if err != nil {
		t.Fatalf("Fingerprint: %v", err)
	}
	if got, want := fp, "fp-m1"; got != want {
		t.Errorf("Fingerprint: got %v, want %v", got, want)
	}
}

func TestNotFound(t *testing.T) {
	s, _, _ := setup(t)
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := s.Get(ctx, "nope"); return err }},
		{"Apply", func() error {
			_, err := s.Apply(ctx, "nope", outcome.Transition{To: outcome.StatusSending, NewAttempt: true,
				Attempt: &outcome.Attempt{N: 1, Result: outcome.StatusSending}})
			return err
		}},
		{"Fingerprint", func() error { _, err := s.Fingerprint(ctx, "nope"); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if got, want := errors.Is(err, outcome.ErrNotFound), true; got != want {
				t.Errorf("errors.Is(%v, ErrNotFound): got %v, want %v", err, got, want)
			}
		})
	}
	// Apply on a missing record must not create anything.
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, outcome.ErrNotFound) {
		t.Errorf("Get after Apply on missing: got %v, want %v", err, outcome.ErrNotFound)
	}
}

func TestReserve(t *testing.T) {
	s, _, _ := setup(t)
	ctx := context.Background()
	tests := []struct {
		name        string
		app, key    string
		id          string
		wantID      string
		wantExisted bool
	}{
		{name: "first binds", app: "app1", key: "k1", id: "m1", wantID: "m1", wantExisted: false},
		{name: "second returns first", app: "app1", key: "k1", id: "m2", wantID: "m1", wantExisted: true},
		{name: "same id again", app: "app1", key: "k1", id: "m1", wantID: "m1", wantExisted: true},
		{name: "other app same key", app: "app2", key: "k1", id: "m3", wantID: "m3", wantExisted: false},
		{name: "other app again", app: "app2", key: "k1", id: "m4", wantID: "m3", wantExisted: true},
		{name: "same app other key", app: "app1", key: "k2", id: "m5", wantID: "m5", wantExisted: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, existed, err := s.Reserve(ctx, tt.app, tt.key, tt.id)
			if err != nil {
				t.Fatalf("Reserve: %v", err)
			}
			if id != tt.wantID {
				t.Errorf("id: got %v, want %v", id, tt.wantID)
			}
			if existed != tt.wantExisted {
				t.Errorf("existed: got %v, want %v", existed, tt.wantExisted)
			}
		})
	}
}

func TestReserveTTL(t *testing.T) {
	s, mr, _ := setup(t)
	ctx := context.Background()
	if _, _, err := s.Reserve(ctx, "app1", "k1", "m1"); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if got, want := mr.TTL(s.Keys().Idempotency("app1", "k1")), testRetention; got != want {
		t.Errorf("TTL: got %v, want %v", got, want)
	}
	mr.FastForward(testRetention)
	id, existed, err := s.Reserve(ctx, "app1", "k1", "m2")
	if err != nil {
		t.Fatalf("Reserve after retention: %v", err)
	}
	if id != "m2" || existed {
		t.Errorf("Reserve after retention: got (%v, %v), want (%v, %v)", id, existed, "m2", false)
	}
}

func TestApplyAttempts(t *testing.T) {
	s, _, _ := setup(t)
	create(t, s, "m1")
	tests := []struct {
		name string
		tr   outcome.Transition
		want int
	}{
		{"first attempt", outcome.Transition{To: outcome.StatusSending, NewAttempt: true}, 1},
		{"retrying keeps count", outcome.Transition{To: outcome.StatusRetrying}, 1},
		{"second attempt", outcome.Transition{To: outcome.StatusSending, NewAttempt: true}, 2},
		{"queued keeps count", outcome.Transition{To: outcome.StatusQueued}, 2},
		{"third attempt", outcome.Transition{To: outcome.StatusSending, NewAttempt: true}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := apply(t, s, "m1", tt.tr); got != tt.want {
				t.Errorf("Apply count: got %v, want %v", got, tt.want)
			}
			o := get(t, s, "m1")
			if o.Attempts != tt.want {
				t.Errorf("Attempts: got %v, want %v", o.Attempts, tt.want)
			}
			if o.Status != tt.tr.To {
				t.Errorf("Status: got %v, want %v", o.Status, tt.tr.To)
			}
		})
	}
}

func TestApplySent(t *testing.T) {
	s, _, c := setup(t)
	create(t, s, "m1")
	c.Add(time.Second)
	apply(t, s, "m1", outcome.Transition{To: outcome.StatusSending, NewAttempt: true})
	c.Add(time.Second)
	sentAt := c.Now()
	apply(t, s, "m1", outcome.Transition{To: outcome.StatusSent, TaskID: 123456789012, RequestID: "req-1",
		Attempt: &outcome.Attempt{N: 1, Result: outcome.StatusSent, RequestID: "req-1"}})

	o := get(t, s, "m1")
	if got, want := o.Status, outcome.StatusSent; got != want {
		t.Errorf("Status: got %v, want %v", got, want)
	}
	if got, want := o.TaskID, int64(123456789012); got != want {
		t.Errorf("TaskID: got %v, want %v", got, want)
	}
	if got, want := o.RequestID, "req-1"; got != want {
		t.Errorf("RequestID: got %v, want %v", got, want)
	}
	if got, want := o.Attempts, 1; got != want {
		t.Errorf("Attempts: got %v, want %v", got, want)
	}
	if got, want := o.UpdatedAt.Equal(sentAt), true; got != want {
		t.Errorf("UpdatedAt: got %v, want %v", o.UpdatedAt, sentAt)
	}
	if got, want := len(o.History), 1; got != want {
		t.Fatalf("len(History): got %v, want %v", got, want)
	}
	h := o.History[0]
	if got, want := h.N, 1; got != want {
		t.Errorf("History[0].N: got %v, want %v", got, want)
	}
	if got, want := h.Result, outcome.StatusSent; got != want {
		t.Errorf("History[0].Result: got %v, want %v", got, want)
	}
	if got, want := h.RequestID, "req-1"; got != want {
		t.Errorf("History[0].RequestID: got %v, want %v", got, want)
	}
	if got, want := h.At.Equal(sentAt), true; got != want {
		t.Errorf("History[0].At: got %v, want %v", h.At, sentAt)
	}
}

func TestApplyKeepsGivenAttemptTime(t *testing.T) {
	s, _, c := setup(t)
	create(t, s, "m1")
	at := c.Now().Add(-time.Minute)
	apply(t, s, "m1", outcome.Transition{To: outcome.StatusSending, NewAttempt: true,
		Attempt: &outcome.Attempt{N: 1, At: at, Result: outcome.StatusSending}})
	o := get(t, s, "m1")
	if got, want := len(o.History), 1; got != want {
		t.Fatalf("len(History): got %v, want %v", got, want)
	}
	if got, want := o.History[0].At.Equal(at), true; got != want {
		t.Errorf("History[0].At: got %v, want %v", o.History[0].At, at)
	}
}

func TestApplyLastError(t *testing.T) {
	s, _, _ := setup(t)
	create(t, s, "m1")
	e1 := &outcome.ErrorInfo{Code: 90018, Class: "throttled", Message: "too fast"}
	apply(t, s, "m1", outcome.Transition{To: outcome.StatusRetrying, NewAttempt: true, Err: e1,
		Attempt: &outcome.Attempt{N: 1, Result: outcome.StatusRetrying, Error: e1}})

	o := get(t, s, "m1")
	if o.LastError == nil {
		t.Fatalf("LastError: got nil, want %+v", e1)
	}
	if got, want := *o.LastError, *e1; got != want {
		t.Errorf("LastError: got %+v, want %+v", got, want)
	}
	if got, want := len(o.History), 1; got != want {
		t.Fatalf("len(History): got %v, want %v", got, want)
	}
	if o.History[0].Error == nil {
		t.Fatalf("History[0].Error: got nil, want %+v", e1)
	}
	if got, want := *o.History[0].Error, *e1; got != want {
		t.Errorf("History[0].Error: got %+v, want %+v", got, want)
	}

	// A later success keeps the last error, and a later error replaces it.
	e2 := &outcome.ErrorInfo{Code: 88, SubCode: "40014", Class: "token_invalid", Message: "bad token"}
	apply(t, s, "m1", outcome.Transition{To: outcome.StatusRetrying, NewAttempt: true, Err: e2})
	apply(t, s, "m1", outcome.Transition{To: outcome.StatusSent, NewAttempt: true, TaskID: 1})
	o = get(t, s, "m1")
	if o.LastError == nil {
		t.Fatalf("LastError after success: got nil, want %+v", e2)
	}
	if got, want := *o.LastError, *e2; got != want {
		t.Errorf("LastError after success: got %+v, want %+v", got, want)
	}
}

func TestApplyTerminal(t *testing.T) {
	tests := []struct {
		name  string
		final outcome.Transition
	}{
		{"sent", outcome.Transition{To: outcome.StatusSent, TaskID: 42, RequestID: "req-ok"}},
		{"failed", outcome.Transition{To: outcome.StatusFailed,
			Err: &outcome.ErrorInfo{Code: 40056, Class: "permanent", Message: "bad agent"}}},
		{"canceled", outcome.Transition{To: outcome.StatusCanceled}},
	}
	later := []outcome.Transition{
		{To: outcome.StatusSending, NewAttempt: true},
		{To: outcome.StatusRetrying, NewAttempt: true, Err: &outcome.ErrorInfo{Class: "transient", Message: "later"}},
		{To: outcome.StatusSent, TaskID: 99, RequestID: "req-later",
			Attempt: &outcome.Attempt{N: 9, Result: outcome.StatusSent}},
		{To: outcome.StatusFailed, Err: &outcome.ErrorInfo{Class: "permanent", Message: "later"}},
		{To: outcome.StatusCanceled},
		{To: outcome.StatusQueued},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, c := setup(t)
			ctx := context.Background()
			create(t, s, "m1")
			apply(t, s, "m1", outcome.Transition{To: outcome.StatusSending, NewAttempt: true,
				Attempt: &outcome.Attempt{N: 1, Result: outcome.StatusSending}})
			apply(t, s, "m1", tt.final)
			before := get(t, s, "m1")

			for _, tr := range later {
				c.Add(time.Second)
				n, err := s.Apply(ctx, "m1", tr)
				if got, want := errors.Is(err, outcome.ErrTerminal), true; got != want {
					t.Errorf("Apply(%s): errors.Is(%v, ErrTerminal): got %v, want %v", tr.To, err, got, want)
				}
				var te *outcome.TerminalError
				if !errors.As(err, &te) {
					t.Errorf("Apply(%s): errors.As(%v, *TerminalError): got false, want true", tr.To, err)
				} else if te.Status != tt.final.To {
					t.Errorf("Apply(%s): TerminalError.Status: got %v, want %v", tr.To, te.Status, tt.final.To)
				}
				if n != 0 {
					t.Errorf("Apply(%s): count: got %v, want %v", tr.To, n, 0)
				}
			}

			after := get(t, s, "m1")
			if after.Status != before.Status {
				t.Errorf("Status: got %v, want %v", after.Status, before.Status)
			}
			if after.Attempts != before.Attempts {
				t.Errorf("Attempts: got %v, want %v", after.Attempts, before.Attempts)
			}
			if after.TaskID != before.TaskID {
				t.Errorf("TaskID: got %v, want %v", after.TaskID, before.TaskID)
			}
			if after.RequestID != before.RequestID {
				t.Errorf("RequestID: got %v, want %v", after.RequestID, before.RequestID)
			}
			if !after.UpdatedAt.Equal(before.UpdatedAt) {
				t.Errorf("UpdatedAt: got %v, want %v", after.UpdatedAt, before.UpdatedAt)
			}
			if (after.LastError == nil) != (before.LastError == nil) ||
				(after.LastError != nil && *after.LastError != *before.LastError) {
				t.Errorf("LastError: got %+v, want %+v", after.LastError, before.LastError)
			}
			if len(after.History) != len(before.History) {
				t.Errorf("len(History): got %v, want %v", len(after.History), len(before.History))
			}
		})
	}
}

func TestHistoryCapped(t *testing.T) {
	s, _, _ := setup(t)
	create(t, s, "m1")
	total := outcome.MaxHistory + 5
	for i := 1; i <= total; i++ {
		apply(t, s, "m1", outcome.Transition{To: outcome.StatusRetrying, NewAttempt: true,
			Attempt: &outcome.Attempt{N: i, Result: outcome.StatusRetrying}})
	}
	o := get(t, s, "m1")
	if got, want := o.Attempts, total; got != want {
		t.Errorf("Attempts: got %v, want %v", got, want)
	}
	if got, want := len(o.History), outcome.MaxHistory; got != want {
		t.Fatalf("len(History): got %v, want %v", got, want)
	}
	if got, want := o.History[0].N, total-outcome.MaxHistory+1; got != want {
		t.Errorf("History[0].N: got %v, want %v", got, want)
	}
	if got, want := o.History[len(o.History)-1].N, total; got != want {
		t.Errorf("last History.N: got %v, want %v", got, want)
	}
}

func TestRetentionTTL(t *testing.T) {
	s, mr, _ := setup(t)
	create(t, s, "m1")
	k := s.Keys()
	if got, want := mr.TTL(k.Outcome("m1")), testRetention; got != want {
		t.Errorf("record TTL after Create: got %v, want %v", got, want)
	}
	mr.FastForward(10 * time.Minute)
	apply(t, s, "m1", outcome.Transition{To: outcome.StatusSending, NewAttempt: true,
		Attempt: &outcome.Attempt{N: 1, Result: outcome.StatusSending}})
	tests := []struct {
		name string
		key  string
	}{
		{"record", k.Outcome("m1")},
		{"history", k.History("m1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := mr.TTL(tt.key), testRetention; got != want {
				t.Errorf("TTL after Apply: got %v, want %v", got, want)
			}
		})
	}
}

func TestRetentionExpires(t *testing.T) {
	s, mr, _ := setup(t)
	ctx := context.Background()
	create(t, s, "idle")
	apply(t, s, "idle", outcome.Transition{To: outcome.StatusSending, NewAttempt: true,
		Attempt: &outcome.Attempt{N: 1, Result: outcome.StatusSending}})
	create(t, s, "busy")
	apply(t, s, "busy", outcome.Transition{To: outcome.StatusSending, NewAttempt: true,
		Attempt: &outcome.Attempt{N: 1, Result: outcome.StatusSending}})

	mr.FastForward(testRetention * 2 / 3)
	apply(t, s, "busy", outcome.Transition{To: outcome.StatusRetrying,
		Attempt: &outcome.Attempt{N: 1, Result: outcome.StatusRetrying}})
	mr.FastForward(testRetention * 2 / 3)

	if _, err := s.Get(ctx, "idle"); !errors.Is(err, outcome.ErrNotFound) {
		t.Errorf("Get(idle) after retention: got %v, want %v", err, outcome.ErrNotFound)
	}
	if got, want := mr.Exists(s.Keys().History("idle")), false; got != want {
		t.Errorf("history of idle exists: got %v, want %v", got, want)
	}
	o := get(t, s, "busy")
	if got, want := o.Status, outcome.StatusRetrying; got != want {
		t.Errorf("Status of busy: got %v, want %v", got, want)
	}
	if got, want := len(o.History), 2; got != want {
		t.Errorf("len(History) of busy: got %v, want %v", got, want)
	}

	mr.FastForward(testRetention / 3)
	if _, err := s.Get(ctx, "busy"); !errors.Is(err, outcome.ErrNotFound) {
		t.Errorf("Get(busy) after retention without updates: got %v, want %v", err, outcome.ErrNotFound)
	}
}

// TestRetentionHistoryRefreshedWithoutAttempt: an update that adds no
// history entry must still keep the history as long as the record, or a
// record that survives shows Attempts with an empty history.
func TestRetentionHistoryRefreshedWithoutAttempt(t *testing.T) {
	s, mr, _ := setup(t)
	create(t, s, "m1")
	apply(t, s, "m1", outcome.Transition{To: outcome.StatusSending, NewAttempt: true,
		Attempt: &outcome.Attempt{N: 1, Result: outcome.StatusSending}})
	mr.FastForward(testRetention * 2 / 3)
	apply(t, s, "m1", outcome.Transition{To: outcome.StatusRetrying,
		Err: &outcome.ErrorInfo{Class: "transient", Message: "timeout"}})
	if got, want := mr.TTL(s.Keys().History("m1")), testRetention; got != want {
		t.Errorf("history TTL after Apply without Attempt: got %v, want %v", got, want)
	}
	mr.FastForward(testRetention * 2 / 3)

	o := get(t, s, "m1")
	if got, want := o.Attempts, 1; got != want {
		t.Errorf("Attempts: got %v, want %v", got, want)
	}
	if got, want := len(o.History), 1; got != want {
		t.Errorf("len(History): got %v, want %v", got, want)
	}
}

// hashTag returns the part of key Redis Cluster hashes: what is between the
// first '{' and the next '}', if not empty; else the whole key.
func hashTag(key string) string {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return key
	}
	j := strings.IndexByte(key[i+1:], '}')
	if j <= 0 {
		return key
	}
	return key[i+1 : i+1+j]
}

func TestKeysShareHashTag(t *testing.T) {
	tests := []struct {
		name   string
		prefix string
		id     string
	}{
		{"default prefix", "", "0195a7f0-7c1e-7d3a-9c4e-2b1f0a6d5e4c"},
		{"custom prefix", "p", "m1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := outcome.NewKeys(tt.prefix)
			rec, hist := k.Outcome(tt.id), k.History(tt.id)
			if got, want := strings.Contains(rec, "{"+tt.id+"}"), true; got != want {
				t.Errorf("record key %q contains {%s}: got %v, want %v", rec, tt.id, got, want)
			}
			if got, want := hashTag(rec), hashTag(hist); got != want {
				t.Errorf("hash tags of %q and %q: got %v, want %v", rec, hist, got, want)
			}
			if rec == hist {
				t.Errorf("record and history keys: got both %q, want different", rec)
			}
		})
	}
	if got, want := outcome.NewKeys("").Outcome("m1"), outcome.DefaultPrefix+":msg:{m1}"; got != want {
		t.Errorf("default record key: got %v, want %v", got, want)
	}
}

func TestDelete(t *testing.T) {
	s, mr, _ := setup(t)
	ctx := context.Background()
	create(t, s, "m1")
	create(t, s, "m2")
	apply(t, s, "m1", outcome.Transition{To: outcome.StatusSending, NewAttempt: true,
		Attempt: &outcome.Attempt{N: 1, Result: outcome.StatusSending}})
	if err := s.Delete(ctx, "m1"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	k := s.Keys()
	if got, want := mr.Exists(k.Outcome("m1")), false; got != want {
		t.Errorf("record exists: got %v, want %v", got, want)
	}
	if got, want := mr.Exists(k.History("m1")), false; got != want {
		t.Errorf("history exists: got %v, want %v", got, want)
	}
	if _, err := s.Get(ctx, "m1"); !errors.Is(err, outcome.ErrNotFound) {
		t.Errorf("Get after Delete: got %v, want %v", err, outcome.ErrNotFound)
	}
	if got, want := get(t, s, "m2").ID, "m2"; got != want {
		t.Errorf("other record: got %v, want %v", got, want)
	}
	if err := s.Delete(ctx, "never"); err != nil {
		t.Errorf("Delete of missing: got %v, want nil", err)
	}
}

func TestFingerprint(t *testing.T) {
	s, _, _ := setup(t)
	ctx := context.Background()
	tests := []struct {
		name string
		id   string
		fp   string
	}{
		{"hex", "m1", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		{"empty", "m2", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Create(ctx, &outcome.Outcome{ID: tt.id, App: "app1"}, tt.fp); err != nil {
				t.Fatalf("Create: %v", err)
			}
			got, err := s.Fingerprint(ctx, tt.id)
			if err != nil {
				t.Fatalf("Fingerprint: %v", err)
			}
			if got != tt.fp {
				t.Errorf("Fingerprint: got %v, want %v", got, tt.fp)
			}
		})
	}
}

func TestStatusTerminal(t *testing.T) {
	tests := []struct {
		name   string
		status outcome.Status
		want   bool
	}{
		{"queued", outcome.StatusQueued, false},
		{"sending", outcome.StatusSending, false},
		{"retrying", outcome.StatusRetrying, false},
		{"sent", outcome.StatusSent, true},
		{"failed", outcome.StatusFailed, true},
		{"canceled", outcome.StatusCanceled, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.status.Terminal(); got != tt.want {
				t.Errorf("Terminal: got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	s, _, _ := setup(t)
	ctx := context.Background()
	if _, err := s.Status(ctx, "missing"); !errors.Is(err, outcome.ErrNotFound) {
		t.Errorf("Status(missing): got %v, want %v", err, outcome.ErrNotFound)
	}
	create(t, s, "m1")
	if got, err := s.Status(ctx, "m1"); err != nil || got != outcome.StatusQueued {
		t.Errorf("Status(m1): got %v, %v; want %v", got, err, outcome.StatusQueued)
	}
	if _, err := s.Apply(ctx, "m1", outcome.Transition{To: outcome.StatusSent}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Status(ctx, "m1"); err != nil || got != outcome.StatusSent {
		t.Errorf("Status(m1) after Apply: got %v, %v; want %v", got, err, outcome.StatusSent)
	}
}
