package producer

import "github.com/dingq/dingq/internal/outcome"

// Outcome is the record of one message: its status, DingTalk's task_id and
// request_id, its attempts and its last error.
type Outcome = outcome.Outcome

// Status is where a message is in its life.
type Status = outcome.Status

// ErrorInfo is an error as an Outcome shows it.
type ErrorInfo = outcome.ErrorInfo

// Attempt is one call to DingTalk for a message.
type Attempt = outcome.Attempt

// The statuses of a message; Sent, Failed and Canceled are terminal. A
// broadcast is queued, sending, paused, canceled or done (terminal).
const (
	StatusQueued   = outcome.StatusQueued
	StatusSending  = outcome.StatusSending
	StatusSent     = outcome.StatusSent
	StatusRetrying = outcome.StatusRetrying
	StatusFailed   = outcome.StatusFailed
	StatusCanceled = outcome.StatusCanceled
	StatusPaused   = outcome.StatusPaused
	StatusDone     = outcome.StatusDone
)

// ErrNotFound is returned by Status for an unknown id, or one older than
// the retention.
var ErrNotFound = outcome.ErrNotFound
