package dingtalk

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// PathRobotBatchSend is the enterprise robot's one-to-one batch send, on
// the new host (api.dingtalk.com).
const PathRobotBatchSend = "/v1.0/robot/oToMessages/batchSend"

// MaxRobotBatchUsers is how many users one batch send takes.
const MaxRobotBatchUsers = 20

// robotParams names the parameters each message key of an enterprise robot
// requires, as DingTalk's message-type table lists them.
var robotParams = map[string][]string{
	"sampleText":        {"content"},
	"sampleMarkdown":    {"title", "text"},
	"sampleImageMsg":    {"photoURL"},
	"sampleLink":        {"text", "title", "picUrl", "messageUrl"},
	"sampleActionCard":  {"title", "text", "singleTitle", "singleURL"},
	"sampleActionCard2": {"title", "text", "actionTitle1", "actionURL1", "actionTitle2", "actionURL2"},
	"sampleActionCard3": {"title", "text", "actionTitle1", "actionURL1", "actionTitle2", "actionURL2", "actionTitle3", "actionURL3"},
	"sampleActionCard4": {"title", "text", "actionTitle1", "actionURL1", "actionTitle2", "actionURL2", "actionTitle3", "actionURL3", "actionTitle4", "actionURL4"},
	"sampleActionCard5": {"title", "text", "actionTitle1", "actionURL1", "actionTitle2", "actionURL2", "actionTitle3", "actionURL3", "actionTitle4", "actionURL4", "actionTitle5", "actionURL5"},
	"sampleActionCard6": {"title", "text", "buttonTitle1", "buttonUrl1", "buttonTitle2", "buttonUrl2"},
	"sampleAudio":       {"mediaId", "duration"},
	"sampleFile":        {"mediaId", "fileName", "fileType"},
	"sampleVideo":       {"duration", "videoMediaId", "videoType", "picMediaId"},
}

// RobotMsgKeys lists the message keys an enterprise robot sends, sorted.
func RobotMsgKeys() []string {
	keys := make([]string, 0, len(robotParams))
	for k := range robotParams {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// RobotTemplate is an enterprise robot's message: a message key (msgKey,
// "sampleText", "sampleMarkdown"…) and its parameters. MsgParam is a JSON
// object; DingTalk wants it as a string, and a string holding the object
// is taken too.
type RobotTemplate struct {
	MsgKey   string          `json:"msgKey"`
	MsgParam json.RawMessage `json:"msgParam"`
}

// RobotTextTemplate is a plain-text message of an enterprise robot.
func RobotTextTemplate(content string) RobotTemplate {
	b, _ := marshalJSON(map[string]string{"content": content})
	return RobotTemplate{MsgKey: "sampleText", MsgParam: bytes.TrimSpace(b)}
}

// params decodes MsgParam into its object, unwrapping a string.
func (t *RobotTemplate) params() (map[string]any, error) {
	raw := bytes.TrimSpace(t.MsgParam)
	if len(raw) == 0 {
		return nil, invalid("msgParam", "required: a JSON object with the parameters of msgKey %q", t.MsgKey)
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, invalid("msgParam", "not a JSON string: %v", err)
		}
		raw = []byte(s)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, invalid("msgParam", "want a JSON object, got %.40q", raw)
	}
	return m, nil
}

// Validate reports a message DingTalk would refuse: an unknown msgKey, or
// msgParam not an object with the key's required parameters.
func (t *RobotTemplate) Validate() error {
	need, ok := robotParams[t.MsgKey]
	if !ok {
		if t.MsgKey == "" {
			return invalid("msgKey", "required: one of %s", strings.Join(RobotMsgKeys(), ", "))
		}
		return invalid("msgKey", "unknown %q: one of %s", t.MsgKey, strings.Join(RobotMsgKeys(), ", "))
	}
	m, err := t.params()
	if err != nil {
		return err
	}
	for _, k := range need {
		v, ok := m[k]
		if !ok || v == nil || v == "" {
			return invalid("msgParam."+k, "required by msgKey %s", t.MsgKey)
		}
	}
	return nil
}

// Param returns MsgParam as the JSON string DingTalk takes.
// The object is compacted, its keys kept in their order.
func (t *RobotTemplate) Param() (string, error) {
	if _, err := t.params(); err != nil {
		return "", err
	}
	raw := bytes.TrimSpace(t.MsgParam)
	if raw[0] == '"' {
		var s string
		_ = json.Unmarshal(raw, &s) // params decoded it
		raw = []byte(s)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return "", invalid("msgParam", "cannot be encoded: %v", err)
	}
	return b.String(), nil
}

// RobotBatchRequest is one batch send of an enterprise robot: the same
// message to at most MaxRobotBatchUsers users, one to one.
type RobotBatchRequest struct {
	// RobotCode is the robot's code (for an app's robot, usually its app
	// key).
	RobotCode string
	UserIDs   []string
	Msg       RobotTemplate
}

// Validate reports a request DingTalk would refuse, naming the field as
// DingTalk spells it.
func (r *RobotBatchRequest) Validate() error {
	switch {
	case strings.TrimSpace(r.RobotCode) == "":
		return invalid("robotCode", "required: the enterprise robot's code")
	case len(r.UserIDs) == 0:
		return invalid("userIds", "required: at least one user id")
	case len(r.UserIDs) > MaxRobotBatchUsers:
		return invalid("userIds", "%d user ids, at most %d in one call", len(r.UserIDs), MaxRobotBatchUsers)
	}
	for i, id := range r.UserIDs {
		if strings.TrimSpace(id) == "" || strings.ContainsAny(id, ",\n") {
			return invalid("userIds["+strconv.Itoa(i)+"]", "not a user id: %q", id)
		}
	}
	return r.Msg.Validate()
}

type robotBatchBody struct {
	RobotCode string   `json:"robotCode"`
	UserIDs   []string `json:"userIds"`
	MsgKey    string   `json:"msgKey"`
	MsgParam  string   `json:"msgParam"`
}

// RobotBatchResult is DingTalk's answer to a batch send. The users it
// names in neither list were accepted.
type RobotBatchResult struct {
	// ProcessQueryKey identifies the send, to ask for its read status or
	// recall it.
	ProcessQueryKey string `json:"processQueryKey"`
	// InvalidStaffIDs are user ids DingTalk does not know.
	InvalidStaffIDs []string `json:"invalidStaffIdList"`
	// FlowControlledStaffIDs are users DingTalk did not message because
	// the robot sent them too much: they may be sent again later.
	FlowControlledStaffIDs []string `json:"flowControlledStaffIdList"`
}

// RobotBatchSend sends r's message to each of its users one to one, with
// an access token of the new host (GetAccessTokenV1).
func (c *Client) RobotBatchSend(ctx context.Context, token string, r *RobotBatchRequest) (*RobotBatchResult, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	param, err := r.Msg.Param()
	if err != nil {
		return nil, err
	}
	body := &robotBatchBody{RobotCode: r.RobotCode, UserIDs: r.UserIDs, MsgKey: r.Msg.MsgKey, MsgParam: param}
	var res RobotBatchResult
	if err := c.callV1(ctx, http.MethodPost, PathRobotBatchSend, token, body, &res); err != nil {
		return nil, err
	}
	return &res, nil
}
