package outcome_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dingq/dingq/internal/outcome"
)

// TestClaimFinished: a record's finish is claimed once, and only once it
// is final: a broadcast once it finished, a message or task once sent,
// failed or canceled. A claim repeated by its claimant (its answer lost)
// answers true again; another claimant's, false.
func TestClaimFinished(t *testing.T) {
	s, _, _ := setup(t)
	ctx := context.Background()
	claim := func(id, claimant string, want outcome.Status, wantOK bool) {
		t.Helper()
		st, ok, err := s.ClaimFinished(ctx, id, claimant)
		if err != nil || st != want || ok != wantOK {
			t.Errorf("ClaimFinished(%s, %s): got %q %v %v, want %q %v", id, claimant, st, ok, err, want, wantOK)
		}
	}

	createBroadcast(t, s, "done", 2)
	begin(t, s, "done", "0", ids("u", 3), "", outcome.BatchGo)
	end(t, s, "done", "0", outcome.BatchEnd{To: outcome.StatusFailed, Recipients: ids("u", 3)})
	claim("done", "a", "", false) // batch 1 still queued
	begin(t, s, "done", "1", ids("v", 3), "", outcome.BatchGo)
	end(t, s, "done", "1", outcome.BatchEnd{To: outcome.StatusSent, TaskID: 7, Recipients: ids("v", 3)})
	claim("done", "a", "", false) // its results are pending
	record(t, s, "done", "1", outcome.BatchResults{Read: ids("v", 3)}, true)
	claim("done", "a", outcome.StatusDone, true)
	claim("done", "b", "", false)
	claim("done", "a", outcome.StatusDone, true) // a's answer was lost: a asks again

	createBroadcast(t, s, "canceled", 1)
	if _, err := s.Cancel(ctx, "canceled", time.Second, nil); err != nil {
		t.Fatal(err)
	}
	claim("canceled", "a", "", false) // its batch is still in the queue
	begin(t, s, "canceled", "0", ids("u", 3), "", outcome.BatchCanceled)
	claim("canceled", "a", outcome.StatusCanceled, true)
	claim("canceled", "b", "", false)

	for _, st := range []outcome.Status{outcome.StatusSent, outcome.StatusFailed} {
		id := "single-" + string(st)
		create(t, s, id)
		claim(id, "a", "", false) // queued
		apply(t, s, id, outcome.Transition{To: outcome.StatusSending, NewAttempt: true})
		claim(id, "a", "", false)
		apply(t, s, id, outcome.Transition{To: outcome.StatusRetrying})
		claim(id, "a", "", false)
		apply(t, s, id, outcome.Transition{To: st})
		claim(id, "a", st, true)
		claim(id, "b", "", false)
	}
	create(t, s, "single-canceled")
	if _, err := s.Cancel(ctx, "single-canceled", 0, nil); err != nil {
		t.Fatal(err)
	}
	claim("single-canceled", "a", outcome.StatusCanceled, true)
	claim("single-canceled", "b", "", false)

	if _, err := s.CreateKind(ctx, &outcome.Outcome{ID: "session", App: "app1"}, "session.create"); err != nil {
		t.Fatal(err)
	}
	apply(t, s, "session", outcome.Transition{To: outcome.StatusSent})
	claim("session", "a", outcome.StatusSent, true)
	claim("session", "b", "", false)

	claim("missing", "a", "", false)
}

// TestTakeUncounted: the recipients of batches canceled outside a worker
// (by Cancel, of parked batches, or CancelBatch) are taken once; those of
// batches a worker canceled are the worker's to count, never taken.
func TestTakeUncounted(t *testing.T) {
	s, _, _ := setup(t)
	ctx := context.Background()
	take := func(want int) {
		t.Helper()
		if n, err := s.TakeUncounted(ctx, "b"); err != nil || n != want {
			t.Errorf("TakeUncounted: got %d %v, want %d", n, err, want)
		}
	}
	createBroadcast(t, s, "b", 4)
	take(0)
	if _, err := s.Pause(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	begin(t, s, "b", "0", nil, "a,b,c", outcome.BatchParked)
	begin(t, s, "b", "1", nil, "d,e", outcome.BatchParked)
	if _, err := s.Cancel(ctx, "b", 0, func(p []byte) []string { return strings.Split(string(p), ",") }); err != nil {
		t.Fatal(err)
	}
	take(5)
	take(0)
	begin(t, s, "b", "2", ids("w", 4), "", outcome.BatchCanceled) // a worker's: it counts them
	take(0)
	if ok, err := s.CancelBatch(ctx, "b", "3", ids("x", 7)); err != nil || !ok {
		t.Fatalf("CancelBatch: got %v %v, want true", ok, err)
	}
	if ok, err := s.CancelBatch(ctx, "b", "3", ids("x", 7)); err != nil || ok {
		t.Fatalf("CancelBatch again: got %v %v, want false", ok, err)
	}
	take(7)
	take(0)
	if o := bcast(t, s, "b"); !o.Broadcast.Finished || o.Broadcast.Recipients.Canceled != 16 {
		t.Errorf("finished/canceled: got %v/%d, want true/16", o.Broadcast.Finished, o.Broadcast.Recipients.Canceled)
	}
}

// TestApplyAndClaim: the final transition and the claim of its count in
// one round trip answer as Apply and ClaimFinished would, also once Redis
// lost its scripts (SCRIPT FLUSH, as a restart does) and when the answer
// was lost and the call is made again with the same claimant.
func TestApplyAndClaim(t *testing.T) {
	s, mr, _ := setup(t)
	ctx := context.Background()
	create := func(id string) {
		t.Helper()
		if _, err := s.Create(ctx, &outcome.Outcome{ID: id, App: "hr", Recipients: 1}, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Apply(ctx, id, outcome.Transition{To: outcome.StatusSending, NewAttempt: true}); err != nil {
			t.Fatal(err)
		}
	}
	sent := outcome.Transition{To: outcome.StatusSent, TaskID: 7}
	tests := []struct {
		name        string
		flush       bool // Redis lost its scripts first
		claimant    string
		wantOK      bool
		wantTerminl bool
	}{
		{name: "first", claimant: "a", wantOK: true},
		{name: "again by the same claimant (its answer was lost)", claimant: "a", wantOK: true, wantTerminl: true},
		{name: "by another", claimant: "b", wantOK: false, wantTerminl: true},
		{name: "after SCRIPT FLUSH, same claimant", flush: true, claimant: "a", wantOK: true, wantTerminl: true},
	}
	create("m")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.flush {
				mr.FlushAll() // loses the record too: make it again, final
				create("m")
				if _, err := s.Apply(ctx, "m", sent); err != nil {
					t.Fatal(err)
				}
				if _, ok, err := s.ClaimFinished(ctx, "m", "a"); err != nil || !ok {
					t.Fatalf("claim: %v %v", ok, err)
				}
				rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
				defer rdb.Close()
				if err := rdb.ScriptFlush(ctx).Err(); err != nil {
					t.Fatal(err)
				}
			}
			_, st, ok, err := s.ApplyAndClaim(ctx, "m", sent, tt.claimant)
			if tt.wantTerminl != errors.Is(err, outcome.ErrTerminal) || (err != nil && !errors.Is(err, outcome.ErrTerminal)) {
				t.Fatalf("err = %v, want terminal %v", err, tt.wantTerminl)
			}
			if ok != tt.wantOK || (ok && st != outcome.StatusSent) {
				t.Errorf("claim = %q %v, want sent %v", st, ok, tt.wantOK)
			}
		})
	}
	o, err := s.Get(ctx, "m")
	if err != nil || o.Status != outcome.StatusSent || o.TaskID != 7 {
		t.Errorf("record: %+v %v, want sent with task 7", o, err)
	}
	if _, _, _, err := s.ApplyAndClaim(ctx, "missing", sent, "a"); !errors.Is(err, outcome.ErrNotFound) {
		t.Errorf("a missing record: %v, want ErrNotFound", err)
	}
}
