// Package outcome records what became of every message dingq accepted: its
// status, DingTalk's task_id and request_id, its attempts and its last
// error, kept in Redis under one key prefix for a configurable retention.
//
// The producer creates a record before it enqueues; workers move it along
// (queued → sending → sent, or retrying, failed, canceled). A terminal
// status is never overwritten, so a task delivered twice by the queue
// cannot undo or repeat what the first delivery recorded.
//
// It imports go-redis and the standard library; never worker, producer or cmd.
package outcome
