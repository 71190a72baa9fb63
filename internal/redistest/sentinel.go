package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sentinel is a master with one replica, watched by one Redis Sentinel.
type Sentinel struct {
	// MasterName is the master's name in the sentinel's configuration.
	MasterName string
	// Addrs are the sentinels' host:port addresses.
	Addrs []string
	// Master is the master the sentinel was started with, and Replica its
	// replica; after Failover they have swapped roles.
	Master, Replica *Server
}

// StartSentinel starts a master, a replica of it and a sentinel watching
// it for t, and returns once the sentinel knows both. Extra arguments are
// passed to the master and the replica (e.g. "--min-replicas-to-write",
// "1"). They are stopped when t ends.
func StartSentinel(t testing.TB, args ...string) *Sentinel {
	t.Helper()
	bin := lookBin(t, "redis-server")
	// No 5 s wait before a replica's first sync.
	args = append([]string{"--repl-diskless-sync-delay", "0"}, args...)
	master := Start(t, args...)
	_, mport, _ := net.SplitHostPort(master.Addr)
	replica := Start(t, append([]string{"--replicaof", "127.0.0.1", mport}, args...)...)
	s := &Sentinel{MasterName: "dingq-test", Master: master, Replica: replica}
	waitInfo(t, replica.Addr, "replication", "master_link_status:up")

	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: finding a free port: %v", err)
		}
		dir := t.TempDir()
		// The sentinel rewrites its configuration file: it lives in a
		// directory of its own.
		conf := filepath.Join(dir, "sentinel.conf")
		err = os.WriteFile(conf, []byte(fmt.Sprintf(`port %d
bind 127.0.0.1
dir %s
daemonize no
loglevel warning
sentinel monitor %s 127.0.0.1 %s 1
sentinel down-after-milliseconds %[3]s 1000
sentinel failover-timeout %[3]s 5000
`, port, dir, s.MasterName, mport)), 0o600)
		if err != nil {
			t.Fatalf("redistest: writing the sentinel's configuration: %v", err)
		}
		sen, err := launch(t, bin, dir, port, []string{conf, "--sentinel"})
		if err == nil {
			s.Addrs = []string{sen.Addr}
			break
		}
		lastErr = err
	}
	if s.Addrs == nil {
		t.Fatalf("redistest: starting redis-server --sentinel: %v", lastErr)
	}
	s.waitKnown(t)
	return s
}

// waitKnown waits until the sentinel names the master and knows a replica
// it could promote.
func (s *Sentinel) waitKnown(t testing.TB) {
	t.Helper()
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addrs[0]})
	defer sc.Close()
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		addr, err := sc.GetMasterAddrByName(ctx, s.MasterName).Result()
		if err == nil && len(addr) == 2 {
			replicas, err := sc.Replicas(ctx, s.MasterName).Result()
			if err == nil && len(replicas) > 0 && replicas[0]["flags"] == "slave" &&
				replicas[0]["master-link-status"] == "ok" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: sentinel %s does not know master %s and its replica after 20s: %v", s.Addrs[0], s.MasterName, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// MasterAddr returns the master's address as the sentinel says it.
func (s *Sentinel) MasterAddr(t testing.TB) string {
	t.Helper()
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addrs[0]})
	defer sc.Close()
	addr, err := sc.GetMasterAddrByName(context.Background(), s.MasterName).Result()
	if err != nil || len(addr) != 2 {
		t.Fatalf("redistest: SENTINEL get-master-addr-by-name %s: %v %v", s.MasterName, addr, err)
	}
	return net.JoinHostPort(addr[0], addr[1])
}

// FailoverPaused is Failover as it must be done by hand so that no write
// is lost: writes to the master are paused for pause (CLIENT PAUSE WRITE),
// the replica catches up, and only then is it promoted. Clients that
// follow the sentinel move to the new master when it is named, before the
// pause ends; their writes held by the pause are never done on the old
// master.
//
// Without the pause, the old master goes on taking writes until the
// sentinel names the new master (most of a second) and loses them when
// it becomes the new master's replica.
func (s *Sentinel) FailoverPaused(t testing.TB, pause time.Duration) string {
	t.Helper()
	ctx := context.Background()
	master := redis.NewClient(&redis.Options{Addr: s.Master.Addr})
	defer master.Close()
	if err := master.Do(ctx, "CLIENT", "PAUSE", pause.Milliseconds(), "WRITE").Err(); err != nil {
		t.Fatalf("redistest: CLIENT PAUSE on %s: %v", s.Master.Addr, err)
	}
	info, err := master.Info(ctx, "replication").Result()
	if err != nil {
		t.Fatalf("redistest: INFO replication of %s: %v", s.Master.Addr, err)
	}
	offset := infoField(info, "master_repl_offset")
	paused := time.Now()
	waitInfo(t, s.Replica.Addr, "replication", "slave_repl_offset:"+offset+"\r\n")
	addr := s.Failover(t)
	// Past the pause the old master took writes again, which the failover
	// may have thrown away: the run would look as if dingq lost them.
	if took := time.Since(paused); took >= pause {
		t.Fatalf("redistest: the failover took %v, longer than the %v writes were paused", took, pause)
	}
	return addr
}

// infoField returns the value of field in an INFO answer.
func infoField(info, field string) string {
	for l := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), field+":"); ok {
			return v
		}
	}
	return ""
}

// Failover has the sentinel promote the replica (SENTINEL FAILOVER) and
// returns once the sentinel names it master and it says so itself. It
// returns the new master's address. Master and Replica swap. Writes the
// old master takes meanwhile are lost: see FailoverPaused.
func (s *Sentinel) Failover(t testing.TB) string {
	t.Helper()
	old := s.MasterAddr(t)
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addrs[0]})
	defer sc.Close()
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		// NOGOODSLAVE until the sentinel has seen the replica in sync
		// lately; INPROG while another failover runs.
		err := sc.Failover(ctx, s.MasterName).Err()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: SENTINEL FAILOVER %s: %v", s.MasterName, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for {
		if now := s.MasterAddr(t); now != old {
			waitInfo(t, now, "replication", "role:master")
			s.Master, s.Replica = s.Replica, s.Master
			return now
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: the master of %s is still %s 20s after SENTINEL FAILOVER", s.MasterName, old)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Client returns a client that finds the master through the sentinel,
// closed when t ends.
func (s *Sentinel) Client(t testing.TB) *redis.Client {
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName, SentinelAddrs: s.Addrs})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// waitInfo waits until INFO section of the server at addr holds want.
func waitInfo(t testing.TB, addr, section, want string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err := rdb.Info(context.Background(), section).Result()
		if err == nil && strings.Contains(info, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: %s: INFO %s does not say %s after 20s: %v", addr, section, want, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
