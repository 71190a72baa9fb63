package redistest

import (
	"os/exec"
	"strings"
	"testing"
)

// TestWaitPingWantsItsOwnServer: a server that answers on the port but is
// not the process started (another test's, the machine's) is refused, so
// no test talks to a Redis it does not own.
func TestWaitPingWantsItsOwnServer(t *testing.T) {
	other := Start(t)
	sleeper := exec.Command("sleep", "30")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = sleeper.Wait(); close(exited) }()
	t.Cleanup(func() { _ = sleeper.Process.Kill(); <-exited })

	s := &Server{Addr: other.Addr, Dir: other.Dir, cmd: sleeper, exited: exited}
	err := s.waitPing()
	if err == nil || !strings.Contains(err.Error(), "answered by another redis-server") {
		t.Fatalf("waitPing with another server on the port: %v, want refused", err)
	}
	if err := other.waitPing(); err != nil {
		t.Errorf("waitPing of the server on the port: %v", err)
	}
}
