package fake

import (
	"encoding/json"
	"time"

	"github.com/dingq/dingq/dingtalk"
)

// PathGetSendResult is DingTalk's endpoint that tells who got a work
// notification: POST with {"agent_id":N,"task_id":N} and the access token.
const PathGetSendResult = dingtalk.PathGetSendResult

// PathGetSendProgress is DingTalk's endpoint that tells how far the
// delivery of a work notification went: POST with
// {"agent_id":N,"task_id":N} and the access token.
const PathGetSendProgress = dingtalk.PathGetSendProgress

// PathRecall is DingTalk's endpoint that recalls a work notification: POST
// with {"agent_id":N,"msg_task_id":N} and the access token.
const PathRecall = dingtalk.PathRecall

// SendResultRetention is how long getsendresult, getsendprogress and
// recall know a task: DingTalk's last 24 hours.
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

// forbidden is one entry of forbidden_list: a recipient forbidden, and why.
type forbidden struct {
	Code   string `json:"code"`
	Count  int    `json:"count"`
	UserID string `json:"userid"`
}

// taskCall reads the body of a getsendresult, getsendprogress or recall
// call, {"agent_id":N,"<taskField>":N}, and returns the task it names. In
// order: token (88), body (400002), a missing agent_id or task (40035), an
// agent_id other than the app's (40056), then the task, which must be one
// of the app's sends of the last SendResultRetention with that agent_id
// (else 400002). s.mu is held.
func (s *Server) taskCall(x *exchange, taskField string) (*Sent, *reply) {
	t, bad := s.authorize(x)
	if bad != nil {
		return nil, bad
	}
	var q struct {
		AgentID   int64 `json:"agent_id"`
		TaskID    int64 `json:"task_id"`
		MsgTaskID int64 `json:"msg_task_id"`
	}
	if err := json.Unmarshal(x.body, &q); err != nil {
		return nil, &reply{code: codeBadParam, msg: "参数错误"}
	}
	agentID, taskID := q.AgentID, q.TaskID
	if taskField == "msg_task_id" {
		taskID = q.MsgTaskID
	}
	switch {
	case agentID == 0:
		rp := missingParam("agent_id")
		return nil, &rp
	case taskID == 0:
		rp := missingParam(taskField)
		return nil, &rp
	}
	if app := s.app(t.app); app != nil && app.AgentID != 0 && agentID != app.AgentID {
		return nil, &reply{code: codeBadAgentID, msg: "不合法的agentId"}
	}
	m := s.task(taskID)
	if m == nil || m.App != t.app || m.Request.AgentID != agentID || x.now.Sub(m.Time) > SendResultRetention {
		return nil, &reply{code: codeBadParam, msg: "参数错误: " + taskField}
	}
	return m, nil
}

// getSendResult answers POST /topapi/message/corpconversation/getsendresult
// for a task taskCall finds. Each user of userid_list a silent limit
// dropped is forbidden with the limit's code; each other one is reported
// as its Fate under the Results the task was sent with. Dropped
// departments and to_all_user follow, forbidden, named by their dept id
// and "@all". s.mu is held.
func (s *Server) getSendResult(x *exchange) reply {
	m, bad := s.taskCall(x, "task_id")
	if bad != nil {
		return *bad
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
	forbid := func(id, code string) {
		res.ForbiddenUserIDList = append(res.ForbiddenUserIDList, id)
		res.ForbiddenList = append(res.ForbiddenList, forbidden{Code: code, Count: 1, UserID: id})
	}
	// The dropped users are in the call's order, as are the users.
	userDrops, drops := m.Dropped[:m.userDrops], m.Dropped[m.userDrops:]
	for _, id := range m.Request.Request().UserIDs {
		if len(userDrops) > 0 && userDrops[0].ID == id {
			forbid(id, userDrops[0].Code)
			userDrops = userDrops[1:]
			continue
		}
		switch m.results.Fate(id) {
		case FateInvalid:
			res.InvalidUserIDList = append(res.InvalidUserIDList, id)
		case FateForbiddenDaily:
			forbid(id, dingtalk.ForbiddenDaily)
		case FateForbiddenSame:
			forbid(id, dingtalk.ForbiddenSameContent)
		case FateFailed:
			res.FailedUserIDList = append(res.FailedUserIDList, id)
		case FateRead:
			res.ReadUserIDList = append(res.ReadUserIDList, id)
		default:
			res.UnreadUserIDList = append(res.UnreadUserIDList, id)
		}
	}
	for _, d := range drops {
		// A dropped department (or "@all") is named by its id in place of
		// a userid, as the fake has no members to expand it to.
		forbid(d.ID, d.Code)
	}
	return okReply(field{"send_result", res})
}

// The status of getsendprogress.
const (
	progressNotStarted = 0
	progressProcessing = 1
	progressDone       = 2
)

// sendProgress is getsendprogress's "progress".
type sendProgress struct {
	ProgressInPercent int64 `json:"progress_in_percent"`
	Status            int   `json:"status"`
}

// getSendProgress answers POST
// /topapi/message/corpconversation/getsendprogress for a task taskCall
// finds: with Options.DeliveryTime d, a task sent e ago is e/d done (in
// whole percent, at most 100); its status is 2 (done) once e >= d, else 1
// (processing), or 0 (not started) while the percentage is 0. With no
// DeliveryTime every task is done. s.mu is held.
func (s *Server) getSendProgress(x *exchange) reply {
	m, bad := s.taskCall(x, "task_id")
	if bad != nil {
		return *bad
	}
	p := sendProgress{ProgressInPercent: 100, Status: progressDone}
	if d := s.opts.DeliveryTime; d > 0 {
		if e := max(x.now.Sub(m.Time), 0); e < d {
			p.ProgressInPercent = int64(e * 100 / d)
			p.Status = progressProcessing
			if p.ProgressInPercent == 0 {
				p.Status = progressNotStarted
			}
		}
	}
	return okReply(field{"progress", p})
}

// recall answers POST /topapi/message/corpconversation/recall for a task
// taskCall finds by its msg_task_id: ok, and the task is marked recalled
// at the call's time, unless it already was. s.mu is held.
func (s *Server) recall(x *exchange) reply {
	m, bad := s.taskCall(x, "msg_task_id")
	if bad != nil {
		return *bad
	}
	if m.Recalled.IsZero() {
		m.Recalled = x.now
		s.recalled++
	}
	return okReply()
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
