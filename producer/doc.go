// Package producer is what a backend application imports to hand DingTalk
// messages to dingq: [Producer.Send] validates a message, records it and
// enqueues it on asynq in Redis, and returns at once with the message's id;
// [Producer.Status] reads what became of it. Workers (package worker) do
// the sending.
//
// It also holds dingq's task contract: task type names, payloads and their
// constructors, defined once here and shared with the worker.
//
// It imports dingtalk, asynq, go-redis and dingq's internal packages; never
// worker or cmd.
package producer
