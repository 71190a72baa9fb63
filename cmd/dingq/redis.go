package main

import (
	"strings"

	"github.com/dingq/dingq/internal/config"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// newRedis connects to the Redis of c: one server (Addr), a master found
// through Sentinel, or a Cluster. The client is shared by the worker, the
// producer and dingq's own stores. It is asynqRedisOpt's client, so the
// two cannot disagree.
func newRedis(c config.Redis) redis.UniversalClient {
	return asynqRedisOpt(c).MakeRedisClient().(redis.UniversalClient)
}

// asynqRedisOpt is the connection to the Redis of c as asynq describes
// one, for what wants an asynq.RedisConnOpt rather than a client
// (asynqmon, the web UI).
func asynqRedisOpt(c config.Redis) asynq.RedisConnOpt {
	switch {
	case c.Sentinel.On():
		return asynq.RedisFailoverClientOpt{
			MasterName:       c.Sentinel.MasterName,
			SentinelAddrs:    c.Sentinel.Addrs,
			SentinelPassword: c.Sentinel.Password,
			Password:         c.Password,
			DB:               c.DB,
		}
	case c.Cluster.On():
		return asynq.RedisClusterClientOpt{Addrs: c.Cluster.Addrs, Password: c.Password}
	}
	return asynq.RedisClientOpt{Addr: c.Addr, Password: c.Password, DB: c.DB}
}

// redisTarget names the Redis of c for logs: "127.0.0.1:6379",
// "sentinel mymaster via a:26379,b:26379" or "cluster a:7000,b:7001". It
// never holds a password.
func redisTarget(c config.Redis) string {
	switch {
	case c.Sentinel.On():
		return "sentinel " + c.Sentinel.MasterName + " via " + strings.Join(c.Sentinel.Addrs, ",")
	case c.Cluster.On():
		return "cluster " + strings.Join(c.Cluster.Addrs, ",")
	}
	return c.Addr
}
