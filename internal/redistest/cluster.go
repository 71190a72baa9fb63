package redistest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a running Redis Cluster of masters without replicas.
type Cluster struct {
	// Addrs are the masters' host:port addresses.
	Addrs []string
	// Nodes are the masters' processes.
	Nodes []*Server
}

// clusterBusOffset is what Redis Cluster adds to a node's port for the
// port its nodes talk to each other on.
const clusterBusOffset = 10000

// StartCluster starts a Redis Cluster of masters (at least 3, what
// `redis-cli --cluster create` asks for) for t, each on a free port whose
// bus port is free too, and returns once every node says cluster_state:ok.
// It is stopped when t ends.
func StartCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	if masters < 3 {
		t.Fatalf("redistest: a cluster needs at least 3 masters, got %d", masters)
	}
	bin := lookBin(t, "redis-server")
	cli := lookBin(t, "redis-cli")
	c := &Cluster{}
	for range masters {
		var lastErr error
		var s *Server
		for range 5 {
			port, err := clusterPort()
			if err != nil {
				t.Fatalf("redistest: finding a free port: %v", err)
			}
			s, err = start(t, bin, port, []string{"--cluster-enabled", "yes",
				"--cluster-config-file", fmt.Sprintf("nodes-%d.conf", port), // in the server's --dir
				"--cluster-node-timeout", "2000"})
			if err == nil {
				break
			}
			lastErr = err
		}
		if s == nil {
			t.Fatalf("redistest: starting a cluster node: %v", lastErr)
		}
		c.Nodes = append(c.Nodes, s)
		c.Addrs = append(c.Addrs, s.Addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append(append([]string{"--cluster", "create"}, c.Addrs...), "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	c.waitOK(t, masters)
	return c
}

// waitOK waits until every node says the cluster is ok, knows every
// node, and has every slot assigned.
func (c *Cluster) waitOK(t testing.TB, masters int) {
	t.Helper()
	want := []string{"cluster_state:ok", "cluster_slots_assigned:16384", "cluster_known_nodes:" + strconv.Itoa(masters)}
	deadline := time.Now().Add(20 * time.Second)
	for _, addr := range c.Addrs {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		for {
			info, err := rdb.ClusterInfo(context.Background()).Result()
			if err == nil && containsAll(info, want) {
				break
			}
			if time.Now().After(deadline) {
				rdb.Close()
				t.Fatalf("redistest: cluster node %s not ok after 20s: %v %s", addr, err, info)
			}
			time.Sleep(20 * time.Millisecond)
		}
		rdb.Close()
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// Client returns a cluster client of c, closed when t ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// clusterPort returns a port that is free, and whose bus port is too. Both
// are taken below the kernel's ephemeral range (32768 and up on Linux),
// where outgoing connections do not land on them meanwhile.
func clusterPort() (int, error) {
	for range 100 {
		port := 10000 + rand.IntN(12000) // bus ports 20000-31999
		if free(port) && free(port+clusterBusOffset) {
			return port, nil
		}
	}
	return 0, fmt.Errorf("no port p in 10000-21999 with p and p+%d free", clusterBusOffset)
}

func free(port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// lookBin finds a Redis program, or skips t (fails it under CI) when it is
// not installed.
func lookBin(t testing.TB, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redistest: %s is not installed, and CI is set: .ci/run must install it (apt-get install redis-server)", name)
		}
		t.Skipf("redistest: SKIPPING integration test: %s is not installed (apt-get install redis-server)", name)
	}
	return bin
}
