package fake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/dingq/dingq/dingtalk"
)

// The errcodes of the session endpoints.
const (
	codeUnknownUser = 60121 // 找不到该用户
)

// SessionPaths are the paths of the session endpoints, which DingTalk does
// not publish (dingtalk-api.md, "Sessions"): the fake implements the
// contract dingq was given, at these paths (the seed article's where
// empty). All three take POST.
type SessionPaths = dingtalk.SessionPaths

// addSessionRoutes adds the session endpoints to routes at the paths of
// Options.SessionPaths. It panics on a path that does not start with "/",
// that starts with the admin prefix "/_fake/", or that another endpoint
// already has.
func (s *Server) addSessionRoutes(routes map[string]route) {
	p := s.opts.SessionPaths
	for _, ep := range []struct {
		name, path string
		handle     func(x *exchange) reply
	}{
		{"Get", p.Get, s.getSession},
		{"Create", p.Create, s.createSession},
		{"Close", p.Close, s.closeSession},
	} {
		switch {
		case !strings.HasPrefix(ep.path, "/"):
			panic(fmt.Sprintf("fake: New: SessionPaths.%s %q must start with /", ep.name, ep.path))
		case strings.HasPrefix(ep.path, adminPrefix):
			panic(fmt.Sprintf("fake: New: SessionPaths.%s %q is under the admin prefix %s", ep.name, ep.path, adminPrefix))
		}
		if _, taken := routes[ep.path]; taken {
			panic(fmt.Sprintf("fake: New: SessionPaths.%s %q is another endpoint's path", ep.name, ep.path))
		}
		routes[ep.path] = route{method: http.MethodPost, handle: ep.handle}
	}
}

// session is one session create_session opened.
type session struct {
	req    dingtalk.SessionRequest
	opened time.Time
	closed bool
}

// sessionKey names a session: the app whose token created it, and its id.
type sessionKey struct{ app, id string }

// SessionOf returns the session getsession answers for userID: the same
// string for the same user, whatever the app or the time.
func SessionOf(userID string) string {
	return fmt.Sprintf("sess%016x", mix64(fnv1a(fnv1a(fnvOffset, "session:"), userID)))
}

// unknownUser answers 60121 for a user whose [Results.Fate] is
// FateInvalid under the Results in force; nil for any other. s.mu is held.
func (s *Server) unknownUser(userID string) *reply {
	if s.results.Fate(userID) == FateInvalid {
		return &reply{code: codeUnknownUser, msg: "找不到该用户"}
	}
	return nil
}

// getSession answers getsession, {"userid":ID}: token (88), body
// (400002), a missing userid (40035), an unknown user (60121), else
// "result":{"session":SessionOf(ID)}. s.mu is held.
func (s *Server) getSession(x *exchange) reply {
	if _, bad := s.authorize(x); bad != nil {
		return *bad
	}
	var q struct {
		UserID string `json:"userid"`
	}
	if err := json.Unmarshal(x.body, &q); err != nil {
		return reply{code: codeBadParam, msg: "参数错误"}
	}
	if q.UserID == "" {
		return missingParam("userid")
	}
	if rp := s.unknownUser(q.UserID); rp != nil {
		return *rp
	}
	return okReply(field{"result", struct {
		Session string `json:"session"`
	}{SessionOf(q.UserID)}})
}

// createSession answers create_session, a dingtalk.SessionRequest: token
// (88), body (400002), a missing user_id (40035), an unknown user (60121),
// a session_id the app already has open (400002 "会话已存在"), else
// "result":{"session_id":ID}, the one given or, if none, a new one. A
// closed session's id may be opened again. s.mu is held.
func (s *Server) createSession(x *exchange) reply {
	t, bad := s.authorize(x)
	if bad != nil {
		return *bad
	}
	var req dingtalk.SessionRequest
	if err := json.Unmarshal(x.body, &req); err != nil {
		return reply{code: codeBadParam, msg: "参数错误"}
	}
	if req.UserID == "" {
		return missingParam("user_id")
	}
	if rp := s.unknownUser(req.UserID); rp != nil {
		return *rp
	}
	if req.SessionID == "" {
		for req.SessionID == "" || s.sessions[sessionKey{t.app, req.SessionID}] != nil {
			req.SessionID = "sess" + randomHex(8)
		}
	}
	key := sessionKey{t.app, req.SessionID}
	if old := s.sessions[key]; old != nil && !old.closed {
		return reply{code: codeBadParam, msg: "会话已存在"}
	}
	s.sessions[key] = &session{req: req, opened: x.now}
	return okReply(field{"result", struct {
		SessionID string `json:"session_id"`
	}{req.SessionID}})
}

// closeSession answers close_session, a dingtalk.SessionRequest: token
// (88), body (400002), a missing session_id (40035), a session the app
// does not have open (400002 "会话不存在或已关闭"), else
// "result":{"success":true}. s.mu is held.
func (s *Server) closeSession(x *exchange) reply {
	t, bad := s.authorize(x)
	if bad != nil {
		return *bad
	}
	var req dingtalk.SessionRequest
	if err := json.Unmarshal(x.body, &req); err != nil {
		return reply{code: codeBadParam, msg: "参数错误"}
	}
	if req.SessionID == "" {
		return missingParam("session_id")
	}
	ss := s.sessions[sessionKey{t.app, req.SessionID}]
	if ss == nil || ss.closed {
		return reply{code: codeBadParam, msg: "会话不存在或已关闭"}
	}
	ss.closed = true
	return okReply(field{"result", struct {
		Success bool `json:"success"`
	}{true}})
}

// openSessions counts the sessions open. s.mu is held.
func (s *Server) openSessions() int {
	n := 0
	for _, ss := range s.sessions {
		if !ss.closed {
			n++
		}
	}
	return n
}
