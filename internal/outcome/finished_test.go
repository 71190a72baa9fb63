package outcome_test

import (
	"context"
	"testing"
	"time"

	"github.com/dingq/dingq/internal/outcome"
)

// TestClaimFinished: a broadcast's finish is claimed once, and only once
// it finished; a single message never.
func TestClaimFinished(t *testing.T) {
	s, _, _ := setup(t)
	ctx := context.Background()
	claim := func(id string, want outcome.Status, wantOK bool) {
		t.Helper()
		st, ok, err := s.ClaimFinished(ctx, id)
		if err != nil || st != want || ok != wantOK {
			t.Errorf("ClaimFinished(%s): got %q %v %v, want %q %v", id, st, ok, err, want, wantOK)
		}
	}

	createBroadcast(t, s, "done", 2)
	begin(t, s, "done", "0", ids("u", 3), "", outcome.BatchGo)
	end(t, s, "done", "0", outcome.BatchEnd{To: outcome.StatusFailed, Recipients: ids("u", 3)})
	claim("done", "", false) // batch 1 still queued
	begin(t, s, "done", "1", ids("v", 3), "", outcome.BatchGo)
	end(t, s, "done", "1", outcome.BatchEnd{To: outcome.StatusSent, TaskID: 7, Recipients: ids("v", 3)})
	claim("done", "", false) // its results are pending
	record(t, s, "done", "1", outcome.BatchResults{Read: ids("v", 3)}, true)
	claim("done", outcome.StatusDone, true)
	claim("done", "", false)

	createBroadcast(t, s, "canceled", 1)
	if _, err := s.Cancel(ctx, "canceled", time.Second, nil); err != nil {
		t.Fatal(err)
	}
	claim("canceled", "", false) // its batch is still in the queue
	begin(t, s, "canceled", "0", ids("u", 3), "", outcome.BatchCanceled)
	claim("canceled", outcome.StatusCanceled, true)
	claim("canceled", "", false)

	create(t, s, "single")
	claim("single", "", false)
	claim("missing", "", false)
}
