package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestFleetSIGTERM: SIGTERM to a worker in the middle of a 5,000-message
// run: it stops within worker.shutdown_timeout (finishing what it had in
// flight), and after a worker is started again every message ends sent,
// each exactly once at DingTalk.
func TestFleetSIGTERM(t *testing.T) {
	t.Parallel()
	const shutdown = 3 * time.Second
	fl := startFleetWith(t, fleetOpts{workers: 1, concurrency: 20,
		fakeArgs:   []string{"--no-limits", "--fault", `{"path":"/topapi/message/corpconversation/asyncsend_v2","latency":"20ms"}`},
		workerYAML: "shutdown_timeout: " + shutdown.String()}, hrApp)

	// A second worker, run by hand so it can be sent SIGTERM.
	logf, err := os.Create(filepath.Join(fl.dir, "victim.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	victim := exec.Command(fl.bin, "worker")
	victim.Env = append(os.Environ(), fl.env...)
	victim.Stdout, victim.Stderr = logf, logf
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- victim.Wait() }()
	t.Cleanup(func() {
		_ = victim.Process.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("--- victim log ---\n%s", lastBytes(b, 3000))
		}
	})

	ids := fl.send("hr", "sigterm", 5000)
	for len(fl.sent()) < 1000 {
		time.Sleep(20 * time.Millisecond)
	}
	sentAtSignal := len(fl.sent())
	signaled := time.Now()
	if err := victim.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		took := time.Since(signaled)
		t.Logf("SIGTERM with %d of 5000 sent: the worker exited (%v) after %s", sentAtSignal, err, took.Round(time.Millisecond))
		if err != nil || took > shutdown+2*time.Second {
			t.Errorf("worker exit: %v after %s, want a clean exit within shutdown_timeout %s", err, took, shutdown)
		}
	case <-time.After(shutdown + 10*time.Second):
		t.Fatalf("the worker did not exit within %s of SIGTERM", shutdown+10*time.Second)
	}
	// A worker again in its place.
	start(t, fl.dir, "restarted", fl.bin, fl.env, "worker")
	fl.waitSent(ids, 2*time.Minute)
	fl.checkSentOnce(5000)
}
