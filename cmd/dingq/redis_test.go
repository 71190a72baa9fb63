package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dingq/dingq/internal/config"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// TestRedisConnections: each kind of redis section makes the client, the
// asynq connection and the log name that go with it, and the log name
// never holds a password.
func TestRedisConnections(t *testing.T) {
	tests := []struct {
		name       string
		redis      config.Redis
		wantClient string
		wantOpt    string
		wantTarget string
	}{
		{"server", config.Redis{Addr: "10.0.0.1:6379", Password: "pw-secret", DB: 2},
			"*redis.Client", "asynq.RedisClientOpt", "10.0.0.1:6379"},
		{"sentinel", config.Redis{Password: "pw-secret", Sentinel: config.Sentinel{MasterName: "mymaster",
			Addrs: []string{"10.0.0.1:26379", "10.0.0.2:26379"}, Password: "sentinel-secret"}},
			"*redis.Client", "asynq.RedisFailoverClientOpt", "sentinel mymaster via 10.0.0.1:26379,10.0.0.2:26379"},
		{"cluster", config.Redis{Password: "pw-secret", Cluster: config.RedisCluster{Addrs: []string{"10.0.0.1:7000", "10.0.0.2:7000"}}},
			"*redis.ClusterClient", "asynq.RedisClusterClientOpt", "cluster 10.0.0.1:7000,10.0.0.2:7000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rdb := newRedis(tt.redis)
			defer rdb.Close()
			if got := typeName(rdb); got != tt.wantClient {
				t.Errorf("newRedis: got a %s, want a %s", got, tt.wantClient)
			}
			opt := asynqRedisOpt(tt.redis)
			if got := typeName(opt); got != tt.wantOpt {
				t.Errorf("asynqRedisOpt: got a %s, want a %s", got, tt.wantOpt)
			}
			if got := redisTarget(tt.redis); got != tt.wantTarget || strings.Contains(got, "secret") {
				t.Errorf("redisTarget: got %q, want %q", got, tt.wantTarget)
			}
			// The same server, password and database for both.
			switch o := opt.(type) {
			case asynq.RedisClientOpt:
				c := rdb.(*redis.Client).Options()
				if o.Addr != c.Addr || o.Password != c.Password || o.DB != c.DB || c.Password != "pw-secret" || c.DB != 2 {
					t.Errorf("asynq %+v and go-redis %s/%d differ", o, c.Addr, c.DB)
				}
			case asynq.RedisFailoverClientOpt:
				if o.MasterName != "mymaster" || len(o.SentinelAddrs) != 2 || o.SentinelPassword != "sentinel-secret" || o.Password != "pw-secret" {
					t.Errorf("asynq failover options: %+v", o)
				}
			case asynq.RedisClusterClientOpt:
				c := rdb.(*redis.ClusterClient).Options()
				if len(o.Addrs) != 2 || o.Password != "pw-secret" || c.Password != "pw-secret" || len(c.Addrs) != 2 {
					t.Errorf("asynq %+v and go-redis %v differ", o, c.Addrs)
				}
			}
		})
	}
}

func typeName(v any) string { return fmt.Sprintf("%T", v) }
