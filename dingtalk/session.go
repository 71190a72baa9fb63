package dingtalk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// Sessions (seed 001). The paths are the seed article's, not in DingTalk's
// published API; callers may use others.
const (
	DefaultPathGetSession    = "/topapi/v2/user/getsession"
	DefaultPathCreateSession = "/topapi/v2/im/create_session"
	DefaultPathCloseSession  = "/topapi/v2/im/close_session"
)

// The actions on a session, as [SessionRequest.ValidateFor] takes them.
const (
	SessionGet    = "get"
	SessionCreate = "create"
	SessionClose  = "close"
)

// SessionPaths are the paths of the three session endpoints, which
// DingTalk does not publish: an empty one is the seed article's
// (DefaultPathGetSession, DefaultPathCreateSession,
// DefaultPathCloseSession).
type SessionPaths struct {
	Get    string `json:"get"`
	Create string `json:"create"`
	Close  string `json:"close"`
}

// WithDefaults returns p with its empty paths set to the seed article's.
func (p SessionPaths) WithDefaults() SessionPaths {
	if p.Get == "" {
		p.Get = DefaultPathGetSession
	}
	if p.Create == "" {
		p.Create = DefaultPathCreateSession
	}
	if p.Close == "" {
		p.Close = DefaultPathCloseSession
	}
	return p
}

// SessionRequest is the JSON body of create_session and close_session, as
// seed 001 gives it. Every field is sent, empty or not.
type SessionRequest struct {
	SessionID string `json:"session_id"`
	AppKey    string `json:"app_key"`
	ChatID    string `json:"chatid"`
	UserID    string `json:"user_id"`
}

// Validate reports a request that cannot work for any action: none at
// all. The fields are sent as the caller gives them; ValidateFor checks
// what each action needs.
func (r *SessionRequest) Validate() error {
	if r == nil {
		return invalid("user_id", "required")
	}
	return nil
}

// ValidateFor reports what the action (SessionGet, SessionCreate or
// SessionClose) needs and r lacks: get and create a user_id (create's
// chatid may be empty, as in the seed), close a session_id. An unknown action is refused with Field "action".
func (r *SessionRequest) ValidateFor(action string) error {
	switch action {
	case SessionGet, SessionCreate, SessionClose:
	default:
		return invalid("action", "unknown action %q: %s, %s or %s", action, SessionGet, SessionCreate, SessionClose)
	}
	if r == nil {
		r = &SessionRequest{}
	}
	switch {
	case action != SessionClose && strings.TrimSpace(r.UserID) == "":
		return invalid("user_id", "required")
	case action == SessionClose && strings.TrimSpace(r.SessionID) == "":
		return invalid("session_id", "required to close a session")
	}
	return nil
}

// sessionPath returns path, or def when path is empty; a path not starting
// with "/", or holding a query or fragment, is refused.
func sessionPath(path, def string) (string, error) {
	if path == "" {
		return def, nil
	}
	if !strings.HasPrefix(path, "/") {
		return "", invalid("path", "%q must start with \"/\"", path)
	}
	if strings.ContainsAny(path, "?#") {
		return "", invalid("path", "%q must not hold a query or fragment", path)
	}
	return path, nil
}

// GetSession asks for the user's session with the seed's getsession
// (POST {"userid"}) at path, DefaultPathGetSession if path is empty, and
// returns the answer's result.session as DingTalk sent it ("null" if it
// said null). Invalid arguments are refused with a *ValidationError before
// any call.
func (c *Client) GetSession(ctx context.Context, token, path, userID string) (json.RawMessage, error) {
	if strings.TrimSpace(userID) == "" {
		return nil, invalid("userid", "required")
	}
	path, err := sessionPath(path, DefaultPathGetSession)
	if err != nil {
		return nil, err
	}
	if token == "" {
		return nil, invalid("access_token", "required")
	}
	var res struct {
		Result struct {
			Session json.RawMessage `json:"session"`
		} `json:"result"`
	}
	body := struct {
		UserID string `json:"userid"`
	}{userID}
	if err := c.call(ctx, http.MethodPost, path, tokenQuery(token), body, &res); err != nil {
		return nil, err
	}
	if len(res.Result.Session) == 0 {
		return nil, &TransportError{Method: http.MethodPost, Path: path, Err: errors.New("malformed answer: no result.session")}
	}
	return res.Result.Session, nil
}

// CreateSession creates a session with the seed's create_session at path,
// DefaultPathCreateSession if path is empty, and returns the answer's
// result.session_id (a string or a number in the answer). r needs a
// user_id and a chatid. Invalid arguments are refused with a
// *ValidationError before any call.
func (c *Client) CreateSession(ctx context.Context, token, path string, r *SessionRequest) (sessionID string, err error) {
	if err := r.ValidateFor(SessionCreate); err != nil {
		return "", err
	}
	path, err = sessionPath(path, DefaultPathCreateSession)
	if err != nil {
		return "", err
	}
	if token == "" {
		return "", invalid("access_token", "required")
	}
	var res struct {
		Result struct {
			SessionID json.RawMessage `json:"session_id"`
		} `json:"result"`
	}
	if err := c.call(ctx, http.MethodPost, path, tokenQuery(token), r, &res); err != nil {
		return "", err
	}
	id, err := stringOrNumber(res.Result.SessionID)
	if err != nil || id == "" {
		return "", &TransportError{Method: http.MethodPost, Path: path, Err: errors.New("malformed answer: no result.session_id")}
	}
	return id, nil
}

// CloseSession closes a session with the seed's close_session at path,
// DefaultPathCloseSession if path is empty. r needs a user_id and a
// session_id. The session is closed when DingTalk answers errcode 0 and
// does not say success false (top-level "success", or "result" as a bool
// or as {"success":…}); success false comes back as an *Error. Invalid
// arguments are refused with a *ValidationError before any call.
func (c *Client) CloseSession(ctx context.Context, token, path string, r *SessionRequest) error {
	if err := r.ValidateFor(SessionClose); err != nil {
		return err
	}
	path, err := sessionPath(path, DefaultPathCloseSession)
	if err != nil {
		return err
	}
	if token == "" {
		return invalid("access_token", "required")
	}
	var res struct {
		Success   *bool           `json:"success"`
		Result    json.RawMessage `json:"result"`
		RequestID string          `json:"request_id"`
	}
	if err := c.call(ctx, http.MethodPost, path, tokenQuery(token), r, &res); err != nil {
		return err
	}
	if res.Success != nil && !*res.Success || resultFalse(res.Result) {
		return &Error{HTTPStatus: http.StatusOK, Path: path, Message: "success is false", RequestID: res.RequestID}
	}
	return nil
}

// resultFalse reports whether a "result" is false or {"success":false}.
func resultFalse(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return false
	}
	if raw[0] != '{' {
		return string(raw) == "false"
	}
	var r struct {
		Success *bool `json:"success"`
	}
	return json.Unmarshal(raw, &r) == nil && r.Success != nil && !*r.Success
}
