package fake

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dingq/dingq/dingtalk"
)

// The new host's codes for a batch send's bad fields: InvalidParameter
// and the field, as DingTalk's gateway names them.
const (
	codeV1BadRobotCode = codeV1InvalidParameter + ".RobotCode"
	codeV1BadUserIDs   = codeV1InvalidParameter + ".UserIds"
	codeV1BadMsgKey    = codeV1InvalidParameter + ".MsgKey"
	codeV1BadMsgParam  = codeV1InvalidParameter + ".MsgParam"
)

// RobotBatch is one batch send an enterprise robot took
// (POST /v1.0/robot/oToMessages/batchSend): who was messaged, who is
// unknown, who was flow controlled.
type RobotBatch struct {
	// App is the id of the app whose token was used.
	App       string `json:"app"`
	RobotCode string `json:"robot_code"`
	MsgKey    string `json:"msg_key"`
	// MsgParam is the msgParam string as DingTalk received it: the
	// message's parameters, a JSON object encoded as a string.
	MsgParam string `json:"msg_param"`
	// Delivered are the users messaged, in the call's order.
	Delivered []string `json:"delivered"`
	// Invalid are the users answered in invalidStaffIdList: those whose
	// [Results.Fate] is FateInvalid.
	Invalid []string `json:"invalid"`
	// FlowControlled are the users answered in flowControlledStaffIdList:
	// they already had Options.RobotUserLimit messages from the robot code
	// in the last Options.RobotWindow.
	FlowControlled  []string  `json:"flow_controlled"`
	ProcessQueryKey string    `json:"process_query_key"`
	Time            time.Time `json:"time"`
}

// robotUser names what one user got from one enterprise robot.
type robotUser struct{ robotCode, user string }

// robotBatchBody is a batch send's body as DingTalk reads it. msgParam is
// kept raw, to tell a string (what DingTalk takes) from an object.
type robotBatchBody struct {
	RobotCode string          `json:"robotCode"`
	UserIDs   []string        `json:"userIds"`
	MsgKey    string          `json:"msgKey"`
	MsgParam  json.RawMessage `json:"msgParam"`
}

// robotBatchSend answers POST /v1.0/robot/oToMessages/batchSend: the header
// token, then the body (robotCode the app's robot code, 1 to
// dingtalk.MaxRobotBatchUsers userIds, msgKey and msgParam as the dingtalk
// package's RobotTemplate validates them); then each user is invalid, flow
// controlled or messaged. A call taken is recorded as a RobotBatch. s.mu
// is held.
func (s *Server) robotBatchSend(x *exchange) reply {
	t, bad := s.authorizeV1(x)
	if bad != nil {
		return *bad
	}
	var body robotBatchBody
	if err := json.Unmarshal(x.body, &body); err != nil {
		return v1Error(http.StatusBadRequest, codeV1InvalidParameter,
			`body: want {"robotCode","userIds":[...],"msgKey","msgParam"}: `+err.Error())
	}
	code := ""
	if app := s.app(t.app); app != nil {
		code = app.robotCode()
	}
	switch {
	case body.RobotCode == "":
		return v1Error(http.StatusBadRequest, codeV1BadRobotCode, "robotCode is mandatory for this action.")
	case body.RobotCode != code:
		return v1Error(http.StatusBadRequest, codeV1BadRobotCode,
			fmt.Sprintf("robotCode %q is not the robot of the access token's app", body.RobotCode))
	}
	if rp, refused := checkRobotUsers(body.UserIDs); refused {
		return rp
	}
	param, rp, refused := checkRobotMsg(body)
	if refused {
		return rp
	}

	b := RobotBatch{App: t.app, RobotCode: body.RobotCode, MsgKey: body.MsgKey, MsgParam: param,
		Delivered: []string{}, Invalid: []string{}, FlowControlled: []string{},
		ProcessQueryKey: randomHex(16), Time: x.now}
	for _, u := range body.UserIDs {
		switch {
		case s.results.Fate(u) == FateInvalid:
			b.Invalid = append(b.Invalid, u)
		case s.opts.RobotUserLimit > 0:
			w := windowOf(s.robotUsers, robotUser{body.RobotCode, u}, s.opts.RobotWindow)
			if w.total(x.now) >= s.opts.RobotUserLimit {
				b.FlowControlled = append(b.FlowControlled, u)
				continue
			}
			w.add(x.now, 1)
			b.Delivered = append(b.Delivered, u)
		default:
			b.Delivered = append(b.Delivered, u)
		}
	}
	s.robotBatches = append(s.robotBatches, b)
	return v1OK(
		field{"processQueryKey", b.ProcessQueryKey},
		field{"invalidStaffIdList", b.Invalid},
		field{"flowControlledStaffIdList", b.FlowControlled},
	)
}

// checkRobotUsers refuses userIds that are not 1 to MaxRobotBatchUsers
// user ids.
func checkRobotUsers(ids []string) (reply, bool) {
	switch {
	case len(ids) == 0:
		return v1Error(http.StatusBadRequest, codeV1BadUserIDs, "userIds is mandatory: 1 to "+
			strconv.Itoa(dingtalk.MaxRobotBatchUsers)+" user ids"), true
	case len(ids) > dingtalk.MaxRobotBatchUsers:
		return v1Error(http.StatusBadRequest, codeV1BadUserIDs,
			fmt.Sprintf("userIds: %d user ids, at most %d", len(ids), dingtalk.MaxRobotBatchUsers)), true
	}
	for i, id := range ids {
		if strings.TrimSpace(id) == "" {
			return v1Error(http.StatusBadRequest, codeV1BadUserIDs, fmt.Sprintf("userIds[%d]: empty user id", i)), true
		}
	}
	return reply{}, false
}

// checkRobotMsg checks msgKey and msgParam with the dingtalk package's own
// RobotTemplate.Validate, msgParam being a JSON string as DingTalk wants
// it, and returns that string.
func checkRobotMsg(body robotBatchBody) (string, reply, bool) {
	raw := json.RawMessage(strings.TrimSpace(string(body.MsgParam)))
	if string(raw) == "null" {
		raw = nil // missing, as Validate says
	}
	if len(raw) > 0 && raw[0] != '"' {
		// DingTalk's msgParam is a string; an object in its place is the
		// mistake RobotTemplate.Param exists to avoid.
		return "", v1Error(http.StatusBadRequest, codeV1BadMsgParam,
			"msgParam: want the parameters as a JSON string, got "+jsonKind(raw)), true
	}
	tpl := dingtalk.RobotTemplate{MsgKey: body.MsgKey, MsgParam: raw}
	if err := tpl.Validate(); err != nil {
		code := codeV1BadMsgParam
		var ve *dingtalk.ValidationError
		if errors.As(err, &ve) && ve.Field == "msgKey" {
			code = codeV1BadMsgKey
		}
		return "", v1Error(http.StatusBadRequest, code, err.Error()), true
	}
	var param string
	_ = json.Unmarshal(raw, &param) // Validate took it: a JSON string
	return param, reply{}, false
}

// jsonKind names the kind of JSON value raw starts: "an object", "an
// array", "a number"...
func jsonKind(raw []byte) string {
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}

// RobotBatches returns every batch send the enterprise robots took since
// New or Reset, in order.
func (s *Server) RobotBatches() []RobotBatch {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RobotBatch, len(s.robotBatches))
	for i, b := range s.robotBatches {
		b.Delivered = slices.Clone(b.Delivered)
		b.Invalid = slices.Clone(b.Invalid)
		b.FlowControlled = slices.Clone(b.FlowControlled)
		out[i] = b
	}
	return out
}
