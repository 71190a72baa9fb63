package outcome_test

import (
	"context"
	"strings"
	"testing"
	"time"

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
