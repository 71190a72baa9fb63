package fake

import (
	"encoding/json"
	"time"

	"github.com/dingq/dingq/dingtalk"
)

// PathGetSendResult is DingTalk's endpoint that tells who got a work
// notification: POST with {"agent_id":N,"task_id":N} and the access token.
const PathGetSendResult = dingtalk.PathGetSendResult

// SendResultRetention is how long getsendresult knows a task: DingTalk's
// last 24 hours.
const SendResultRetention = 24 * time.Hour

// sendResult is getsendresult's "send_result", lists in DingTalk's order.
type sendResult struct {
	InvalidUserIDList   []string    `json:"invalid_user_id_list"`
	ForbiddenUserIDList []string    `json:"forbidden_user_id_list"`
	FailedUserIDList    []string    `json:"failed_user_id_list"`
	ReadUserIDList      []string    `json:"read_user_id_list"`
	UnreadUserIDList    []string    `json:"unread_user_id_list"`
	InvalidDeptIDList   []string    `json:"invalid_dept_id_list"`
	ForbiddenList       []forbidden `json:"forbidden_list"`
}

// forbidden is one recipient a silent limit dropped, with the limit's code.
type forbidden struct {
	Code   string `json:"code"`
	Count  int    `json:"count"`
	UserID string `json:"userid"`
}

// getSendResult answers POST /topapi/message/corpconversation/getsendresult:
// token, then body, then the app's agent id, then the task, which must be
// one of the app's sends of the last SendResultRetention with that
// agent_id (else 400002). The delivered users are unread (nobody reads in
// the fake); the recipients the limit of recipients per minute dropped are
// forbidden, with code "143103". s.mu is held.
func (s *Server) getSendResult(x *exchange) reply {
	t, bad := s.authorize(x)
	if bad != nil {
		return *bad
	}
	var q struct {
		AgentID int64 `json:"agent_id"`
		TaskID  int64 `json:"task_id"`
	}
	if err := json.Unmarshal(x.body, &q); err != nil {
		return reply{code: codeBadParam, msg: "参数错误"}
	}
	switch {
	case q.AgentID == 0:
		return missingParam("agent_id")
	case q.TaskID == 0:
		return missingParam("task_id")
	}
	if app := s.app(t.app); app != nil && app.AgentID != 0 && q.AgentID != app.AgentID {
		return reply{code: codeBadAgentID, msg: "不合法的agentId"}
	}
	m := s.task(q.TaskID)
	if m == nil || m.App != t.app || m.Request.AgentID != q.AgentID || x.now.Sub(m.Time) > SendResultRetention {
		return reply{code: codeBadParam, msg: "参数错误: task_id"}
	}

	res := sendResult{
		InvalidUserIDList:   []string{},
		ForbiddenUserIDList: []string{},
		FailedUserIDList:    []string{},
		ReadUserIDList:      []string{},
		UnreadUserIDList:    []string{},
		InvalidDeptIDList:   []string{},
		ForbiddenList:       []forbidden{},
	}
	// Recipients are kept first to last, users first: the delivered users
	// are the first ones of userid_list.
	users := m.Request.Request().UserIDs
	kept := len(recipients(m.Request)) - len(m.Dropped)
	res.UnreadUserIDList = append(res.UnreadUserIDList, users[:min(kept, len(users))]...)
	for _, id := range m.Dropped {
		// A dropped department (or "@all") is named by its id in place of
		// a userid, as the fake has no members to expand it to.
		res.ForbiddenUserIDList = append(res.ForbiddenUserIDList, id)
		res.ForbiddenList = append(res.ForbiddenList, forbidden{Code: codeRecipientsPerMinute, Count: 1, UserID: id})
	}
	return okReply(field{"send_result", res})
}

// task returns the recorded send with task id id, or nil. Task ids follow
// the order of s.sent from FirstTaskID. s.mu is held.
func (s *Server) task(id int64) *Sent {
	i := id - FirstTaskID
	if i < 0 || i >= int64(len(s.sent)) || s.sent[i].TaskID != id {
		return nil
	}
	return &s.sent[i]
}
