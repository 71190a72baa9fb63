package dingtalk

import (
	"context"
	"net/http"
	"strconv"
	"strings"
)

// Paths of the work-notification endpoints, exported for fakes and tests.
const (
	PathAsyncSendV2     = "/topapi/message/corpconversation/asyncsend_v2"
	PathGetSendProgress = "/topapi/message/corpconversation/getsendprogress"
	PathGetSendResult   = "/topapi/message/corpconversation/getsendresult"
	PathRecall          = "/topapi/message/corpconversation/recall"
)

// The forbidden_list codes of getsendresult: why DingTalk silently dropped
// a recipient of an accepted work notification.
const (
	// ForbiddenAppPerMinute: over the app's 5,000 recipients a minute.
	ForbiddenAppPerMinute = "143103"
	// ForbiddenCorpPerMinute: over the company's 5,000 recipients a minute.
	ForbiddenCorpPerMinute = "143104"
	// ForbiddenDaily: the user already got 500 of the app's messages today.
	ForbiddenDaily = "143105"
	// ForbiddenSameContent: the user already got this content today.
	ForbiddenSameContent = "143106"
)

// Limits of one asyncsend_v2 call.
const (
	MaxUserIDs = 100
	MaxDeptIDs = 20
)

// SendRequest is one work notification (工作通知) to send with asyncsend_v2.
// Give UserIDs, DeptIDs or ToAllUser (at least one).
type SendRequest struct {
	AgentID   int64
	UserIDs   []string
	DeptIDs   []string
	ToAllUser bool
	Msg       Message
}

// Validate reports the first thing DingTalk would refuse in r. Field names
// are DingTalk's: "agent_id", "userid_list", "msg.text.content"…
func (r *SendRequest) Validate() error {
	if r.AgentID <= 0 {
		return invalid("agent_id", "required: the app's agent id, > 0")
	}
	if err := ValidateRecipients(r.UserIDs, r.DeptIDs, r.ToAllUser); err != nil {
		return err
	}
	if err := r.Msg.Validate(); err != nil {
		return prefixed("msg", err)
	}
	return nil
}

// ValidateRecipients checks one call's recipients: at least one form given,
// at most MaxUserIDs users and MaxDeptIDs departments, no empty id and no
// comma inside an id.
func ValidateRecipients(users, depts []string, toAll bool) error {
	if len(users) == 0 && len(depts) == 0 && !toAll {
		return invalid("userid_list", "required: give userid_list, dept_id_list or to_all_user")
	}
	if len(users) > MaxUserIDs {
		return invalid("userid_list", "%d user ids, at most %d in one call", len(users), MaxUserIDs)
	}
	if len(depts) > MaxDeptIDs {
		return invalid("dept_id_list", "%d department ids, at most %d in one call", len(depts), MaxDeptIDs)
	}
	if err := validateIDs("userid_list", users); err != nil {
		return err
	}
	return validateIDs("dept_id_list", depts)
}

func validateIDs(field string, ids []string) error { return ValidateIDs(field, ids) }

// ValidateIDs checks a list of user or department ids of any length: no
// empty id, no comma or white space inside one, none over 64 bytes. The
// error names the list and the index, as in "userid_list[3]".
func ValidateIDs(field string, ids []string) error {
	for i, id := range ids {
		if len(id) > 0 && len(id) <= 64 && !strings.ContainsAny(id, ", \t\r\n") {
			continue
		}
		f := field + "[" + strconv.Itoa(i) + "]"
		if strings.TrimSpace(id) == "" {
			return invalid(f, "empty id")
		}
		if strings.ContainsAny(id, ", \t\r\n") {
			return invalid(f, "id %q contains a comma or white space", id)
		}
		return invalid(f, "id is %d bytes, at most 64", len(id))
	}
	return nil
}

// SendWire is asyncsend_v2's JSON body exactly as DingTalk receives it.
type SendWire struct {
	AgentID    int64   `json:"agent_id"`
	UserIDList string  `json:"userid_list,omitempty"`
	DeptIDList string  `json:"dept_id_list,omitempty"`
	ToAllUser  bool    `json:"to_all_user,omitempty"`
	Msg        Message `json:"msg"`
}

// Wire returns r as DingTalk's JSON body.
func (r *SendRequest) Wire() SendWire {
	return SendWire{
		AgentID:    r.AgentID,
		UserIDList: strings.Join(r.UserIDs, ","),
		DeptIDList: strings.Join(r.DeptIDs, ","),
		ToAllUser:  r.ToAllUser,
		Msg:        r.Msg,
	}
}

// Request turns a wire body back into a SendRequest (used by fakes).
func (w SendWire) Request() SendRequest {
	return SendRequest{AgentID: w.AgentID, UserIDs: splitList(w.UserIDList),
		DeptIDs: splitList(w.DeptIDList), ToAllUser: w.ToAllUser, Msg: w.Msg}
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// SendResult is DingTalk's answer to an accepted work notification.
// Accepted is not delivered: delivery is asynchronous, and
// getsendresult tells later who got it.
type SendResult struct {
	TaskID    int64  `json:"task_id"`
	RequestID string `json:"request_id"`
}

// SendWorkNotification validates req and sends it with asyncsend_v2 using
// the access token. An invalid req is refused with a *ValidationError before
// any call.
func (c *Client) SendWorkNotification(ctx context.Context, token string, req *SendRequest) (*SendResult, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if token == "" {
		return nil, invalid("access_token", "required")
	}
	var res SendResult
	if err := c.call(ctx, http.MethodPost, PathAsyncSendV2, tokenQuery(token), req.Wire(), &res); err != nil {
		return nil, err
	}
	return &res, nil
}
