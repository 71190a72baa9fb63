// Package redistest starts a real redis-server for integration tests: its
// own process on a free port, with nothing kept on disk unless asked
// (Start's arguments: "--appendonly", "yes"), stopped when the test ends.
// Stop and Restart stop it and start it again on its port and directory.
// Tests never share a Redis with each other or with the machine.
// StartCluster starts a Redis Cluster (redis-cli forms it) and
// StartSentinel a master, its replica and a Redis Sentinel, for the code
// that must work on them too.
//
// When redis-server is not installed the test is skipped with a loud
// message, except under CI (the CI environment variable set), where it fails:
// CI must install it (.ci/run does).
//
// It is imported by tests only; never by production code.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a running redis-server.
type Server struct {
	Addr string
	// Dir is the server's --dir, where it keeps its files (the AOF, with
	// "--appendonly yes") and its log, redis.log; it outlives Stop, so
	// Restart finds what the server wrote.
	Dir  string
	cmd  *exec.Cmd
	bin  string
	port int
	argv []string
	// exited is closed when cmd has exited.
	exited chan struct{}
}

// Start starts a redis-server for t and stops it when t ends. Extra
// arguments are passed to redis-server (e.g. "--appendonly", "yes").
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	bin := lookBin(t, "redis-server")
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: finding a free port: %v", err)
		}
		s, err := start(t, bin, port, args)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("redistest: starting redis-server: %v", lastErr)
	return nil
}

func start(t testing.TB, bin string, port int, args []string) (*Server, error) {
	dir := t.TempDir()
	argv := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", dir, "--daemonize", "no", "--loglevel", "warning"}, args...)
	return launch(t, bin, dir, port, argv)
}

// launch runs bin with argv in dir, its log in dir/redis.log, until t
// ends, and waits until it answers PING on port.
func launch(t testing.TB, bin, dir string, port int, argv []string) (*Server, error) {
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Dir: dir, bin: bin, port: port, argv: argv}
	if err := s.spawn(); err != nil {
		return nil, err
	}
	// The process of the moment: Restart replaces it.
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.exited
	})
	return s, s.waitPing()
}

// spawn starts s's process, its log appended to Dir/redis.log (a
// restarted server's log follows the first one's).
func (s *Server) spawn() error {
	logf, err := os.OpenFile(s.Dir+"/redis.log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, s.argv...)
	cmd.Stdout, cmd.Stderr = logf, logf
	dieWithParent(cmd) // a test binary killed by a timeout leaves no server behind
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	return nil
}

// waitPing waits until s's process answers (INFO, whose process_id must be
// its own), for at most 10 seconds, or its process exits.
func (s *Server) waitPing() error {
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("redis-server exited: %s", tail(s.Dir+"/redis.log"))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		info, err := rdb.Info(ctx, "server").Result()
		cancel()
		if err == nil {
			// Another redis-server that took the port first answers too.
			if pid := infoField(info, "process_id"); pid != strconv.Itoa(s.cmd.Process.Pid) {
				return fmt.Errorf("%s answered by another redis-server (pid %s, not %d)", s.Addr, pid, s.cmd.Process.Pid)
			}
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("redis-server on %s did not answer within 10s: %s", s.Addr, tail(s.Dir+"/redis.log"))
}

// Stop stops the server the way an operator's restart does: SIGTERM, so
// it writes what it must (its AOF, fsynced) and exits. It fails t if the
// server is not gone within 10 seconds. Restart starts it again.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	select {
	case <-s.exited:
		return // stopped already
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("redistest: SIGTERM to redis-server on %s: %v", s.Addr, err)
	}
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		t.Fatalf("redistest: redis-server on %s still running 10s after SIGTERM", s.Addr)
	}
}

// Restart stops the server if it runs (Stop) and starts it again on the
// same port, with the same arguments and Dir: with "--appendonly yes" it
// loads what it had written. It returns once the server answers PING, and
// fails t if it does not within 10 seconds (the port taken meanwhile, say).
// The new process is stopped when the test that started the first ends.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop(t)
	if err := s.spawn(); err != nil {
		t.Fatalf("redistest: restarting redis-server on %s: %v", s.Addr, err)
	}
	if err := s.waitPing(); err != nil {
		t.Fatalf("redistest: restarting redis-server on %s: %v", s.Addr, err)
	}
}

// Client returns a client of s, closed when t ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func tail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 5 {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, " | ")
}
