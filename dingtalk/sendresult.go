package dingtalk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// The statuses of a work notification's delivery, as getsendprogress
// reports them in [SendProgress].Status.
const (
	// SendNotStarted: DingTalk has not begun delivering the task.
	SendNotStarted = 0
	// SendProcessing: DingTalk is delivering the task.
	SendProcessing = 1
	// SendDone: DingTalk has finished delivering the task; getsendresult
	// now tells who got it.
	SendDone = 2
)

// SendProgress is how far DingTalk has got delivering one accepted work
// notification: getsendprogress's "progress". DingTalk keeps it for 24 hours
// after the send.
type SendProgress struct {
	// Percent is progress_in_percent, 0 to 100.
	Percent int `json:"progress_in_percent"`
	// Status is SendNotStarted, SendProcessing or SendDone.
	Status int `json:"status"`
}

// Done reports whether DingTalk has finished delivering the task
// (Status is SendDone). A nil p is not done.
func (p *SendProgress) Done() bool {
	return p != nil && p.Status == SendDone
}

// SendResultDetail is who got one accepted work notification and who did
// not: getsendresult's "send_result". DingTalk keeps it for 24 hours after
// the send. Every list may be empty or missing.
type SendResultDetail struct {
	// InvalidUserIDs are user ids DingTalk does not know.
	InvalidUserIDs []string `json:"invalid_user_id_list"`
	// ForbiddenUserIDs are users a silent limit dropped; Forbidden says
	// which limit.
	ForbiddenUserIDs []string `json:"forbidden_user_id_list"`
	// FailedUserIDs are users the delivery failed for.
	FailedUserIDs []string `json:"failed_user_id_list"`
	// ReadUserIDs are users who got and read the message.
	ReadUserIDs []string `json:"read_user_id_list"`
	// UnreadUserIDs are users who got the message and have not read it.
	UnreadUserIDs []string `json:"unread_user_id_list"`
	// InvalidDeptIDs are department ids DingTalk does not know.
	InvalidDeptIDs []string `json:"invalid_dept_id_list"`
	// Forbidden says, for each recipient a silent limit dropped, which
	// limit it was.
	Forbidden []ForbiddenRecipient `json:"forbidden_list"`
}

// ForbiddenCodes returns, for every user a silent limit dropped, the
// limit's code (ForbiddenAppPerMinute, ForbiddenDaily…), keyed by user id.
// A user in ForbiddenUserIDs that Forbidden does not explain has code "".
// The map is never nil.
func (d *SendResultDetail) ForbiddenCodes() map[string]string {
	codes := make(map[string]string)
	if d == nil {
		return codes
	}
	for _, id := range d.ForbiddenUserIDs {
		codes[id] = ""
	}
	for _, f := range d.Forbidden {
		codes[f.UserID] = f.Code
	}
	return codes
}

// ForbiddenRecipient is one recipient a silent limit dropped: an entry of
// getsendresult's forbidden_list.
type ForbiddenRecipient struct {
	// Code is the limit: ForbiddenAppPerMinute, ForbiddenCorpPerMinute,
	// ForbiddenDaily or ForbiddenSameContent. DingTalk sends it as a JSON
	// number or a string; it is always kept as a string.
	Code string `json:"code"`
	// Count is the limit's count DingTalk reports.
	Count int `json:"count"`
	// UserID is the dropped recipient.
	UserID string `json:"userid"`
}

// UnmarshalJSON decodes a forbidden_list entry, taking its code as either a
// JSON string or a JSON number.
func (f *ForbiddenRecipient) UnmarshalJSON(b []byte) error {
	var w struct {
		Code   json.RawMessage `json:"code"`
		Count  int             `json:"count"`
		UserID string          `json:"userid"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	code, err := stringOrNumber(w.Code)
	if err != nil {
		return fmt.Errorf("forbidden_list code: %w", err)
	}
	*f = ForbiddenRecipient{Code: code, Count: w.Count, UserID: w.UserID}
	return nil
}

// stringOrNumber returns a JSON string's value or a JSON number's text;
// a missing or null value is "".
func stringOrNumber(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&n); err != nil {
		return "", fmt.Errorf("want a string or a number, got %s", raw)
	}
	return n.String(), nil
}

// taskBody is the JSON body of getsendprogress and getsendresult.
type taskBody struct {
	AgentID int64 `json:"agent_id"`
	TaskID  int64 `json:"task_id"`
}

// recallBody is the JSON body of recall.
type recallBody struct {
	AgentID   int64 `json:"agent_id"`
	MsgTaskID int64 `json:"msg_task_id"`
}

// validateTask checks the arguments shared by the task calls; taskField is
// the task id's name in DingTalk's body.
func validateTask(token string, agentID, taskID int64, taskField string) error {
	if agentID <= 0 {
		return invalid("agent_id", "required: the app's agent id, > 0")
	}
	if taskID <= 0 {
		return invalid(taskField, "required: the task id asyncsend_v2 answered, > 0")
	}
	if token == "" {
		return invalid("access_token", "required")
	}
	return nil
}

// GetSendProgress asks DingTalk with getsendprogress how far the delivery
// of the work notification taskID, sent by the app agentID, has got. Only
// tasks of the last 24 hours are known. Invalid arguments are refused with
// a *ValidationError before any call.
func (c *Client) GetSendProgress(ctx context.Context, token string, agentID, taskID int64) (*SendProgress, error) {
	if err := validateTask(token, agentID, taskID, "task_id"); err != nil {
		return nil, err
	}
	var res struct {
		Progress SendProgress `json:"progress"`
	}
	body := taskBody{AgentID: agentID, TaskID: taskID}
	if err := c.call(ctx, http.MethodPost, PathGetSendProgress, tokenQuery(token), body, &res); err != nil {
		return nil, err
	}
	return &res.Progress, nil
}

// GetSendResult asks DingTalk with getsendresult who got the work
// notification taskID, sent by the app agentID, and who did not: the only
// place silent limits (ForbiddenDaily…) show. Only tasks of the last 24
// hours are known. Invalid arguments are refused with a *ValidationError
// before any call.
func (c *Client) GetSendResult(ctx context.Context, token string, agentID, taskID int64) (*SendResultDetail, error) {
	if err := validateTask(token, agentID, taskID, "task_id"); err != nil {
		return nil, err
	}
	var res struct {
		SendResult SendResultDetail `json:"send_result"`
	}
	body := taskBody{AgentID: agentID, TaskID: taskID}
	if err := c.call(ctx, http.MethodPost, PathGetSendResult, tokenQuery(token), body, &res); err != nil {
		return nil, err
	}
	return &res.SendResult, nil
}

// Recall withdraws the work notification taskID, sent by the app agentID,
// from its recipients with recall. DingTalk allows it within 24 hours of the
// send. Invalid arguments are refused with a *ValidationError (the task id's
// field is "msg_task_id", as in DingTalk's body) before any call.
func (c *Client) Recall(ctx context.Context, token string, agentID, taskID int64) error {
	if err := validateTask(token, agentID, taskID, "msg_task_id"); err != nil {
		return err
	}
	body := recallBody{AgentID: agentID, MsgTaskID: taskID}
	return c.call(ctx, http.MethodPost, PathRecall, tokenQuery(token), body, nil)
}
