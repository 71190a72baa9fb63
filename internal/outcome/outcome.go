package outcome

import (
	"encoding/json"
	"time"
)

// Status is where a message is in its life.
type Status string

// The statuses of a message. Sent, Failed and Canceled are terminal; a
// broadcast also has Paused, and Done, which is terminal.
const (
	// StatusQueued: accepted and waiting in the queue (or for its send_at).
	StatusQueued Status = "queued"
	// StatusSending: a worker is calling DingTalk for it.
	StatusSending Status = "sending"
	// StatusSent: DingTalk accepted it and gave a task_id. Accepted is not
	// delivered: DingTalk delivers asynchronously.
	StatusSent Status = "sent"
	// StatusRetrying: an attempt failed in a way that can succeed later; the
	// queue will try again.
	StatusRetrying Status = "retrying"
	// StatusFailed: it will not be sent; LastError says why.
	StatusFailed Status = "failed"
	// StatusCanceled: it was canceled before it was sent.
	StatusCanceled Status = "canceled"
)

// Terminal reports whether s is final: nothing changes the record after it.
func (s Status) Terminal() bool {
	return s == StatusSent || s == StatusFailed || s == StatusCanceled || s == StatusDone
}

// Outcome is the record of one message.
type Outcome struct {
	ID string `json:"id"`
	// Kind is empty for a message, "broadcast" for a broadcast, and the
	// action of other tasks ("session.create"…).
	Kind string `json:"kind,omitempty"`
	// App is the app that sends the message; empty for a custom group
	// robot's.
	App string `json:"app"`
	// Robot names the robot that sends the message, if a robot does.
	Robot  string `json:"robot,omitempty"`
	Status Status `json:"status"`
	// TaskID is DingTalk's task_id, once it accepted the message.
	TaskID int64 `json:"task_id,omitempty"`
	// RequestID is DingTalk's request_id of the accepting call.
	RequestID string `json:"request_id,omitempty"`
	// Attempts counts the calls made to DingTalk for the message.
	Attempts int `json:"attempts"`
	// LastError is the last error seen, if any, even when a later attempt
	// succeeded.
	LastError *ErrorInfo `json:"last_error,omitempty"`
	// Recipients is how many user ids and department ids the message names
	// (each once).
	Recipients int       `json:"recipients"`
	SendAt     time.Time `json:"send_at,omitzero"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	// History lists the attempts, oldest first (at most MaxHistory).
	History []Attempt `json:"history,omitempty"`
	// Result is what DingTalk answered, for tasks that ask it something
	// (sessions, callback registrations).
	Result json.RawMessage `json:"result,omitempty"`
	// Recalled is true once a single message was recalled at DingTalk (a
	// broadcast says so in Broadcast.Recall).
	Recalled bool `json:"recalled,omitempty"`
	// Broadcast is set for a message sent in batches: their counts and
	// what DingTalk said of the recipients.
	Broadcast *Broadcast `json:"broadcast,omitempty"`
}

// ErrorInfo is an error as the outcome shows it: DingTalk's errcode and
// message, and what dingq made of it.
type ErrorInfo struct {
	// Code is DingTalk's errcode; 0 when the error was not DingTalk's answer.
	Code int `json:"code,omitempty"`
	// SubCode is topapi's sub_code, or the new host's string code.
	SubCode string `json:"sub_code,omitempty"`
	// Class is what the error asked of dingq: transient, throttled,
	// token_invalid, permanent, canceled.
	Class   string `json:"class"`
	Message string `json:"message"`
}

// Attempt is one call to DingTalk for the message, or the decision not to
// make one.
type Attempt struct {
	N         int        `json:"n"`
	At        time.Time  `json:"at"`
	Result    Status     `json:"result"`
	RequestID string     `json:"request_id,omitempty"`
	Error     *ErrorInfo `json:"error,omitempty"`
}

// MaxHistory is how many attempts a record keeps; older ones are dropped.
const MaxHistory = 50
