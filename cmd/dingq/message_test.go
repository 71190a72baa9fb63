package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/dingq/dingq/producer"
)

func TestMessageCmdLifecycle(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	id := e.broadcast(250)

	status := func(args ...string) producer.Status {
		t.Helper()
		out, errs, err := e.run(append([]string{"message"}, args...)...)
		if err != nil {
			t.Fatalf("message %q: %v\n%s", args, err, errs)
		}
		var o producer.Outcome
		mustJSON(t, out, &o)
		if o.ID != id || o.Broadcast == nil {
			t.Fatalf("message %q printed %s", args, out)
		}
		return o.Status
	}
	if s := status("pause", id); s != "paused" {
		t.Fatalf("pause: %s", s)
	}
	if s := status("resume", id); s != producer.StatusSending {
		t.Fatalf("resume: %s", s)
	}
	if s := status("cancel", id); s != producer.StatusCanceled {
		t.Fatalf("cancel: %s", s)
	}
	if s := status("cancel", id); s != producer.StatusCanceled {
		t.Fatalf("cancel again: %s", s)
	}
	fails := func(want string, args ...string) {
		t.Helper()
		out, _, err := e.run(append([]string{"message"}, args...)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("message %q: error %v, want %q", args, err, want)
		}
		if out != "" {
			t.Errorf("message %q: stdout %q", args, out)
		}
	}
	fails("cannot pause message "+id+": it is canceled already", "pause", id)
	fails("cannot resume message "+id+": it is canceled already", "resume", id)
	fails("nothing to recall: DingTalk accepted nothing of message "+id, "recall", id)
	fails(`no message "nope"`, "cancel", "nope")
	fails(`no message "nope"`, "recipients", "nope", "--status", "read")
	fails("--status: want one of invalid, forbidden", "recipients", id, "--status", "bogus")
	fails("--limit: want 1 to 10000", "recipients", id, "--status", "read", "--limit", "0")
	fails(`required flag(s) "status" not set`, "recipients", id)
	fails("accepts 1 arg(s)", "cancel")

	// The workers take the canceled batches: their recipients are listed.
	e.cancelBatches(id)
	want := make([]string, 250)
	for i := range want {
		want[i] = fmt.Sprintf("u%04d", i)
	}
	lines := func(s string) []string { return strings.Fields(s) }
	out, errs, err := e.run("message", "recipients", id, "--status", "canceled", "--limit", "100", "--offset", "20")
	if err != nil {
		t.Fatal(err)
	}
	if got := lines(out); !slices.Equal(got, want[20:120]) {
		t.Errorf("a page: %d ids %q…", len(got), got[:min(3, len(got))])
	}
	if !strings.Contains(errs, "100 of 250 canceled recipients from offset 20; the next page: --offset 120") {
		t.Errorf("stderr %q", errs)
	}
	out, errs, err = e.run("message", "recipients", id, "--status", "canceled", "--all", "--limit", "60")
	if err != nil {
		t.Fatal(err)
	}
	if got := lines(out); !slices.Equal(got, want) || errs != "" {
		t.Errorf("--all: %d ids, stderr %q", len(got), errs)
	}
	out, _, err = e.run("message", "recipients", id, "--status", "forbidden", "--all")
	if err != nil || out != "" {
		t.Errorf("forbidden: %q, %v", out, err)
	}
}

func TestMessageCmdSingle(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	out, errs, err := e.run("send", "--app", "hr", "--user", "u1,u2", "--text", "hi")
	if err != nil {
		t.Fatalf("%v\n%s", err, errs)
	}
	id := strings.TrimSpace(out)
	for _, action := range []string{"pause", "resume"} {
		_, _, err := e.run("message", action, id)
		if err == nil || !strings.Contains(err.Error(), "cannot "+action+" message "+id+": it is not a broadcast") {
			t.Errorf("%s: %v", action, err)
		}
	}
	if _, _, err := e.run("message", "recall", id); err == nil || !strings.Contains(err.Error(), "nothing to recall") {
		t.Errorf("recall: %v", err)
	}
	out, _, err = e.run("message", "cancel", id)
	if err != nil || !strings.Contains(out, `"status": "canceled"`) {
		t.Fatalf("cancel: %v %s", err, out)
	}
	// Canceling again is refused: a canceled single message is final.
	if _, _, err := e.run("message", "cancel", id); err == nil || !strings.Contains(err.Error(), "it is canceled already") {
		t.Errorf("cancel again: %v, want it is canceled already", err)
	}
}
