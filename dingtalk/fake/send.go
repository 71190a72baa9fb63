package fake

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/dingq/dingq/dingtalk"
)

// asyncSendV2 answers POST /topapi/message/corpconversation/asyncsend_v2:
// token, then body, then the dingtalk package's own validation, then the
// app's agent id. An accepted send gets the next task id and is recorded,
// with the recipients the silent limits dropped. s.mu is held.
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
	dropped, userDrops := s.deliver(t.app, req, x.now)
	s.sent = append(s.sent, Sent{
		TaskID:    id,
		App:       t.app,
		Token:     t.value,
		Body:      slices.Clone(x.body),
		Request:   wire,
		Time:      x.now,
		Dropped:   dropped,
		userDrops: userDrops,
		results:   s.results,
	})
	return okReply(field{"task_id", id})
}

// deliver applies the silent limits to the recipients of an accepted send
// of app, in the call's order (users, then departments, then to_all_user):
// first the limit of recipients per minute, which keeps the first ones
// that fit; then, to each user it kept and unless Options.NoDailyLimits,
// the daily limits (same content, then DailyMessagesPerUser). It returns
// the recipients dropped with their codes, in the call's order, and how
// many of them are users (the first ones), and counts them in the stats.
// s.mu is held.
func (s *Server) deliver(app string, req dingtalk.SendRequest, now time.Time) (dropped []Drop, userDrops int) {
	recips := recipients(req)
	users := len(req.UserIDs)
	keep := s.admit(app, len(recips), now)
	var day *appDay
	var content uint64
	if !s.opts.NoDailyLimits && min(keep, users) > 0 {
		day = s.today(app, now)
		content = contentHash(req.Msg)
	}
	for i, r := range recips {
		var code string
		switch {
		case i >= keep:
			code = dingtalk.ForbiddenAppPerMinute
		case i < users && day != nil:
			code = day.deliver(r, content)
		}
		if code == "" {
			continue
		}
		dropped = append(dropped, Drop{ID: r, Code: code})
		if i < users {
			userDrops++
		}
		s.dropped[app]++
		s.droppedByCode[code]++
	}
	return dropped, userDrops
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
