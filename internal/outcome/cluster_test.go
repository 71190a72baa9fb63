package outcome_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dingq/dingq/internal/outcome"
	"github.com/dingq/dingq/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// TestStoreOnCluster runs every script and multi-key command of the store
// on a Redis Cluster of 3 masters, for records spread over its slots: a
// key of another slot in one of them fails it with CROSSSLOT.
func TestStoreOnCluster(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a Redis Cluster; skipped with -short")
	}
	c := redistest.StartCluster(t, 3)
	rdb := c.Client(t)
	s := outcome.NewStore(rdb, "test", time.Hour)
	ctx := context.Background()
	recip := func(batch string) []string { return ids(batch+"-u", 3) }

	for i := range 6 {
		id := fmt.Sprintf("single-%d", i)
		if got, dup, err := s.Reserve(ctx, "app1", "idem-"+id, id); err != nil || dup || got != id {
			t.Fatalf("Reserve(%s): %v %v %v", id, got, dup, err)
		}
		create(t, s, id)
		apply(t, s, id, outcome.Transition{To: outcome.StatusSending, NewAttempt: true,
			Attempt: &outcome.Attempt{N: 1, Result: outcome.StatusSending}})
		if o := get(t, s, id); o.Attempts != 1 || len(o.History) != 1 {
			t.Errorf("%s: %d attempts, %d history entries; want 1 and 1", id, o.Attempts, len(o.History))
		}
		if err := s.Delete(ctx, id); err != nil {
			t.Fatalf("Delete(%s): %v", id, err)
		}
	}

	for i := range 4 {
		id := fmt.Sprintf("bcast-%d", i)
		createBroadcast(t, s, id, 3)
		// b1 is sent, its results recorded with a resend of one recipient.
		begin(t, s, id, "b1", recip("b1"), "p1", outcome.BatchGo)
		end(t, s, id, "b1", outcome.BatchEnd{To: outcome.StatusSent, TaskID: 100 + int64(i), Recipients: recip("b1")})
		if a, in, ok, err := s.SentBatch(ctx, id, "b1"); err != nil || !ok || in || a.TaskID != 100+int64(i) {
			t.Fatalf("SentBatch(%s, b1): %+v %v %v %v", id, a, in, ok, err)
		}
		record(t, s, id, "b1", outcome.BatchResults{Invalid: recip("b1")[:1], Read: recip("b1")[1:2],
			Forbidden: []outcome.Forbidden{{UserID: recip("b1")[2], Code: "143106"}}, Resend: "b1r", ResendCount: 1}, true)
		// b2 is refused: its recipients are listed rejected.
		begin(t, s, id, "b2", recip("b2"), "p2", outcome.BatchGo)
		end(t, s, id, "b2", outcome.BatchEnd{To: outcome.StatusFailed, Recipients: recip("b2"),
			Err: &outcome.ErrorInfo{Code: 40035, Class: "permanent", Message: "bad"}})
		// b3 is parked by a pause, then resumed, unparked and sent.
		if _, err := s.Pause(ctx, id); err != nil {
			t.Fatalf("Pause(%s): %v", id, err)
		}
		begin(t, s, id, "b3", recip("b3"), "p3", outcome.BatchParked)
		parked, err := s.Resume(ctx, id)
		if err != nil || len(parked) != 1 || parked[0].Batch != "b3" {
			t.Fatalf("Resume(%s): %+v %v", id, parked, err)
		}
		if err := s.Unpark(ctx, id, parked[0]); err != nil {
			t.Fatalf("Unpark(%s): %v", id, err)
		}
		begin(t, s, id, "b3", recip("b3"), "p3", outcome.BatchGo)
		end(t, s, id, "b3", outcome.BatchEnd{To: outcome.StatusSent, TaskID: 200, Recipients: recip("b3")})
		if err := s.MarkRecalled(ctx, id, "b3", false); err != nil {
			t.Fatalf("MarkRecalled(%s): %v", id, err)
		}
		if acc, err := s.AcceptedBatches(ctx, id); err != nil || len(acc) != 2 {
			t.Fatalf("AcceptedBatches(%s): %+v %v", id, acc, err)
		}
		// The resend is canceled with the broadcast, parked batch and all.
		if _, err := s.Pause(ctx, id); err != nil {
			t.Fatalf("Pause(%s): %v", id, err)
		}
		begin(t, s, id, "b1r", recip("b1")[2:], "p1r", outcome.BatchParked)
		if _, err := s.Cancel(ctx, id, time.Second, func([]byte) []string { return recip("b1")[2:] }); err != nil {
			t.Fatalf("Cancel(%s): %v", id, err)
		}
		if got := recipients(t, s, id, outcome.ResultCanceled); len(got) != 1 {
			t.Errorf("%s: canceled recipients %v, want 1", id, got)
		}
		if got := recipients(t, s, id, outcome.ResultRejected); len(got) != 3 {
			t.Errorf("%s: rejected recipients %v, want 3", id, got)
		}
		o := bcast(t, s, id)
		if b := o.Broadcast.Batches; b.Sent != 2 || b.Failed != 1 || b.Canceled != 1 || b.Total != 4 {
			t.Errorf("%s: batches %+v, want 2 sent, 1 failed, 1 canceled of 4", id, b)
		}
	}

	// The broadcasts were spread over the cluster, so the test tested what
	// it says.
	var holding int
	for _, addr := range c.Addrs {
		node := redis.NewClient(&redis.Options{Addr: addr})
		keys, err := node.Keys(ctx, "test:msg:{bcast-*").Result()
		node.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) > 0 {
			holding++
		}
	}
	if holding < 2 {
		t.Errorf("masters holding keys: got %d, want at least 2 of 3", holding)
	}
}
