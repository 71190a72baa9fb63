package worker_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/dingtalk/fake"
	"github.com/dingq/dingq/internal/metrics"
	"github.com/dingq/dingq/internal/redistest"
	"github.com/dingq/dingq/producer"
	"github.com/dingq/dingq/worker"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// benchConcurrency is the deliveries at once of both pipelines: the
// worker's default.
const benchConcurrency = worker.DefaultConcurrency

// benchPipeline is one thing that takes tasks off the queue: raw asynq
// with a handler that does nothing, or a dingq worker.
type benchPipeline struct {
	rdb   *redis.Client
	start func() error
	stop  func()
	// fill queues n tasks (not timed).
	fill func(b *testing.B, n int)
}

// BenchmarkPipeline measures what dingq's send path costs over asynq's
// own: b.N tasks, queued first, through a handler that does nothing
// (asynq) and through a dingq worker's full send path (dingq: the shared
// token, the limiter with limits far above the load, the fake DingTalk
// over HTTP with no latency, the outcome recorded, metrics on). Each on a
// fresh redis-server, with the same concurrency. It reports tasks/s; make
// bench divides the two.
func BenchmarkPipeline(b *testing.B) {
	b.Run("asynq", func(b *testing.B) { runPipeline(b, rawAsynq(b)) })
	b.Run("dingq", func(b *testing.B) {
		e := newBenchWorker(b)
		runPipeline(b, e.pipeline)
		if got := e.fake.Stats().Sent; got != b.N {
			b.Fatalf("the fake accepted %d sends, want %d", got, b.N)
		}
	})
}

func runPipeline(b *testing.B, p benchPipeline) {
	p.fill(b, b.N)
	b.ResetTimer()
	start := time.Now()
	if err := p.start(); err != nil {
		b.Fatal(err)
	}
	waitDrained(b, p.rdb, b.N)
	elapsed := time.Since(start)
	b.StopTimer()
	p.stop()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "tasks/s")
}

// processedKey is asynq's count of the tasks of queue q processed ever
// (base.ProcessedTotalKey in asynq v0.26): one GET, where the inspector's
// queue info runs scripts that would load the Redis under measure.
func processedKey(q string) string { return "asynq:{" + q + "}:processed" }

// waitDrained waits until asynq counted n tasks of the default queue
// processed, then checks that none failed or is left.
func waitDrained(b *testing.B, rdb *redis.Client, n int) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		done, err := rdb.Get(context.Background(), processedKey(producer.QueueDefault)).Int()
		if err != nil && !errors.Is(err, redis.Nil) {
			b.Fatal(err)
		}
		if done >= n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("5 minutes on: %d of %d processed", done, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	q, err := asynq.NewInspectorFromRedisClient(rdb).GetQueueInfo(producer.QueueDefault)
	if err != nil {
		b.Fatal(err)
	}
	if q.FailedTotal > 0 || q.Pending+q.Active+q.Retry+q.Scheduled > 0 {
		b.Fatalf("%d failed, %d pending, %d active, %d retry, %d scheduled", q.FailedTotal, q.Pending, q.Active, q.Retry, q.Scheduled)
	}
}

// rawAsynq is asynq alone: a server whose handler does nothing, fed by
// asynq's client with tasks like dingq's.
func rawAsynq(b *testing.B) benchPipeline {
	rdb := redistest.Start(b).Client(b)
	var done atomic.Int64
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: benchConcurrency, Queues: worker.DefaultQueues,
		LogLevel: asynq.ErrorLevel, TaskCheckInterval: 20 * time.Millisecond,
	})
	mux := asynq.NewServeMux()
	mux.HandleFunc(producer.TypeMessageSend, func(context.Context, *asynq.Task) error {
		done.Add(1)
		return nil
	})
	client := asynq.NewClientFromRedisClient(rdb)
	stop := sync.OnceFunc(srv.Shutdown) // once: a Fatal leaves no server running
	b.Cleanup(stop)
	return benchPipeline{
		rdb:   rdb,
		start: func() error { return srv.Start(mux) },
		stop:  stop,
		fill: func(b *testing.B, n int) {
			parallel(b, n, func(i int) error {
				t, err := producer.NewMessageSendTask(benchPayload(i), asynq.Queue(producer.QueueDefault))
				if err != nil {
					return err
				}
				_, err = client.Enqueue(t)
				return err
			})
		},
	}
}

// benchPayload is message i, to one user: what producer.Send queues.
func benchPayload(i int) *producer.MessageSendPayload {
	return &producer.MessageSendPayload{ID: fmt.Sprintf("m%d", i), App: "hr", UserIDs: []string{fmt.Sprintf("u%d", i)},
		Msg: dingtalk.TextMessage(fmt.Sprintf("bench %d", i))}
}

// parallel runs f(0…n-1) from eight goroutines and fails b on an error.
func parallel(b *testing.B, n int, f func(i int) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// benchWorker is a dingq worker on its own redis-server, sending to an
// in-process fake DingTalk over HTTP with no limits and no latency.
type benchWorker struct {
	pipeline benchPipeline
	fake     *fake.Server
	producer *producer.Producer
}

func newBenchWorker(b *testing.B) *benchWorker {
	rdb := redistest.Start(b).Client(b)
	fk := fake.New([]fake.App{{Key: appKey, Secret: appSecret, AgentID: agentID}}, &fake.Options{NoDailyLimits: true})
	srv := httptest.NewServer(fk)
	b.Cleanup(srv.Close)
	client, err := dingtalk.NewClient(dingtalk.WithBaseURL(srv.URL))
	if err != nil {
		b.Fatal(err)
	}
	w, err := worker.New(worker.Config{
		Redis: rdb,
		Apps: []worker.App{{Name: "hr", AgentID: agentID,
			// Far above the load: the limiter runs, and never waits.
			RateLimit:   worker.AppLimits{CallsPerSecond: 1_000_000, RecipientsPerMinute: 1_000_000_000},
			Credentials: dingtalk.Credentials{AppKey: appKey, AppSecret: appSecret}}},
		Client:           client,
		Concurrency:      benchConcurrency,
		FleetCallsPer20s: 1_000_000_000,
		PollInterval:     20 * time.Millisecond,
		Logger:           zap.NewNop(),
		Metrics:          metrics.New(prometheus.NewRegistry()),
	})
	if err != nil {
		b.Fatal(err)
	}
	p, err := producer.New(producer.Config{Redis: rdb, Apps: []string{"hr"}})
	if err != nil {
		b.Fatal(err)
	}
	stop := sync.OnceFunc(w.Shutdown)
	b.Cleanup(stop)
	return &benchWorker{fake: fk, producer: p, pipeline: benchPipeline{
		rdb:   rdb,
		start: w.Start,
		stop:  stop,
		fill: func(b *testing.B, n int) {
			parallel(b, n, func(i int) error {
				_, err := p.Send(context.Background(), &producer.Message{App: "hr", UserIDs: []string{fmt.Sprintf("u%d", i)},
					Msg: dingtalk.TextMessage(fmt.Sprintf("bench %d", i))})
				return err
			})
		},
	}}
}

// BenchmarkLatency measures how long a message takes from Send to the
// fake DingTalk receiving its call, at half the most the worker sends: it
// first drains a queue of 2,000 messages to learn that most, then sends
// b.N messages aiming at half of it, one at a time, and reports the p50,
// p99 and max of Send → DingTalk, and the rate the sends kept.
func BenchmarkLatency(b *testing.B) {
	e := newBenchWorker(b)
	const probe = 2000
	e.pipeline.fill(b, probe)
	start := time.Now()
	if err := e.pipeline.start(); err != nil {
		b.Fatal(err)
	}
	waitDrained(b, e.pipeline.rdb, probe)
	most := probe / time.Since(start).Seconds()
	rate := most / 2
	every := time.Duration(float64(time.Second) / rate)

	sentAt := make([]time.Time, b.N)
	b.ResetTimer()
	began := time.Now()
	next := began
	for i := range b.N {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		next = next.Add(every)
		sentAt[i] = time.Now()
		if _, err := e.producer.Send(context.Background(), &producer.Message{App: "hr",
			UserIDs: []string{fmt.Sprintf("lat%d", i)}, Msg: dingtalk.TextMessage(fmt.Sprintf("latency %d", i))}); err != nil {
			b.Fatal(err)
		}
	}
	achieved := float64(b.N) / time.Since(began).Seconds()
	waitDrained(b, e.pipeline.rdb, probe+b.N)
	b.StopTimer()

	got := map[string]time.Time{}
	for _, s := range e.fake.Sent() {
		got[s.Request.UserIDList] = s.Time
	}
	lat := make([]time.Duration, 0, b.N)
	for i, at := range sentAt {
		recv, ok := got[fmt.Sprintf("lat%d", i)]
		if !ok {
			b.Fatalf("message %d never reached the fake", i)
		}
		lat = append(lat, recv.Sub(at))
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[(len(lat)*99)/100]), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	b.ReportMetric(achieved, "msgs/s") // the rate Send kept up, near half of the most
	b.ReportMetric(most, "max-msgs/s")
}
