package worker_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/dingtalk/fake"
	"github.com/dingq/dingq/producer"
	"github.com/dingq/dingq/worker"
)

func users(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// broadcast enqueues a broadcast of text to ids as app hr.
func (e *env) broadcast(t *testing.T, text string, ids []string) *producer.Accepted {
	t.Helper()
	a, err := e.producer.Enqueue(context.Background(), &producer.Message{App: "hr", UserIDs: ids,
		Msg: dingtalk.TextMessage(text)})
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	return a
}

// until polls broadcast id until ok says so, for at most d.
func (e *env) until(t *testing.T, id string, d time.Duration, what string, ok func(*producer.Outcome) bool) *producer.Outcome {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		o, err := e.producer.Status(context.Background(), id)
		if err != nil {
			t.Fatalf("Status(%s): %v", id, err)
		}
		if ok(o) {
			return o
		}
		if time.Now().After(deadline) {
			t.Fatalf("broadcast %s not %s after %s: status %s %+v", id, what, d, o.Status, o.Broadcast)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func finished(o *producer.Outcome) bool { return o.Broadcast != nil && o.Broadcast.Finished }

// sentUsers counts, per user id, the accepted sends that named it.
func sentUsers(fk *fake.Server) map[string]int {
	n := map[string]int{}
	for _, s := range fk.Sent() {
		for _, u := range s.Request.Request().UserIDs {
			n[u]++
		}
	}
	return n
}

func TestBroadcastSendsEveryUserOnceAndRecordsResults(t *testing.T) {
	res := fake.Results{Invalid: 0.1, ForbiddenDaily: 0.05, ForbiddenSame: 0.05, Failed: 0.02, Read: 0.5}
	e := setup(t, opts{concurrency: 8, fake: &fake.Options{Results: &res},
		rate: worker.AppLimits{RecipientsPerMinute: -1}})
	ids := users("u", 1000)
	withDups := append(slices.Clone(ids), ids[:50]...) // 50 repeats, sent once
	a := e.broadcast(t, "all hands at 3", withDups)
	if a.Batches != 10 || a.Recipients != 1000 || a.Duplicates != 50 {
		t.Fatalf("accepted %+v, want 10 batches, 1000 recipients, 50 duplicates", a)
	}
	o := e.until(t, a.ID, 30*time.Second, "finished", finished)
	b := o.Broadcast
	if o.Status != producer.StatusDone {
		t.Errorf("status %s, want done", o.Status)
	}
	if b.Batches.Total != 10 || b.Batches.Sent != 10 || b.Recipients.Accepted != 1000 || b.Results.PendingBatches != 0 {
		t.Errorf("counts %+v, want 10 batches sent, 1000 accepted, none pending", b)
	}
	if n := len(e.fake.Sent()); n != 10 {
		t.Errorf("asyncsend_v2 calls: %d, want 10", n)
	}
	got := sentUsers(e.fake)
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("user %s sent %d times, want 1", id, got[id])
		}
	}
	want := map[fake.Fate]int{}
	for _, id := range ids {
		want[res.Fate(id)]++
	}
	r := b.Results
	if r.Invalid != want[fake.FateInvalid] || r.Failed != want[fake.FateFailed] || r.Read != want[fake.FateRead] ||
		r.Unread != want[fake.FateUnread] || r.Forbidden[dingtalk.ForbiddenDaily] != want[fake.FateForbiddenDaily] ||
		r.Forbidden[dingtalk.ForbiddenSameContent] != want[fake.FateForbiddenSame] || r.Unknown != 0 {
		t.Errorf("results %+v, want %v", r, want)
	}
	// The forbidden recipients can be paged, with their codes.
	var paged []producer.Recipient
	for off := int64(0); ; {
		page, err := e.producer.Recipients(context.Background(), a.ID, "forbidden", off, 30)
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, page.Items...)
		if page.Next == 0 {
			break
		}
		off = page.Next
	}
	if len(paged) != r.ForbiddenTotal() {
		t.Fatalf("paged %d forbidden recipients, want %d", len(paged), r.ForbiddenTotal())
	}
	for _, p := range paged {
		wantCode := map[fake.Fate]string{fake.FateForbiddenDaily: dingtalk.ForbiddenDaily,
			fake.FateForbiddenSame: dingtalk.ForbiddenSameContent}[res.Fate(p.UserID)]
		if p.Code != wantCode {
			t.Errorf("recipient %s listed forbidden with code %q, want %q", p.UserID, p.Code, wantCode)
		}
	}
}

func TestBroadcastCancelStopsSending(t *testing.T) {
	// 5 calls a second: 30 batches take 6 s, time enough to cancel halfway.
	e := setup(t, opts{concurrency: 8, rate: worker.AppLimits{CallsPerSecond: 5, RecipientsPerMinute: -1}})
	a := e.broadcast(t, "cancel me", users("c", 3000))
	e.until(t, a.ID, 30*time.Second, "a third sent", func(o *producer.Outcome) bool { return o.Broadcast.Batches.Sent >= 10 })
	o, err := e.producer.Cancel(context.Background(), a.ID)
	if err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	sentAtCancel := len(e.fake.Sent())
	if o.Status != producer.StatusCanceled || o.Broadcast.Batches.Sending != 0 {
		t.Errorf("after Cancel: status %s, %d batches sending; want canceled, 0", o.Status, o.Broadcast.Batches.Sending)
	}
	o = e.until(t, a.ID, 30*time.Second, "finished", finished)
	if n := len(e.fake.Sent()); n != sentAtCancel {
		t.Errorf("DingTalk got %d sends after Cancel returned (%d before)", n-sentAtCancel, sentAtCancel)
	}
	b := o.Broadcast
	if b.Batches.Sent != sentAtCancel || b.Batches.Sent+b.Batches.Canceled != 30 || b.Batches.Sent == 30 {
		t.Errorf("batches %+v with %d sends at DingTalk: want sent + canceled = 30, sent = the sends", b.Batches, sentAtCancel)
	}
	if b.Recipients.Accepted+b.Recipients.Canceled != 3000 || b.Recipients.Accepted != 100*sentAtCancel {
		t.Errorf("recipients %+v, want accepted + canceled = 3000", b.Recipients)
	}
	page, err := e.producer.Recipients(context.Background(), a.ID, "canceled", 0, producer.MaxRecipientsPage)
	if err != nil || page.Total != int64(b.Recipients.Canceled) {
		t.Errorf("canceled recipients listed: %v, %v; want %d", page, err, b.Recipients.Canceled)
	}
	if _, err := e.producer.Pause(context.Background(), a.ID); err == nil {
		t.Error("Pause of a canceled broadcast: no error")
	}
}

func TestBroadcastPauseAndResume(t *testing.T) {
	e := setup(t, opts{concurrency: 8, rate: worker.AppLimits{CallsPerSecond: 10, RecipientsPerMinute: -1}})
	ids := users("p", 2000)
	a := e.broadcast(t, "pause me", ids)
	e.until(t, a.ID, 30*time.Second, "started", func(o *producer.Outcome) bool { return o.Broadcast.Batches.Sent >= 3 })
	if _, err := e.producer.Pause(context.Background(), a.ID); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	o := e.until(t, a.ID, 30*time.Second, "all parked", func(o *producer.Outcome) bool {
		return o.Broadcast.Batches.Queued == 0 && o.Broadcast.Batches.Sending == 0
	})
	if o.Status != producer.StatusPaused || o.Broadcast.Batches.Paused == 0 {
		t.Fatalf("paused broadcast: status %s, batches %+v", o.Status, o.Broadcast.Batches)
	}
	before := len(e.fake.Sent())
	time.Sleep(500 * time.Millisecond)
	if n := len(e.fake.Sent()); n != before {
		t.Fatalf("%d sends while paused", n-before)
	}
	if _, err := e.producer.Resume(context.Background(), a.ID); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	o = e.until(t, a.ID, 30*time.Second, "finished", finished)
	if o.Status != producer.StatusDone || o.Broadcast.Batches.Sent != 20 || len(e.fake.Sent()) != 20 {
		t.Errorf("status %s, batches %+v, %d sends; want done, 20 sent", o.Status, o.Broadcast.Batches, len(e.fake.Sent()))
	}
	got := sentUsers(e.fake)
	for _, id := range ids {
		if got[id] != 1 {
			t.Fatalf("user %s sent %d times, want 1", id, got[id])
		}
	}
}

func TestBroadcastResendsPerMinuteDropsOnce(t *testing.T) {
	// DingTalk takes 250 recipients a minute and the worker does not know:
	// of 500 users, 250 are dropped (143103) and sent once more, and
	// dropped again (the minute has not passed): they end forbidden.
	e := setup(t, opts{rate: worker.AppLimits{RecipientsPerMinute: -1},
		limits: &fake.Limits{RecipientsPerMinute: 250}})
	a := e.broadcast(t, "resend", users("r", 500))
	o := e.until(t, a.ID, 30*time.Second, "finished", finished)
	b := o.Broadcast
	if b.Recipients.Resent != 250 || b.Batches.Total != 5+3 || b.Batches.Sent != 8 {
		t.Errorf("resent %d in %d batches (%+v), want 250 in 3 more batches", b.Recipients.Resent, b.Batches.Total-5, b.Batches)
	}
	if b.Results.Forbidden[dingtalk.ForbiddenAppPerMinute] != 250 || b.Results.Unread != 250 {
		t.Errorf("results %+v, want 250 unread and 250 forbidden 143103", b.Results)
	}
	if b.Recipients.Accepted != b.Results.Unread+b.Results.ForbiddenTotal()+b.Recipients.Resent {
		t.Errorf("accepted %d != results %+v + resent %d", b.Recipients.Accepted, b.Results, b.Recipients.Resent)
	}
}

func TestCancelSingleMessage(t *testing.T) {
	e := setup(t, opts{})
	id, err := e.producer.Send(context.Background(), &producer.Message{App: "hr", UserIDs: []string{"u1"},
		Msg: dingtalk.TextMessage("later"), SendAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	o, err := e.producer.Cancel(context.Background(), id)
	if err != nil || o.Status != producer.StatusCanceled {
		t.Fatalf("Cancel: %v, %+v", err, o)
	}
	if _, err := e.producer.Pause(context.Background(), id); err != producer.ErrNotBroadcast {
		t.Errorf("Pause of a single message: %v, want ErrNotBroadcast", err)
	}
	sent := e.send(t, &producer.Message{Msg: dingtalk.TextMessage("now")})
	e.wait(t, sent)
	if _, err := e.producer.Cancel(context.Background(), sent); err == nil {
		t.Error("Cancel of a sent message: no error")
	}
}

func TestBroadcastResultsWaitForDelivery(t *testing.T) {
	// DingTalk takes 1.5 s to deliver each task: the results task asks
	// getsendprogress again until it is done, and only then records.
	e := setup(t, opts{rate: worker.AppLimits{RecipientsPerMinute: -1},
		fake: &fake.Options{DeliveryTime: 1500 * time.Millisecond}})
	a := e.broadcast(t, "slow delivery", users("d", 300))
	o := e.until(t, a.ID, 30*time.Second, "finished", finished)
	if o.Broadcast.Results.Unread != 300 || o.Broadcast.Results.PendingBatches != 0 {
		t.Errorf("results %+v, want 300 unread", o.Broadcast.Results)
	}
	progress, result := 0, 0
	for _, c := range e.fake.Calls() {
		switch c.Path {
		case dingtalk.PathGetSendProgress:
			progress++
		case dingtalk.PathGetSendResult:
			result++
		}
	}
	if result != 3 || progress <= 3 {
		t.Errorf("getsendprogress %d, getsendresult %d calls: want more than 3 and exactly 3", progress, result)
	}
	for _, s := range e.fake.Sent() {
		if !slices.ContainsFunc(e.fake.Calls(), func(c fake.Call) bool {
			return c.Path == dingtalk.PathGetSendResult && c.Time.Sub(s.Time) >= 1500*time.Millisecond
		}) {
			t.Errorf("task %d: no getsendresult after its delivery time", s.TaskID)
		}
	}
}

func TestBroadcastRecall(t *testing.T) {
	e := setup(t, opts{rate: worker.AppLimits{RecipientsPerMinute: -1}})
	a := e.broadcast(t, "oops", users("o", 450))
	e.until(t, a.ID, 30*time.Second, "finished", finished)
	if _, err := e.producer.Recall(context.Background(), a.ID); err != nil {
		t.Fatalf("Recall: %v", err)
	}
	o := e.until(t, a.ID, 30*time.Second, "recalled", func(o *producer.Outcome) bool {
		return o.Broadcast.Recall != nil && o.Broadcast.Recall.Recalled == 5
	})
	if st := e.fake.Stats(); st.Recalled != 5 {
		t.Errorf("DingTalk recalled %d tasks, want 5 (outcome %+v)", st.Recalled, o.Broadcast.Recall)
	}
	for _, s := range e.fake.Sent() {
		if s.Recalled.IsZero() {
			t.Errorf("task %d not recalled", s.TaskID)
		}
	}
	// A second recall calls DingTalk for nothing more.
	if _, err := e.producer.Recall(context.Background(), a.ID); err != nil {
		t.Fatalf("second Recall: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	n := 0
	for _, c := range e.fake.Calls() {
		if c.Path == dingtalk.PathRecall {
			n++
		}
	}
	if n != 5 {
		t.Errorf("recall calls: %d, want 5", n)
	}

	// A single message is recalled too.
	id := e.send(t, &producer.Message{Msg: dingtalk.TextMessage("single oops")})
	e.wait(t, id)
	if _, err := e.producer.Recall(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		o, _ := e.producer.Status(context.Background(), id)
		if o.Recalled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("single message not recalled: %+v", o)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
