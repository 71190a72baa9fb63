package worker

import (
	"reflect"
	"testing"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/internal/outcome"
	"github.com/dingq/dingq/producer"
)

func TestRobotResults(t *testing.T) {
	answer := &dingtalk.RobotBatchResult{InvalidStaffIDs: []string{"u1", "ghost"}, FlowControlledStaffIDs: []string{"u3", "u4"}}
	users := []string{"u0", "u1", "u2", "u3", "u4"}
	tests := []struct {
		name       string
		resend     bool
		want       outcome.BatchResults
		wantResend []string
	}{
		{"first send: the flow controlled go again", false,
			outcome.BatchResults{Invalid: []string{"u1"}, Delivered: []string{"u0", "u2"}}, []string{"u3", "u4"}},
		{"a re-send: the flow controlled stay forbidden", true,
			outcome.BatchResults{Invalid: []string{"u1"}, Delivered: []string{"u0", "u2"},
				Forbidden: []outcome.Forbidden{{UserID: "u3", Code: producer.ForbiddenFlowControlled},
					{UserID: "u4", Code: producer.ForbiddenFlowControlled}}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &producer.BatchPayload{ID: "m", Batch: "0", App: "hr", UserIDs: users, Robot: "helpdesk", Resend: tt.resend}
			got, resend := robotResults(b, answer)
			// "ghost" is not the batch's: only its users are recorded.
			if !reflect.DeepEqual(got, tt.want) || !reflect.DeepEqual(resend, tt.wantResend) {
				t.Errorf("robotResults = %+v, resend %v; want %+v, resend %v", got, resend, tt.want, tt.wantResend)
			}
		})
	}
}

func TestWebhookRequests(t *testing.T) {
	l := &limits{}
	r := &Robot{Name: "pair", Webhooks: []dingtalk.Robot{{Token: "a"}, {Token: "b"}, {Token: "c"}},
		hookIDs: []string{webhookID("a"), webhookID("b"), webhookID("c")}}
	first := map[int]int{}
	for i := range 300 {
		id := "msg-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		reqs := l.webhookRequests(r, id, "")
		again := l.webhookRequests(r, id, viaAny)
		if !reflect.DeepEqual(reqs, again) {
			t.Fatalf("message %s: webhooks in another order the second time", id)
		}
		seen := map[int]bool{}
		for _, q := range reqs {
			seen[webhookOf(r, q)] = true
		}
		if len(seen) != 3 {
			t.Fatalf("message %s: requests %v, want each webhook once", id, reqs)
		}
		first[webhookOf(r, reqs[0])]++
	}
	for i := range 3 {
		if first[i] < 50 {
			t.Errorf("webhook %d came first for %d of 300 messages, want about 100", i, first[i])
		}
	}
	if req := l.webhookRequest(r, 1); req.Calls.N != 20 || req.Calls.Per.Seconds() != 60 || req.App != "robot."+webhookID("b") {
		t.Errorf("webhookRequest: %+v, want 20 a minute keyed by the digest of its token", req)
	}
	// A message bound to a webhook goes through that one only; one bound
	// to a webhook no longer configured goes through any.
	if reqs := l.webhookRequests(r, "m", webhookID("c")); len(reqs) != 1 || webhookOf(r, reqs[0]) != 2 {
		t.Errorf("bound to c: %v, want c only", reqs)
	}
	if reqs := l.webhookRequests(r, "m", webhookID("gone")); len(reqs) != 3 {
		t.Errorf("bound to a removed webhook: %v, want all three", reqs)
	}
}
