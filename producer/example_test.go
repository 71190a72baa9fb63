package producer_test

import (
	"context"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/producer"
	"github.com/redis/go-redis/v9"
)

// A backend app sends a work notification: one call, which returns as soon
// as the message is safely queued. A dingq worker sends it to DingTalk.
func ExampleProducer_Send() {
	mr, _ := miniredis.Run() // your Redis in production
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	p, err := producer.New(producer.Config{Redis: rdb, Apps: []string{"hr"}})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	id, err := p.Send(ctx, &producer.Message{
		App:            "hr",
		UserIDs:        []string{"manager1", "staff7"},
		Msg:            dingtalk.MarkdownMessage("Payroll", "Your **November** payslip is ready."),
		IdempotencyKey: "payslip-2026-11",
	})
	if err != nil {
		panic(err)
	}
	o, err := p.Status(ctx, id)
	if err != nil {
		panic(err)
	}
	fmt.Println(o.Status, o.Recipients)
	// Output: queued 2
}

// A bad message is refused at once, naming the field, and nothing is queued.
func ExampleMessage_Validate() {
	m := &producer.Message{App: "hr", UserIDs: []string{"u1"},
		Msg: dingtalk.Message{MsgType: dingtalk.MsgTypeLink, Link: &dingtalk.Link{Title: "t", Text: "x", MessageURL: "https://example.com"}}}
	fmt.Println(m.Validate())
	// Output: msg.link.picUrl: required
}
