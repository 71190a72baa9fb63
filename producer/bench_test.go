package producer_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/internal/redistest"
	"github.com/dingq/dingq/producer"
	"github.com/hibiken/asynq"
)

// BenchmarkEnqueue measures how fast messages are queued: by asynq's own
// client (the task alone) and by the producer (its outcome record and its
// task), each op one message to one user, from the same number of
// goroutines on a fresh redis-server. It reports msgs/s; make bench
// divides the two.
func BenchmarkEnqueue(b *testing.B) {
	b.Run("asynq", func(b *testing.B) {
		rdb := redistest.Start(b).Client(b)
		client := asynq.NewClientFromRedisClient(rdb)
		var n atomic.Int64
		runParallel(b, "msgs/s", func() error {
			i := n.Add(1)
			t, err := producer.NewMessageSendTask(&producer.MessageSendPayload{ID: "m" + strconv.FormatInt(i, 10), App: "hr",
				UserIDs: []string{"u" + strconv.FormatInt(i, 10)}, Msg: dingtalk.TextMessage("bench " + strconv.FormatInt(i, 10))},
				asynq.Queue(producer.QueueDefault))
			if err != nil {
				return err
			}
			_, err = client.Enqueue(t)
			return err
		})
	})
	b.Run("producer", func(b *testing.B) {
		p := benchProducer(b)
		var n atomic.Int64
		runParallel(b, "msgs/s", func() error {
			i := strconv.FormatInt(n.Add(1), 10)
			_, err := p.Send(context.Background(), &producer.Message{App: "hr", UserIDs: []string{"u" + i},
				Msg: dingtalk.TextMessage("bench " + i)})
			return err
		})
	})
}

// runParallel runs f b.N times from 8 goroutines (as many as a busy
// application might send from) and reports the rate as unit.
func runParallel(b *testing.B, unit string, f func() error) {
	b.Helper()
	b.ResetTimer()
	start := time.Now()
	err := spread(8, b.N, func(int) error { return f() })
	elapsed := time.Since(start)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), unit)
}

// spread runs f(0…n-1) from the given number of goroutines and returns
// the first error; after one, the goroutines stop taking more.
func spread(goroutines, n int, f func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for range goroutines {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					errs <- err
					next.Store(int64(n))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func benchProducer(b *testing.B) *producer.Producer {
	rdb := redistest.Start(b).Client(b)
	p, err := producer.New(producer.Config{Redis: rdb, Apps: []string{"hr"}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	return p
}

// fanOutUsers is the size of one broadcast of BenchmarkFanOut: 1,000
// batches of 100.
const fanOutUsers = 100_000

// BenchmarkFanOut measures a broadcast's fan-out: each op queues 100,000
// users, as 1,000 tasks of 100 users by asynq's client from 16 goroutines
// (the tasks alone), and as one broadcast by the producer (its record, its
// 1,000 batch tasks, from as many goroutines). It reports users/s.
func BenchmarkFanOut(b *testing.B) {
	users := make([]string, fanOutUsers)
	for i := range users {
		users[i] = fmt.Sprintf("user%06d", i)
	}
	msg := dingtalk.TextMessage("fan-out bench")
	b.Run("asynq", func(b *testing.B) {
		rdb := redistest.Start(b).Client(b)
		client := asynq.NewClientFromRedisClient(rdb)
		b.ResetTimer()
		start := time.Now()
		for op := range b.N {
			err := spread(16, fanOutUsers/dingtalk.MaxUserIDs, func(i int) error {
				t, err := producer.NewBatchTask(&producer.BatchPayload{ID: fmt.Sprintf("bc%d", op), Batch: strconv.Itoa(i),
					App: "hr", UserIDs: users[i*dingtalk.MaxUserIDs : (i+1)*dingtalk.MaxUserIDs], Msg: msg})
				if err != nil {
					return err
				}
				_, err = client.Enqueue(t)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*fanOutUsers)/time.Since(start).Seconds(), "users/s")
	})
	b.Run("producer", func(b *testing.B) {
		p := benchProducer(b)
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			acc, err := p.Enqueue(context.Background(), &producer.Message{App: "hr", UserIDs: users, Msg: msg})
			if err != nil {
				b.Fatal(err)
			}
			if acc.Batches != fanOutUsers/dingtalk.MaxUserIDs {
				b.Fatalf("%d batches, want %d", acc.Batches, fanOutUsers/dingtalk.MaxUserIDs)
			}
		}
		b.ReportMetric(float64(b.N*fanOutUsers)/time.Since(start).Seconds(), "users/s")
	})
}
