// Package redistest starts a real redis-server for integration tests: its
// own process on a free port, with nothing kept on disk, stopped when the
// test ends. Tests never share a Redis with each other or with the machine.
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
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a running redis-server.
type Server struct {
	Addr string
	cmd  *exec.Cmd
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
	cmd := exec.Command(bin, argv...)
	logf, err := os.Create(dir + "/redis.log")
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		logf.Close()
	})
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return nil, fmt.Errorf("redis-server exited: %s", tail(dir+"/redis.log"))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return s, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, fmt.Errorf("redis-server on %s did not answer within 10s: %s", s.Addr, tail(dir+"/redis.log"))
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
