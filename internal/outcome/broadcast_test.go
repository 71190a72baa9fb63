package outcome_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dingq/dingq/internal/outcome"
)

// ids returns n recipient ids prefix0, prefix1…
func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// createBroadcast creates broadcast id of batches batches (100 recipients
// each) or fails the test.
func createBroadcast(t *testing.T, s *outcome.Store, id string, batches int) {
	t.Helper()
	ok, err := s.CreateBroadcast(context.Background(),
		&outcome.Outcome{ID: id, App: "app1", Recipients: 100 * batches}, "fp-"+id, batches, 3)
	if err != nil {
		t.Fatalf("CreateBroadcast(%s): %v", id, err)
	}
	if !ok {
		t.Fatalf("CreateBroadcast(%s): got false, want true", id)
	}
}

// begin runs BeginBatch and checks its verdict.
func begin(t *testing.T, s *outcome.Store, id, batch string, recipients []string, payload string, want outcome.BatchVerdict) {
	t.Helper()
	got, err := s.BeginBatch(context.Background(), id, batch, recipients, []byte(payload))
	if err != nil {
		t.Fatalf("BeginBatch(%s, %s): %v", id, batch, err)
	}
	if got != want {
		t.Fatalf("BeginBatch(%s, %s): got %v, want %v", id, batch, got, want)
	}
}

// end runs EndBatch or fails the test.
func end(t *testing.T, s *outcome.Store, id, batch string, e outcome.BatchEnd) {
	t.Helper()
	if _, err := s.EndBatch(context.Background(), id, batch, e); err != nil {
		t.Fatalf("EndBatch(%s, %s, %s): %v", id, batch, e.To, err)
	}
}

// record runs RecordResults and checks whether it recorded.
func record(t *testing.T, s *outcome.Store, id, batch string, r outcome.BatchResults, want bool) {
	t.Helper()
	got, err := s.RecordResults(context.Background(), id, batch, r)
	if err != nil {
		t.Fatalf("RecordResults(%s, %s): %v", id, batch, err)
	}
	if got != want {
		t.Fatalf("RecordResults(%s, %s): got %v, want %v", id, batch, got, want)
	}
}

// bcast reads id's record, checks it is a broadcast whose batch counts add
// up, and returns it.
func bcast(t *testing.T, s *outcome.Store, id string) *outcome.Outcome {
	t.Helper()
	o := get(t, s, id)
	if o.Broadcast == nil {
		t.Fatalf("Get(%s).Broadcast: got nil, want a broadcast", id)
	}
	b := o.Broadcast.Batches
	if sum := b.Queued + b.Sending + b.Sent + b.Failed + b.Canceled + b.Paused; sum != b.Total {
		t.Errorf("batch counts %+v: states sum to %d, want Total %d", b, sum, b.Total)
	}
	for _, n := range []int{b.Queued, b.Sending, b.Sent, b.Failed, b.Canceled, b.Paused} {
		if n < 0 {
			t.Errorf("batch counts %+v: got a negative count", b)
		}
	}
	return o
}

// batchState reads a batch's state letter or fails the test.
func batchState(t *testing.T, s *outcome.Store, id, batch string) string {
	t.Helper()
	_, st, err := s.BatchState(context.Background(), id, batch)
	if err != nil {
		t.Fatalf("BatchState(%s, %s): %v", id, batch, err)
	}
	return st
}

// recipients reads a whole recipient list (user ids only).
func recipients(t *testing.T, s *outcome.Store, id, result string) []string {
	t.Helper()
	items, total, err := s.Recipients(context.Background(), id, result, 0, 100000)
	if err != nil {
		t.Fatalf("Recipients(%s, %s): %v", id, result, err)
	}
	if int(total) != len(items) {
		t.Errorf("Recipients(%s, %s): total %d, items %d", id, result, total, len(items))
	}
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.UserID
	}
	return out
}

// TestBroadcastCounters walks a 5-batch broadcast through its life, checking
// after each step that the counters add up and say what happened.
func TestBroadcastCounters(t *testing.T) {
	s, _, c := setup(t)
	ctx := context.Background()
	const id = "b1"
	createBroadcast(t, s, id, 5)
	batch := func(i int) []string { return ids(fmt.Sprintf("b%d-u", i), 100) }
	sent := func(i int, task int64) outcome.BatchEnd {
		return outcome.BatchEnd{To: outcome.StatusSent, TaskID: task, Recipients: batch(i)}
	}
	var finishedAt time.Time

	steps := []struct {
		name         string
		do           func(t *testing.T)
		want         outcome.BatchCounts
		wantStatus   outcome.Status
		wantAccepted int
		wantRejected int
		wantPending  int
		wantFinished bool
	}{
		{name: "created", do: func(*testing.T) {},
			want: outcome.BatchCounts{Total: 5, Queued: 5}, wantStatus: outcome.StatusQueued},
		{name: "EndBatch of a queued batch changes nothing", do: func(t *testing.T) { end(t, s, id, "0", sent(0, 1)) },
			want: outcome.BatchCounts{Total: 5, Queued: 5}, wantStatus: outcome.StatusQueued},
		{name: "first go", do: func(t *testing.T) { begin(t, s, id, "0", batch(0), "", outcome.BatchGo) },
			want: outcome.BatchCounts{Total: 5, Queued: 4, Sending: 1}, wantStatus: outcome.StatusSending},
		{name: "batch 0 sent", do: func(t *testing.T) { end(t, s, id, "0", sent(0, 100)) },
			want:       outcome.BatchCounts{Total: 5, Queued: 4, Sent: 1},
			wantStatus: outcome.StatusSending, wantAccepted: 100, wantPending: 1},
		{name: "EndBatch of a sent batch changes nothing", do: func(t *testing.T) {
			end(t, s, id, "0", outcome.BatchEnd{To: outcome.StatusFailed, Recipients: batch(0)})
		},
			want:       outcome.BatchCounts{Total: 5, Queued: 4, Sent: 1},
			wantStatus: outcome.StatusSending, wantAccepted: 100, wantPending: 1},
		{name: "BeginBatch of a sent batch is final", do: func(t *testing.T) { begin(t, s, id, "0", batch(0), "", outcome.BatchFinal) },
			want:       outcome.BatchCounts{Total: 5, Queued: 4, Sent: 1},
			wantStatus: outcome.StatusSending, wantAccepted: 100, wantPending: 1},
		{name: "batch 1 fails", do: func(t *testing.T) {
			begin(t, s, id, "1", batch(1), "", outcome.BatchGo)
			end(t, s, id, "1", outcome.BatchEnd{To: outcome.StatusFailed, Recipients: batch(1),
				Err: &outcome.ErrorInfo{Code: 40035, Class: "permanent", Message: "bad"}})
		},
			want:       outcome.BatchCounts{Total: 5, Queued: 3, Sent: 1, Failed: 1},
			wantStatus: outcome.StatusSending, wantAccepted: 100, wantRejected: 100, wantPending: 1},
		{name: "BeginBatch of a failed batch is final", do: func(t *testing.T) { begin(t, s, id, "1", batch(1), "", outcome.BatchFinal) },
			want:       outcome.BatchCounts{Total: 5, Queued: 3, Sent: 1, Failed: 1},
			wantStatus: outcome.StatusSending, wantAccepted: 100, wantRejected: 100, wantPending: 1},
		{name: "batch 2 sending", do: func(t *testing.T) { begin(t, s, id, "2", batch(2), "", outcome.BatchGo) },
			want:       outcome.BatchCounts{Total: 5, Queued: 2, Sending: 1, Sent: 1, Failed: 1},
			wantStatus: outcome.StatusSending, wantAccepted: 100, wantRejected: 100, wantPending: 1},
		{name: "batch 2 retrying goes back to queued", do: func(t *testing.T) {
			end(t, s, id, "2", outcome.BatchEnd{To: outcome.StatusRetrying,
				Err: &outcome.ErrorInfo{Class: "transient", Message: "timeout"}})
		},
			want:       outcome.BatchCounts{Total: 5, Queued: 3, Sent: 1, Failed: 1},
			wantStatus: outcome.StatusSending, wantAccepted: 100, wantRejected: 100, wantPending: 1},
		{name: "EndBatch of a batch back in the queue changes nothing", do: func(t *testing.T) { end(t, s, id, "2", sent(2, 2)) },
			want:       outcome.BatchCounts{Total: 5, Queued: 3, Sent: 1, Failed: 1},
			wantStatus: outcome.StatusSending, wantAccepted: 100, wantRejected: 100, wantPending: 1},
		{name: "batches 2 3 4 sending at once", do: func(t *testing.T) {
			for _, b := range []int{2, 3, 4} {
				begin(t, s, id, fmt.Sprint(b), batch(b), "", outcome.BatchGo)
			}
		},
			want:       outcome.BatchCounts{Total: 5, Sending: 3, Sent: 1, Failed: 1},
			wantStatus: outcome.StatusSending, wantAccepted: 100, wantRejected: 100, wantPending: 1},
		{name: "batches 2 3 4 sent", do: func(t *testing.T) {
			for _, b := range []int{2, 3, 4} {
				end(t, s, id, fmt.Sprint(b), sent(b, int64(100+b)))
			}
		},
			want:       outcome.BatchCounts{Total: 5, Sent: 4, Failed: 1},
			wantStatus: outcome.StatusSending, wantAccepted: 400, wantRejected: 100, wantPending: 4},
		{name: "results of 0 2 3: one batch still pending", do: func(t *testing.T) {
			for _, b := range []string{"0", "2", "3"} {
				record(t, s, id, b, outcome.BatchResults{Read: batch(0)[:1]}, true)
			}
		},
			want:       outcome.BatchCounts{Total: 5, Sent: 4, Failed: 1},
			wantStatus: outcome.StatusSending, wantAccepted: 400, wantRejected: 100, wantPending: 1},
		{name: "results of the last batch: done", do: func(t *testing.T) {
			c.Add(time.Minute)
			finishedAt = c.Now()
			record(t, s, id, "4", outcome.BatchResults{Unread: batch(4)[:2]}, true)
		},
			want:       outcome.BatchCounts{Total: 5, Sent: 4, Failed: 1},
			wantStatus: outcome.StatusDone, wantAccepted: 400, wantRejected: 100, wantFinished: true},
		{name: "BeginBatch after done is final", do: func(t *testing.T) { begin(t, s, id, "4", batch(4), "", outcome.BatchFinal) },
			want:       outcome.BatchCounts{Total: 5, Sent: 4, Failed: 1},
			wantStatus: outcome.StatusDone, wantAccepted: 400, wantRejected: 100, wantFinished: true},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.do(t)
			o := bcast(t, s, id)
			b := o.Broadcast
			if b.Batches != st.want {
				t.Errorf("Batches: got %+v, want %+v", b.Batches, st.want)
			}
			if o.Status != st.wantStatus {
				t.Errorf("Status: got %v, want %v", o.Status, st.wantStatus)
			}
			if b.Recipients.Accepted != st.wantAccepted {
				t.Errorf("Recipients.Accepted: got %d, want %d", b.Recipients.Accepted, st.wantAccepted)
			}
			if b.Recipients.Rejected != st.wantRejected {
				t.Errorf("Recipients.Rejected: got %d, want %d", b.Recipients.Rejected, st.wantRejected)
			}
			if b.Recipients.Total != 500 || b.Recipients.Duplicates != 3 {
				t.Errorf("Recipients total/duplicates: got %d/%d, want 500/3", b.Recipients.Total, b.Recipients.Duplicates)
			}
			if b.Results.PendingBatches != st.wantPending {
				t.Errorf("Results.PendingBatches: got %d, want %d", b.Results.PendingBatches, st.wantPending)
			}
			if b.Finished != st.wantFinished {
				t.Errorf("Finished: got %v, want %v", b.Finished, st.wantFinished)
			}
			if got := !b.FinishedAt.IsZero(); got != st.wantFinished {
				t.Errorf("FinishedAt set: got %v (%v), want %v", got, b.FinishedAt, st.wantFinished)
			}
			if st.wantFinished && !b.FinishedAt.Equal(finishedAt) {
				t.Errorf("FinishedAt: got %v, want %v", b.FinishedAt, finishedAt)
			}
		})
	}

	o := bcast(t, s, id)
	if o.LastError == nil || o.LastError.Class != "transient" {
		t.Errorf("LastError: got %+v, want the retrying batch's transient error", o.LastError)
	}
	if got := recipients(t, s, id, outcome.ResultRejected); !slices.Equal(got, batch(1)) {
		t.Errorf("rejected recipients: got %d ids, want batch 1's 100", len(got))
	}
	if r := o.Broadcast.Results; r.Read != 3 || r.Unread != 2 {
		t.Errorf("Results read/unread: got %d/%d, want 3/2", r.Read, r.Unread)
	}
	if _, err := s.BeginBatch(ctx, "missing", "0", nil, nil); !errors.Is(err, outcome.ErrNotFound) {
		t.Errorf("BeginBatch(missing): got %v, want %v", err, outcome.ErrNotFound)
	}
	if _, _, err := s.BatchState(ctx, "missing", "0"); !errors.Is(err, outcome.ErrNotFound) {
		t.Errorf("BatchState(missing): got %v, want %v", err, outcome.ErrNotFound)
	}
	if _, err := s.EndBatch(ctx, id, "0", outcome.BatchEnd{To: outcome.StatusCanceled}); err == nil {
		t.Errorf("EndBatch to canceled: got nil, want an error")
	}
}

// TestBroadcastLastBatchFailsIsDone: a broadcast whose last batch fails has
// no results to wait for.
func TestBroadcastLastBatchFailsIsDone(t *testing.T) {
	s, _, _ := setup(t)
	createBroadcast(t, s, "b1", 1)
	begin(t, s, "b1", "0", ids("u", 3), "", outcome.BatchGo)
	end(t, s, "b1", "0", outcome.BatchEnd{To: outcome.StatusFailed, Recipients: ids("u", 3)})
	o := bcast(t, s, "b1")
	if o.Status != outcome.StatusDone || !o.Broadcast.Finished {
		t.Errorf("status/finished: got %v/%v, want done/true", o.Status, o.Broadcast.Finished)
	}
}

func TestRecordResults(t *testing.T) {
	s, _, _ := setup(t)
	ctx := context.Background()
	const id = "b1"
	createBroadcast(t, s, id, 2)
	begin(t, s, id, "0", ids("u", 100), "", outcome.BatchGo)
	end(t, s, id, "0", outcome.BatchEnd{To: outcome.StatusSent, TaskID: 7, Recipients: ids("u", 100)})

	res := outcome.BatchResults{
		Invalid: []string{"u0", "u1"},
		Forbidden: []outcome.Forbidden{{UserID: "u2", Code: "143105"}, {UserID: "u3", Code: "143105"},
			{UserID: "u4", Code: "143106"}},
		Failed:      []string{"u5"},
		Read:        []string{"u6", "u7", "u8"},
		Unread:      []string{"u9", "u10", "u11", "u12"},
		Unknown:     ids("u", 88)[13:], // named in no list: u13…u87
		Delivered:   []string{"u88", "u89"},
		Resend:      "0r", // u90…u99
		ResendCount: 10,
	}
	record(t, s, id, "0", res, true)
	first := bcast(t, s, id)
	b := first.Broadcast

	wantResults := outcome.ResultCounts{Invalid: 2, Forbidden: map[string]int{"143105": 2, "143106": 1},
		Failed: 1, Read: 3, Unread: 4, Unknown: 75, Delivered: 2}
	if !reflect.DeepEqual(b.Results, wantResults) {
		t.Errorf("Results: got %+v, want %+v", b.Results, wantResults)
	}
	if got := b.Results.ForbiddenTotal(); got != 3 {
		t.Errorf("ForbiddenTotal: got %d, want 3", got)
	}
	if want := (outcome.BatchCounts{Total: 3, Queued: 2, Sent: 1}); b.Batches != want {
		t.Errorf("Batches with the resend batch: got %+v, want %+v", b.Batches, want)
	}
	if b.Recipients.Resent != 10 {
		t.Errorf("Recipients.Resent: got %d, want 10", b.Recipients.Resent)
	}
	if got := batchState(t, s, id, "0r"); got != "q" {
		t.Errorf("BatchState(0r): got %q, want %q", got, "q")
	}
	if first.Status != outcome.StatusSending || b.Finished {
		t.Errorf("status/finished: got %v/%v, want sending/false", first.Status, b.Finished)
	}

	lists := []struct {
		result string
		want   []string
	}{
		{outcome.ResultInvalid, res.Invalid},
		{outcome.ResultForbidden, []string{"u2", "u3", "u4"}},
		{outcome.ResultFailed, res.Failed},
		{outcome.ResultRead, res.Read},
		{outcome.ResultUnread, res.Unread},
		{outcome.ResultUnknown, res.Unknown},
		{outcome.ResultDelivered, res.Delivered},
	}
	for _, l := range lists {
		if got := recipients(t, s, id, l.result); !slices.Equal(got, l.want) {
			t.Errorf("%s recipients: got %v, want %v", l.result, got, l.want)
		}
	}
	forbidden, _, err := s.Recipients(ctx, id, outcome.ResultForbidden, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(forbidden, res.Forbidden) {
		t.Errorf("forbidden recipients: got %+v, want %+v", forbidden, res.Forbidden)
	}

	// Recorded once: a second delivery of the results task changes nothing,
	// whatever it says, and adds no second resend batch.
	again := res
	again.Read = ids("x", 50)
	again.Resend, again.ResendCount = "0r", 99
	record(t, s, id, "0", again, false)
	record(t, s, id, "0", outcome.BatchResults{}, false)
	if got := bcast(t, s, id); !reflect.DeepEqual(got.Broadcast, first.Broadcast) {
		t.Errorf("after a second RecordResults: got %+v, want %+v", got.Broadcast, first.Broadcast)
	}
	if got := recipients(t, s, id, outcome.ResultRead); !slices.Equal(got, res.Read) {
		t.Errorf("read recipients after a second RecordResults: got %v, want %v", got, res.Read)
	}

	// The resend batch and batch 1 go through; once their results are in,
	// the broadcast is done.
	begin(t, s, id, "0r", ids("u", 10), "", outcome.BatchGo)
	end(t, s, id, "0r", outcome.BatchEnd{To: outcome.StatusSent, TaskID: 8, Recipients: ids("u", 10)})
	begin(t, s, id, "1", ids("v", 100), "", outcome.BatchGo)
	end(t, s, id, "1", outcome.BatchEnd{To: outcome.StatusSent, TaskID: 9, Recipients: ids("v", 100)})
	record(t, s, id, "0r", outcome.BatchResults{Read: ids("u", 10)}, true)
	if o := bcast(t, s, id); o.Status != outcome.StatusSending {
		t.Errorf("status with batch 1's results pending: got %v, want sending", o.Status)
	}
	record(t, s, id, "1", outcome.BatchResults{Unknown: ids("v", 100)}, true)
	o := bcast(t, s, id)
	if o.Status != outcome.StatusDone || !o.Broadcast.Finished {
		t.Errorf("status/finished: got %v/%v, want done/true", o.Status, o.Broadcast.Finished)
	}
	if want := (outcome.BatchCounts{Total: 3, Sent: 3}); o.Broadcast.Batches != want {
		t.Errorf("Batches: got %+v, want %+v", o.Broadcast.Batches, want)
	}
	// Accepted = results + resent.
	r := o.Broadcast.Results
	sum := r.Invalid + r.ForbiddenTotal() + r.Failed + r.Read + r.Unread + r.Delivered + r.Unknown + o.Broadcast.Recipients.Resent
	if sum != o.Broadcast.Recipients.Accepted {
		t.Errorf("results + resent: got %d, want Accepted %d", sum, o.Broadcast.Recipients.Accepted)
	}
}

func TestCancelQueuedBroadcast(t *testing.T) {
	s, _, c := setup(t)
	ctx := context.Background()
	const id = "b1"
	createBroadcast(t, s, id, 3)
	c.Add(time.Second)
	o, err := s.Cancel(ctx, id, time.Second, nil)
	if err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if o.Status != outcome.StatusCanceled {
		t.Errorf("Status: got %v, want %v", o.Status, outcome.StatusCanceled)
	}
	if !o.Broadcast.CanceledAt.Equal(c.Now()) {
		t.Errorf("CanceledAt: got %v, want %v", o.Broadcast.CanceledAt, c.Now())
	}
	if o.Broadcast.Finished {
		t.Errorf("Finished with batches still in the queue: got true, want false")
	}

	for i := range 3 {
		b := fmt.Sprint(i)
		begin(t, s, id, b, ids("b"+b+"-", 100), "", outcome.BatchCanceled)
		if got := batchState(t, s, id, b); got != "c" {
			t.Errorf("BatchState(%s): got %q, want c", b, got)
		}
	}
	begin(t, s, id, "0", ids("b0-", 100), "", outcome.BatchFinal)

	o = bcast(t, s, id)
	if want := (outcome.BatchCounts{Total: 3, Canceled: 3}); o.Broadcast.Batches != want {
		t.Errorf("Batches: got %+v, want %+v", o.Broadcast.Batches, want)
	}
	if o.Broadcast.Recipients.Canceled != 300 {
		t.Errorf("Recipients.Canceled: got %d, want 300", o.Broadcast.Recipients.Canceled)
	}
	if o.Status != outcome.StatusCanceled || !o.Broadcast.Finished {
		t.Errorf("status/finished: got %v/%v, want canceled/true", o.Status, o.Broadcast.Finished)
	}
	want := slices.Concat(ids("b0-", 100), ids("b1-", 100), ids("b2-", 100))
	if got := recipients(t, s, id, outcome.ResultCanceled); !slices.Equal(got, want) {
		t.Errorf("canceled recipients: got %d ids, want the 300 of the batches in order", len(got))
	}

	// Canceling again answers the record as it is.
	o2, err := s.Cancel(ctx, id, time.Second, nil)
	if err != nil {
		t.Fatalf("second Cancel: %v", err)
	}
	if o2.Status != outcome.StatusCanceled || o2.Broadcast.Batches != o.Broadcast.Batches {
		t.Errorf("second Cancel: got %v %+v, want canceled %+v", o2.Status, o2.Broadcast.Batches, o.Broadcast.Batches)
	}
}

// TestCancelWaitsForSendingBatch: Cancel returns only once the batch being
// sent ends, so that none goes out after it.
func TestCancelWaitsForSendingBatch(t *testing.T) {
	s, _, _ := setup(t)
	ctx := context.Background()
	const id = "b1"
	createBroadcast(t, s, id, 2)
	begin(t, s, id, "0", ids("u", 100), "", outcome.BatchGo)

	type result struct {
		o   *outcome.Outcome
		err error
		at  time.Time
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		o, err := s.Cancel(ctx, id, 2*time.Second, func([]byte) []string { return nil })
		done <- result{o, err, time.Now()}
	}()

	time.Sleep(200 * time.Millisecond)
	select {
	case r := <-done:
		t.Fatalf("Cancel returned after %v while a batch was sending: %+v, %v", r.at.Sub(start), r.o, r.err)
	default:
	}
	// A worker taking the other batch now finds the broadcast canceled.
	begin(t, s, id, "1", ids("v", 100), "", outcome.BatchCanceled)
	ended := time.Now()
	end(t, s, id, "0", outcome.BatchEnd{To: outcome.StatusSent, TaskID: 1, Recipients: ids("u", 100)})

	var r result
	select {
	case r = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Cancel did not return")
	}
	if r.err != nil {
		t.Fatalf("Cancel: %v", r.err)
	}
	if r.at.Before(ended) {
		t.Errorf("Cancel returned %v before the batch ended", ended.Sub(r.at))
	}
	if took := r.at.Sub(start); took >= 2*time.Second {
		t.Errorf("Cancel took %v, want it back soon after the batch ended (~200ms), before its 2s wait", took)
	}
	if want := (outcome.BatchCounts{Total: 2, Sent: 1, Canceled: 1}); r.o.Broadcast.Batches != want {
		t.Errorf("Batches: got %+v, want %+v", r.o.Broadcast.Batches, want)
	}
	if r.o.Status != outcome.StatusCanceled {
		t.Errorf("Status: got %v, want canceled", r.o.Status)
	}
	if r.o.Broadcast.Finished {
		t.Errorf("Finished with batch 0's results pending: got true, want false")
	}
	// Its results still come in; then it is finished, and still canceled.
	record(t, s, id, "0", outcome.BatchResults{Read: ids("u", 100)}, true)
	if o := bcast(t, s, id); o.Status != outcome.StatusCanceled || !o.Broadcast.Finished {
		t.Errorf("after the results: got %v/%v, want canceled/true", o.Status, o.Broadcast.Finished)
	}
}

// TestCancelWaitRunsOut: Cancel gives up waiting after wait.
func TestCancelWaitRunsOut(t *testing.T) {
	s, _, _ := setup(t)
	createBroadcast(t, s, "b1", 1)
	begin(t, s, "b1", "0", ids("u", 100), "", outcome.BatchGo)
	start := time.Now()
	o, err := s.Cancel(context.Background(), "b1", 100*time.Millisecond, nil)
	if err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if took := time.Since(start); took < 100*time.Millisecond || took > 2*time.Second {
		t.Errorf("Cancel took %v, want about 100ms", took)
	}
	if o.Status != outcome.StatusCanceled || o.Broadcast.Batches.Sending != 1 {
		t.Errorf("got %v with %d sending, want canceled with 1 sending", o.Status, o.Broadcast.Batches.Sending)
	}
	// A context canceled while waiting ends the wait with its error.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Cancel(ctx, "b1", time.Minute, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Cancel with a short context: got %v, want %v", err, context.DeadlineExceeded)
	}
}

// TestCancelPausedBroadcast: Cancel cancels what a pause parked, listing its
// recipients as canceled.
func TestCancelPausedBroadcast(t *testing.T) {
	s, mr, _ := setup(t)
	const id = "b1"
	createBroadcast(t, s, id, 2)
	if _, err := s.Pause(context.Background(), id); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	begin(t, s, id, "0", nil, "a,b,c", outcome.BatchParked)
	var asked []string
	o, err := s.Cancel(context.Background(), id, time.Second, func(p []byte) []string {
		asked = append(asked, string(p))
		return strings.Split(string(p), ",")
	})
	if err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if !slices.Equal(asked, []string{"a,b,c"}) {
		t.Errorf("recipientsOf called with: got %q, want the parked payload", asked)
	}
	if want := (outcome.BatchCounts{Total: 2, Queued: 1, Canceled: 1}); o.Broadcast.Batches != want {
		t.Errorf("Batches: got %+v, want %+v", o.Broadcast.Batches, want)
	}
	if got := recipients(t, s, id, outcome.ResultCanceled); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("canceled recipients: got %v, want [a b c]", got)
	}
	if mr.Exists(s.Keys().Parked(id)) {
		t.Errorf("parked batches after Cancel: got some, want none")
	}
	begin(t, s, id, "1", []string{"d"}, "", outcome.BatchCanceled)
	if o := bcast(t, s, id); !o.Broadcast.Finished || o.Broadcast.Recipients.Canceled != 4 {
		t.Errorf("finished/canceled: got %v/%d, want true/4", o.Broadcast.Finished, o.Broadcast.Recipients.Canceled)
	}
}

func TestCancelSingle(t *testing.T) {
	s, _, _ := setup(t)
	ctx := context.Background()
	tests := []struct {
		name       string
		to         outcome.Status // "" leaves it queued
		wantErr    error
		wantStatus outcome.Status // of a *TerminalError
	}{
		{name: "queued"},
		{name: "retrying", to: outcome.StatusRetrying},
		{name: "sending", to: outcome.StatusSending, wantErr: outcome.ErrInFlight},
		{name: "sent", to: outcome.StatusSent, wantErr: outcome.ErrTerminal, wantStatus: outcome.StatusSent},
		{name: "failed", to: outcome.StatusFailed, wantErr: outcome.ErrTerminal, wantStatus: outcome.StatusFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "m-" + tt.name
			create(t, s, id)
			if tt.to != "" {
				apply(t, s, id, outcome.Transition{To: tt.to})
			}
			o, err := s.Cancel(ctx, id, time.Second, nil)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Cancel: %v", err)
				}
				if o.Status != outcome.StatusCanceled || o.Broadcast != nil {
					t.Errorf("Cancel: got %v (broadcast %v), want canceled, no broadcast", o.Status, o.Broadcast)
				}
				// Canceled is final: a second cancel is refused.
				_, err = s.Cancel(ctx, id, time.Second, nil)
				var te *outcome.TerminalError
				if !errors.As(err, &te) || te.Status != outcome.StatusCanceled {
					t.Errorf("second Cancel: got %v, want a TerminalError canceled", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Cancel: got %v, want %v", err, tt.wantErr)
			}
			var te *outcome.TerminalError
			if tt.wantStatus != "" && (!errors.As(err, &te) || te.Status != tt.wantStatus) {
				t.Errorf("Cancel: got %v, want a TerminalError %s", err, tt.wantStatus)
			}
			if got := get(t, s, id).Status; got != tt.to {
				t.Errorf("status after a refused Cancel: got %v, want %v", got, tt.to)
			}
		})
	}
	if _, err := s.Cancel(ctx, "missing", time.Second, nil); !errors.Is(err, outcome.ErrNotFound) {
		t.Errorf("Cancel(missing): got %v, want %v", err, outcome.ErrNotFound)
	}
}

// TestCancelDoneBroadcast: a done broadcast cannot be canceled.
func TestCancelDoneBroadcast(t *testing.T) {
	s, _, _ := setup(t)
	createBroadcast(t, s, "b1", 1)
	begin(t, s, "b1", "0", []string{"u"}, "", outcome.BatchGo)
	end(t, s, "b1", "0", outcome.BatchEnd{To: outcome.StatusFailed})
	_, err := s.Cancel(context.Background(), "b1", time.Second, nil)
	var te *outcome.TerminalError
	if !errors.As(err, &te) || te.Status != outcome.StatusDone {
		t.Errorf("Cancel of a done broadcast: got %v, want a TerminalError done", err)
	}
}

// TestPauseResumeFencing: a batch parked again after Resume read it stays
// parked when Resume's caller unparks the old one.
func TestPauseResumeFencing(t *testing.T) {
	s, mr, _ := setup(t)
	ctx := context.Background()
	const id = "b1"
	createBroadcast(t, s, id, 3)
	parkedPayload := func() (string, bool) {
		v := mr.HGet(s.Keys().Parked(id), "0")
		return v, mr.Exists(s.Keys().Parked(id)) && v != ""
	}

	o, err := s.Pause(ctx, id)
	if err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if o.Status != outcome.StatusPaused {
		t.Errorf("Pause: got %v, want paused", o.Status)
	}
	if _, err := s.Pause(ctx, id); err != nil {
		t.Errorf("Pause of a paused broadcast: got %v, want nil", err)
	}
	begin(t, s, id, "0", ids("u", 100), "payload-1", outcome.BatchParked)
	if want := (outcome.BatchCounts{Total: 3, Queued: 2, Paused: 1}); bcast(t, s, id).Broadcast.Batches != want {
		t.Errorf("Batches after parking: got %+v, want %+v", bcast(t, s, id).Broadcast.Batches, want)
	}
	if got := batchState(t, s, id, "0"); got != "p" {
		t.Errorf("BatchState(0): got %q, want p", got)
	}
	if v, ok := parkedPayload(); !ok || v != "payload-1" {
		t.Errorf("parked payload: got %q, want payload-1", v)
	}

	parked, err := s.Resume(ctx, id)
	if err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if len(parked) != 1 || parked[0].Batch != "0" || string(parked[0].Payload) != "payload-1" {
		t.Fatalf("Resume: got %+v, want batch 0 with payload-1", parked)
	}
	if st := get(t, s, id).Status; st == outcome.StatusPaused {
		t.Errorf("status after Resume: got %v, want not paused", st)
	}

	// The race: paused again, and the batch (say, another delivery of its
	// task) parked anew before Resume's caller unparks what it read.
	if _, err := s.Pause(ctx, id); err != nil {
		t.Fatalf("second Pause: %v", err)
	}
	begin(t, s, id, "0", ids("u", 100), "payload-2", outcome.BatchParked)
	if err := s.Unpark(ctx, id, parked[0]); err != nil {
		t.Fatalf("Unpark: %v", err)
	}
	if v, ok := parkedPayload(); !ok || v != "payload-2" {
		t.Errorf("parked payload after a stale Unpark: got %q (present %v), want payload-2", v, ok)
	}
	if got := bcast(t, s, id).Broadcast.Batches; got.Paused != 1 || got.Queued != 2 {
		t.Errorf("Batches after a stale Unpark: got %+v, want 1 paused 2 queued", got)
	}
	if got := batchState(t, s, id, "0"); got != "p" {
		t.Errorf("BatchState(0) after a stale Unpark: got %q, want p", got)
	}

	// A normal resume: the batch goes back to queued.
	parked, err = s.Resume(ctx, id)
	if err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if len(parked) != 1 || string(parked[0].Payload) != "payload-2" {
		t.Fatalf("Resume: got %+v, want batch 0 with payload-2", parked)
	}
	if err := s.Unpark(ctx, id, parked[0]); err != nil {
		t.Fatalf("Unpark: %v", err)
	}
	if _, ok := parkedPayload(); ok {
		t.Errorf("parked payload after Unpark: got one, want none")
	}
	if want := (outcome.BatchCounts{Total: 3, Queued: 3}); bcast(t, s, id).Broadcast.Batches != want {
		t.Errorf("Batches after Unpark: got %+v, want %+v", bcast(t, s, id).Broadcast.Batches, want)
	}
	if got := batchState(t, s, id, "0"); got != "q" {
		t.Errorf("BatchState(0) after Unpark: got %q, want q", got)
	}
	// Resuming a running broadcast is harmless and finds nothing parked.
	if parked, err := s.Resume(ctx, id); err != nil || len(parked) != 0 {
		t.Errorf("Resume of a running broadcast: got %+v, %v; want nothing", parked, err)
	}
	begin(t, s, id, "0", ids("u", 100), "", outcome.BatchGo)
}

// TestUnparkAfterTheBatchRan: the re-enqueued task may run before Unpark;
// Unpark then only forgets the payload.
func TestUnparkAfterTheBatchRan(t *testing.T) {
	s, mr, _ := setup(t)
	ctx := context.Background()
	createBroadcast(t, s, "b1", 1)
	if _, err := s.Pause(ctx, "b1"); err != nil {
		t.Fatal(err)
	}
	begin(t, s, "b1", "0", []string{"u"}, "p", outcome.BatchParked)
	parked, err := s.Resume(ctx, "b1")
	if err != nil || len(parked) != 1 {
		t.Fatalf("Resume: got %+v, %v", parked, err)
	}
	begin(t, s, "b1", "0", []string{"u"}, "p", outcome.BatchGo)
	if err := s.Unpark(ctx, "b1", parked[0]); err != nil {
		t.Fatal(err)
	}
	if want := (outcome.BatchCounts{Total: 1, Sending: 1}); bcast(t, s, "b1").Broadcast.Batches != want {
		t.Errorf("Batches: got %+v, want %+v", bcast(t, s, "b1").Broadcast.Batches, want)
	}
	if mr.Exists(s.Keys().Parked("b1")) {
		t.Errorf("parked payload after Unpark: got one, want none")
	}
}

func TestPauseResumeRefused(t *testing.T) {
	s, _, _ := setup(t)
	ctx := context.Background()
	create(t, s, "single")
	createBroadcast(t, s, "done", 1)
	begin(t, s, "done", "0", nil, "", outcome.BatchGo)
	end(t, s, "done", "0", outcome.BatchEnd{To: outcome.StatusFailed})
	createBroadcast(t, s, "canceled", 1)
	if _, err := s.Cancel(ctx, "canceled", 0, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id         string
		wantErr    error
		wantStatus outcome.Status
	}{
		{"single", outcome.ErrNotBroadcast, ""},
		{"done", outcome.ErrTerminal, outcome.StatusDone},
		{"canceled", outcome.ErrTerminal, outcome.StatusCanceled},
		{"missing", outcome.ErrNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			calls := map[string]func() error{
				"Pause":  func() error { _, err := s.Pause(ctx, tt.id); return err },
				"Resume": func() error { _, err := s.Resume(ctx, tt.id); return err },
			}
			for name, call := range calls {
				err := call()
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("%s: got %v, want %v", name, err, tt.wantErr)
				}
				var te *outcome.TerminalError
				if tt.wantStatus != "" && (!errors.As(err, &te) || te.Status != tt.wantStatus) {
					t.Errorf("%s: got %v, want a TerminalError %s", name, err, tt.wantStatus)
				}
			}
		})
	}
	if got := get(t, s, "single").Status; got != outcome.StatusQueued {
		t.Errorf("single message after Pause: got %v, want queued", got)
	}
}

func TestRecipientsPaging(t *testing.T) {
	s, _, _ := setup(t)
	ctx := context.Background()
	const id = "b1"
	createBroadcast(t, s, id, 1)
	if _, err := s.Cancel(ctx, id, 0, nil); err != nil {
		t.Fatal(err)
	}
	all := ids("u", 25)
	begin(t, s, id, "0", all, "", outcome.BatchCanceled)
	tests := []struct {
		name          string
		offset, limit int64
		want          []string
	}{
		{"first page", 0, 10, all[:10]},
		{"middle page", 10, 10, all[10:20]},
		{"last page", 20, 10, all[20:]},
		{"past the end", 25, 10, nil},
		{"all", 0, 1000, all},
		{"one", 24, 1, all[24:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, total, err := s.Recipients(ctx, id, outcome.ResultCanceled, tt.offset, tt.limit)
			if err != nil {
				t.Fatalf("Recipients: %v", err)
			}
			if total != 25 {
				t.Errorf("total: got %d, want 25", total)
			}
			got := make([]string, 0, len(items))
			for _, it := range items {
				if it.Code != "" {
					t.Errorf("item %+v: got a code, want none", it)
				}
				got = append(got, it.UserID)
			}
			if !slices.Equal(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Errorf("items: got %v, want %v", got, tt.want)
			}
		})
	}
	items, total, err := s.Recipients(ctx, id, outcome.ResultRead, 0, 10)
	if err != nil || total != 0 || len(items) != 0 {
		t.Errorf("empty list: got %v, %d, %v; want nothing", items, total, err)
	}
}

func TestAcceptedBatchesAndRecall(t *testing.T) {
	s, _, c := setup(t)
	ctx := context.Background()
	const id = "b1"
	createBroadcast(t, s, id, 3)
	t0 := c.Now()
	begin(t, s, id, "0", nil, "", outcome.BatchGo)
	end(t, s, id, "0", outcome.BatchEnd{To: outcome.StatusSent, TaskID: 111})
	c.Add(time.Minute)
	t1 := c.Now()
	begin(t, s, id, "1", nil, "", outcome.BatchGo)
	end(t, s, id, "1", outcome.BatchEnd{To: outcome.StatusSent, TaskID: 222})
	begin(t, s, id, "2", nil, "", outcome.BatchGo)
	end(t, s, id, "2", outcome.BatchEnd{To: outcome.StatusFailed})

	if r := bcast(t, s, id).Broadcast.Recall; r != nil {
		t.Errorf("Recall before any: got %+v, want nil", r)
	}
	accepted := func() map[string]outcome.AcceptedBatch {
		t.Helper()
		l, err := s.AcceptedBatches(ctx, id)
		if err != nil {
			t.Fatalf("AcceptedBatches: %v", err)
		}
		m := map[string]outcome.AcceptedBatch{}
		for _, a := range l {
			m[a.Batch] = a
		}
		if len(m) != len(l) {
			t.Errorf("AcceptedBatches: got %+v, want each batch once", l)
		}
		return m
	}
	want := map[string]outcome.AcceptedBatch{
		"0": {Batch: "0", TaskID: 111, AcceptedAt: t0},
		"1": {Batch: "1", TaskID: 222, AcceptedAt: t1},
	}
	if got := accepted(); !reflect.DeepEqual(got, want) {
		t.Errorf("AcceptedBatches: got %+v, want %+v", got, want)
	}

	steps := []struct {
		batch   string
		expired bool
		want    outcome.RecallCounts
	}{
		{"0", false, outcome.RecallCounts{Recalled: 1}},
		{"0", false, outcome.RecallCounts{Recalled: 1}},
		{"0", true, outcome.RecallCounts{Recalled: 1}},
		{"1", true, outcome.RecallCounts{Recalled: 1, Expired: 1}},
		{"1", false, outcome.RecallCounts{Recalled: 1, Expired: 1}},
	}
	for i, st := range steps {
		if err := s.MarkRecalled(ctx, id, st.batch, st.expired); err != nil {
			t.Fatalf("MarkRecalled(%s): %v", st.batch, err)
		}
		r := bcast(t, s, id).Broadcast.Recall
		if r == nil || *r != st.want {
			t.Errorf("step %d: Recall after MarkRecalled(%s, %v): got %+v, want %+v", i, st.batch, st.expired, r, st.want)
		}
	}
	for b, a := range accepted() {
		if !a.Recalled {
			t.Errorf("batch %s: Recalled false, want true", b)
		}
	}
}

func TestEnqueued(t *testing.T) {
	s, _, _ := setup(t)
	ctx := context.Background()
	createBroadcast(t, s, "b1", 2)
	if ok, err := s.Enqueued(ctx, "b1"); err != nil || ok {
		t.Errorf("Enqueued before SetEnqueued: got %v, %v; want false", ok, err)
	}
	if err := s.SetEnqueued(ctx, "b1"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Enqueued(ctx, "b1"); err != nil || !ok {
		t.Errorf("Enqueued after SetEnqueued: got %v, %v; want true", ok, err)
	}
	if ok, _ := s.CreateBroadcast(ctx, &outcome.Outcome{ID: "b1", App: "app1"}, "fp", 9, 0); ok {
		t.Errorf("CreateBroadcast of an existing id: got true, want false")
	}
	if got := bcast(t, s, "b1").Broadcast.Batches.Total; got != 2 {
		t.Errorf("Batches.Total after a second CreateBroadcast: got %d, want 2", got)
	}
}

// TestBroadcastRetention: after a whole life every key of the broadcast
// expires with the retention.
func TestBroadcastRetention(t *testing.T) {
	s, mr, c := setup(t)
	ctx := context.Background()
	const id = "b1"
	createBroadcast(t, s, id, 4)
	if err := s.SetEnqueued(ctx, id); err != nil {
		t.Fatal(err)
	}
	step := func() { c.Add(time.Minute); mr.FastForward(time.Minute) }

	step()
	begin(t, s, id, "0", ids("u", 100), "", outcome.BatchGo)
	end(t, s, id, "0", outcome.BatchEnd{To: outcome.StatusSent, TaskID: 1, Recipients: ids("u", 100)})
	step()
	record(t, s, id, "0", outcome.BatchResults{Invalid: []string{"u0"}, Forbidden: []outcome.Forbidden{{UserID: "u1", Code: "143105"}},
		Failed: []string{"u2"}, Read: []string{"u3"}, Unread: []string{"u4"}, Unknown: []string{"u5"},
		Delivered: []string{"u8"}, Resend: "0r", ResendCount: 2}, true)
	step()
	begin(t, s, id, "1", ids("v", 100), "", outcome.BatchGo)
	end(t, s, id, "1", outcome.BatchEnd{To: outcome.StatusFailed, Recipients: ids("v", 100),
		Err: &outcome.ErrorInfo{Code: 1, Class: "permanent", Message: "no"}})
	step()
	if _, err := s.Pause(ctx, id); err != nil {
		t.Fatal(err)
	}
	begin(t, s, id, "2", ids("w", 100), "w", outcome.BatchParked)
	parked, err := s.Resume(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parked {
		if err := s.Unpark(ctx, id, p); err != nil {
			t.Fatal(err)
		}
	}
	step()
	begin(t, s, id, "2", ids("w", 100), "", outcome.BatchGo)
	end(t, s, id, "2", outcome.BatchEnd{To: outcome.StatusSent, TaskID: 2, Recipients: ids("w", 100)})
	if err := s.MarkRecalled(ctx, id, "0", false); err != nil {
		t.Fatal(err)
	}
	step()
	if _, err := s.Pause(ctx, id); err != nil {
		t.Fatal(err)
	}
	begin(t, s, id, "3", ids("x", 100), "x", outcome.BatchParked)
	step()
	if _, err := s.Cancel(ctx, id, 0, func([]byte) []string { return ids("x", 100) }); err != nil {
		t.Fatal(err)
	}
	begin(t, s, id, "0r", []string{"u6", "u7"}, "", outcome.BatchCanceled)
	record(t, s, id, "2", outcome.BatchResults{Read: ids("w", 100)}, true)
	if o := bcast(t, s, id); !o.Broadcast.Finished {
		t.Fatalf("broadcast not finished: %+v", o.Broadcast)
	}
	step()

	k := s.Keys()
	wantKeys := []string{k.Outcome(id), k.Batches(id), k.Tasks(id), k.Results(id), k.ParkGen(id), k.Recalled(id)}
	for _, r := range outcome.RecipientResults {
		wantKeys = append(wantKeys, k.Recipients(id, r))
	}
	got := mr.Keys()
	for _, key := range wantKeys {
		if !slices.Contains(got, key) {
			t.Errorf("key %s: missing, want it written by the life cycle", key)
		}
	}
	for _, key := range got {
		if ttl := mr.TTL(key); ttl <= 0 || ttl > testRetention {
			t.Errorf("TTL of %s: got %v, want within (0, %v]", key, ttl, testRetention)
		}
	}
	mr.FastForward(testRetention)
	if left := mr.Keys(); len(left) != 0 {
		t.Errorf("keys after the retention: got %v, want none", left)
	}
}

// TestSecondDeliveryWhileSending: a second delivery of a batch's task
// while the first sends it neither sends it too nor cancels or parks it;
// once SendingStale has passed, the first is taken for dead.
func TestSecondDeliveryWhileSending(t *testing.T) {
	s, _, c := setup(t)
	ctx := context.Background()
	createBroadcast(t, s, "b", 2)
	r := ids("u", 100)
	begin(t, s, "b", "0", r, "p", outcome.BatchGo)
	begin(t, s, "b", "0", r, "p", outcome.BatchBusy)
	if _, err := s.Pause(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	begin(t, s, "b", "0", r, "p", outcome.BatchBusy)
	if _, err := s.Cancel(ctx, "b", 0, func([]byte) []string { return nil }); err != nil {
		t.Fatal(err)
	}
	begin(t, s, "b", "0", r, "p", outcome.BatchBusy)
	// The first delivery's send still counts.
	end(t, s, "b", "0", outcome.BatchEnd{To: outcome.StatusSent, TaskID: 7, Recipients: r})
	if o := bcast(t, s, "b"); o.Broadcast.Batches.Sent != 1 || o.Broadcast.Recipients.Accepted != 100 {
		t.Fatalf("after the first delivery ended: %+v", o.Broadcast)
	}
	// Batch 1 was sending when its worker died: after SendingStale the next
	// delivery cancels it.
	c.Add(-time.Hour) // begin it in the past
	createBroadcast(t, s, "d", 1)
	begin(t, s, "d", "0", r, "p", outcome.BatchGo)
	c.Add(time.Hour)
	if _, err := s.Cancel(ctx, "d", 0, func([]byte) []string { return nil }); err != nil {
		t.Fatal(err)
	}
	begin(t, s, "d", "0", r, "p", outcome.BatchCanceled)
}

// TestResultsOnlyForSentBatches: results of a batch not recorded as sent
// are refused and change nothing.
func TestResultsOnlyForSentBatches(t *testing.T) {
	s, _, _ := setup(t)
	ctx := context.Background()
	createBroadcast(t, s, "b", 1)
	begin(t, s, "b", "0", ids("u", 100), "p", outcome.BatchGo)
	if _, err := s.RecordResults(ctx, "b", "0", outcome.BatchResults{Read: ids("u", 100)}); !errors.Is(err, outcome.ErrNotSent) {
		t.Fatalf("RecordResults of a sending batch: %v, want ErrNotSent", err)
	}
	if o := bcast(t, s, "b"); o.Broadcast.Results.Read != 0 || o.Broadcast.Results.PendingBatches != 0 || o.Broadcast.Finished {
		t.Errorf("refused results changed the record: %+v", o.Broadcast)
	}
	end(t, s, "b", "0", outcome.BatchEnd{To: outcome.StatusSent, TaskID: 9, Recipients: ids("u", 100)})
	a, in, ok, err := s.SentBatch(ctx, "b", "0")
	if err != nil || !ok || in || a.TaskID != 9 {
		t.Fatalf("SentBatch before results: %+v in=%v ok=%v %v", a, in, ok, err)
	}
	record(t, s, "b", "0", outcome.BatchResults{Read: ids("u", 100)}, true)
	if _, in, _, _ := s.SentBatch(ctx, "b", "0"); !in {
		t.Error("SentBatch after results: not in")
	}
}

// TestEndBatchReportsWhetherItEnded: EndBatch says whether it ended the
// batch: an end by a delivery whose batch another one took over and
// ended changes nothing and says so; an end repeated by its claimant (its
// answer was lost) says it ended it, and changes nothing more.
func TestEndBatchReportsWhetherItEnded(t *testing.T) {
	s, _, c := setup(t)
	ctx := context.Background()
	r := ids("u", 100)
	createBroadcast(t, s, "b", 2)
	c.Add(-time.Hour) // delivery A begins batch 0 in the past, and stalls
	begin(t, s, "b", "0", r, "p", outcome.BatchGo)
	c.Add(time.Hour)
	begin(t, s, "b", "0", r, "p", outcome.BatchGo) // delivery B takes it over
	for _, tt := range []struct {
		name     string
		claimant string
		want     bool
	}{
		{"B", "b", true},
		{"B again, its answer lost", "b", true},
		{"A", "a", false},
		{"without a claimant", "", false},
	} {
		ended, err := s.EndBatch(ctx, "b", "0", outcome.BatchEnd{To: outcome.StatusFailed, Recipients: r, Claimant: tt.claimant})
		if err != nil || ended != tt.want {
			t.Errorf("EndBatch by %s: got %v %v, want %v", tt.name, ended, err, tt.want)
		}
	}
	if o := bcast(t, s, "b"); o.Broadcast.Recipients.Rejected != 100 || o.Broadcast.Batches.Failed != 1 {
		t.Errorf("after the ends: %+v, want 100 rejected in 1 failed batch", o.Broadcast)
	}
	if got := recipients(t, s, "b", outcome.ResultRejected); len(got) != 100 {
		t.Errorf("rejected list: %d recipients, want 100", len(got))
	}
	if ended, err := s.EndBatch(ctx, "b", "1", outcome.BatchEnd{To: outcome.StatusSent, TaskID: 1, Recipients: r}); err != nil || ended {
		t.Errorf("EndBatch of a queued batch: got %v %v, want false", ended, err)
	}
}

// TestRecordResultsClaimant: results recorded again by their claimant
// (its answer was lost) say so, and count nothing twice; by anyone else,
// they are refused.
func TestRecordResultsClaimant(t *testing.T) {
	s, _, _ := setup(t)
	createBroadcast(t, s, "b", 1)
	begin(t, s, "b", "0", ids("u", 100), "p", outcome.BatchGo)
	end(t, s, "b", "0", outcome.BatchEnd{To: outcome.StatusSent, TaskID: 9, Recipients: ids("u", 100)})
	r := outcome.BatchResults{Read: ids("u", 60), Unread: ids("v", 40), Claimant: "a"}
	record(t, s, "b", "0", r, true)
	record(t, s, "b", "0", r, true)
	r.Claimant = "b"
	record(t, s, "b", "0", r, false)
	r.Claimant = ""
	record(t, s, "b", "0", r, false)
	o := bcast(t, s, "b")
	if res := o.Broadcast.Results; res.Read != 60 || res.Unread != 40 || res.PendingBatches != 0 || !o.Broadcast.Finished {
		t.Errorf("after four recordings: %+v finished %v, want 60 read, 40 unread, finished", res, o.Broadcast.Finished)
	}
	if got := recipients(t, s, "b", outcome.ResultRead); len(got) != 60 {
		t.Errorf("read list: %d recipients, want 60", len(got))
	}
}

// TestCancelBatchOnlyCancels: CancelBatch neither sends nor parks a batch
// of a broadcast that is not canceled.
func TestCancelBatchOnlyCancels(t *testing.T) {
	s, _, _ := setup(t)
	ctx := context.Background()
	createBroadcast(t, s, "b", 1)
	for _, pause := range []bool{false, true} {
		if pause {
			if _, err := s.Pause(ctx, "b"); err != nil {
				t.Fatal(err)
			}
		}
		if ok, err := s.CancelBatch(ctx, "b", "0", ids("u", 3)); err != nil || ok {
			t.Errorf("CancelBatch (paused %v): got %v %v, want false", pause, ok, err)
		}
		if got := batchState(t, s, "b", "0"); got != "q" {
			t.Errorf("batch state (paused %v): got %q, want q", pause, got)
		}
	}
	if _, err := s.CancelBatch(ctx, "missing", "0", nil); !errors.Is(err, outcome.ErrNotFound) {
		t.Errorf("CancelBatch(missing): got %v, want %v", err, outcome.ErrNotFound)
	}
}
