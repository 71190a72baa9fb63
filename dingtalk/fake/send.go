package fake

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/dingq/dingq/dingtalk"
)

// asyncSendV2 answers POST /topapi/message/corpconversation/asyncsend_v2:
// token, then body, then the dingtalk package's own validation, then the
// app's agent id. An accepted send gets the next task id and is recorded,
// with the recipients the limit of recipients per minute dropped. s.mu is
// held.
func (s *Server) asyncSendV2(x *exchange) reply {
	t, bad := s.authorize(x)
	if bad != nil {
		return *bad
	}
	var wire dingtalk.SendWire
	if err := json.Unmarshal(x.body, &wire); err != nil {
		return reply{code: codeBadParam, msg: "参数错误"}
	}
	req := wire.Request()
	if err := req.Validate(); err != nil {
		return validationReply(err)
	}
	if app := s.app(t.app); app != nil && app.AgentID != 0 && wire.AgentID != app.AgentID {
		return reply{code: codeBadAgentID, msg: "不合法的agentId"}
	}

	id := s.nextTask
	s.nextTask++
	s.sent = append(s.sent, Sent{
		TaskID:  id,
		App:     t.app,
		Token:   t.value,
		Body:    slices.Clone(x.body),
		Request: wire,
		Time:    x.now,
		Dropped: s.admit(t.app, recipients(wire), x.now),
	})
	return okReply(field{"task_id", id})
}

// validationReply turns a refusal of dingtalk's Validate into DingTalk's
// answer: a missing field is 40035, anything else 400002.
func validationReply(err error) reply {
	var ve *dingtalk.ValidationError
	if !errors.As(err, &ve) {
		return reply{code: codeBadParam, msg: "参数错误: " + err.Error()}
	}
	if strings.HasPrefix(ve.Reason, "required") {
		return missingParam(ve.Field)
	}
	return reply{code: codeBadParam, msg: "参数错误: " + ve.Field + ": " + ve.Reason}
}
