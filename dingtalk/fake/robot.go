package fake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/dingq/dingq/dingtalk"
)

// Codes the fake answers a custom robot's webhook with. DingTalk's robot
// documentation gives them; dingtalk-api.md names only "send too fast".
const (
	// codeRobotTooFast: more than RobotMessagesPerMinute in a minute
	// (Options.RobotWindow); the robot is blocked for dingtalk.RobotBlock
	// (Options.RobotBlock).
	codeRobotTooFast = 410100
	// codeRobotSign: a signing robot's sign or timestamp is missing, wrong
	// or more than an hour off.
	codeRobotSign = 310000
	// codeRobotToken: no robot has this access_token.
	codeRobotToken = 300001
)

// robotSignWindow is how far a signing robot's timestamp may be from now.
const robotSignWindow = time.Hour

// robot is a custom group robot the fake knows and what it took.
type robot struct {
	secret       string
	sent         *window   // messages in the last Options.RobotWindow
	blockedUntil time.Time // zero if not blocked
	uuids        map[string]bool
}

// RobotSent is one message a custom robot took.
type RobotSent struct {
	// Robot is the robot's access token: the fake's caller configured it.
	// It is a secret, never shown by the admin endpoints.
	Robot string `json:"-"`
	// RobotID names the robot without showing its token: the first 8 hex
	// digits of the SHA-256 of the token ([RobotID]), so a test can tell
	// which of a group's robots a message went through.
	RobotID string                 `json:"robot"`
	Message *dingtalk.RobotMessage `json:"message"`
	Time    time.Time              `json:"time"`
}

// RobotID returns the id [RobotSent.RobotID] gives the custom robot whose
// webhook's access token is token: the first 8 hex digits of its SHA-256.
func RobotID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:4])
}

// AddRobot makes a custom group robot known to the fake: its webhook's
// access token and, if it signs, its secret. A robot added again forgets
// what it sent.
func (s *Server) AddRobot(r dingtalk.Robot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.robots[r.Token] = &robot{secret: r.Secret, sent: &window{span: s.opts.RobotWindow}, uuids: map[string]bool{}}
}

// RobotSent returns every message the custom robots took since New or
// Reset, in order; a message repeated with its msgUuid is there once.
func (s *Server) RobotSent() []RobotSent {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RobotSent, len(s.robotSent))
	copy(out, s.robotSent)
	return out
}

// robotSend answers a custom robot's webhook as DingTalk does: the token
// must be a robot's; a signing robot's timestamp must be within an hour
// and its sign right; a robot takes RobotMessagesPerMinute messages in any
// Options.RobotWindow (a minute) and is then blocked for
// Options.RobotBlock (dingtalk.RobotBlock); a msgUuid seen before is taken
// again without a second message. s.mu is held.
func (s *Server) robotSend(x *exchange) reply {
	rb := s.robots[x.token]
	if x.token == "" || rb == nil {
		return reply{code: codeRobotToken, msg: "token is not exist"}
	}
	if rb.secret != "" {
		q := x.req.URL.Query()
		ts, err := strconv.ParseInt(q.Get("timestamp"), 10, 64)
		if err != nil {
			return reply{code: codeRobotSign, msg: "invalid timestamp"}
		}
		if d := x.now.Sub(time.UnixMilli(ts)); d > robotSignWindow || d < -robotSignWindow {
			return reply{code: codeRobotSign, msg: "invalid timestamp"}
		}
		if !hmac.Equal([]byte(q.Get("sign")), []byte(dingtalk.RobotSign(rb.secret, ts))) {
			return reply{code: codeRobotSign, msg: "sign not match"}
		}
	}
	if x.now.Before(rb.blockedUntil) {
		return reply{code: codeRobotTooFast, msg: "send too fast, exceed 20 times per minute"}
	}
	var m dingtalk.RobotMessage
	if err := json.Unmarshal(x.body, &m); err != nil {
		return reply{code: codeBadParam, msg: "参数错误: " + err.Error()}
	}
	if err := m.Validate(); err != nil {
		return reply{code: codeBadParam, msg: "参数错误: " + err.Error()}
	}
	if m.MsgUUID != "" && rb.uuids[m.MsgUUID] {
		return okReply() // the retry of a message taken: taken once
	}
	if rb.sent.total(x.now) >= dingtalk.RobotMessagesPerMinute {
		rb.blockedUntil = x.now.Add(s.opts.RobotBlock)
		return reply{code: codeRobotTooFast, msg: "send too fast, exceed 20 times per minute"}
	}
	rb.sent.add(x.now, 1)
	if m.MsgUUID != "" {
		rb.uuids[m.MsgUUID] = true
	}
	s.robotSent = append(s.robotSent, RobotSent{Robot: x.token, RobotID: RobotID(x.token), Message: &m, Time: x.now})
	return okReply()
}

// resetRobots forgets what every robot sent, its block included, the
// enterprise robots' batch sends and what each user got from them. s.mu
// is held.
func (s *Server) resetRobots() {
	for _, rb := range s.robots {
		rb.sent.clear()
		rb.blockedUntil = time.Time{}
		rb.uuids = map[string]bool{}
	}
	s.robotSent = nil
	s.robotBatches = nil
	s.robotUsers = map[robotUser]*window{}
}
