package fake

import (
	"time"
)

// token is an access token the fake issued.
type token struct {
	value   string
	app     string // App.ID() of the app it belongs to
	expires time.Time
	revoked bool
}

func (t *token) valid(now time.Time) bool { return !t.revoked && now.Before(t.expires) }

// getToken answers GET /gettoken, in the appkey/appsecret form or the
// legacy corpid/corpsecret form. Every call naming an appkey or corpid
// counts as a fetch for it, successful or not. s.mu is held.
func (s *Server) getToken(x *exchange) reply {
	q := x.req.URL.Query()
	key, secret := q.Get("appkey"), q.Get("appsecret")
	corp, corpSecret := q.Get("corpid"), q.Get("corpsecret")
	s.countFetch(x)

	var app *App
	switch {
	case key != "" || (secret != "" && corp == ""):
		if key == "" {
			return missingParam("appkey")
		}
		if secret == "" {
			return missingParam("appsecret")
		}
		if app = s.byKey[key]; app == nil || app.Secret != secret {
			return reply{code: codeBadAppSecret, msg: "不合法的appKey或appSecret"}
		}
	case corp != "" || corpSecret != "":
		if corp == "" {
			return missingParam("corpid")
		}
		if corpSecret == "" {
			return missingParam("corpsecret")
		}
		if app = s.byCorp[corp]; app == nil || app.CorpSecret != corpSecret {
			return reply{code: codeBadCorpSecret, msg: "不合法的corpid或corpsecret"}
		}
	default:
		return missingParam("appkey")
	}

	t := s.issueToken(app.ID(), x.now)
	return okReply(
		field{"access_token", t.value},
		field{"expires_in", int64(t.expires.Sub(x.now) / time.Second)},
	)
}

// countFetch counts a gettoken call as a fetch for the appkey it names,
// else the corpid, and makes that the call's app. s.mu is held.
func (s *Server) countFetch(x *exchange) {
	q := x.req.URL.Query()
	id := q.Get("appkey")
	if id == "" {
		id = q.Get("corpid")
	}
	if id != "" {
		x.app = id
		s.fetches[id]++
	}
}

// Revoke makes the current token of the app whose Key or CorpID is appID
// invalid at once: using it answers as an unknown or expired token does
// (topapi errcode 88, sub_code "40014"; the new host's HTTP 400
// InvalidAuthentication), and the next gettoken issues a new token. It reports false if the app is unknown or has no valid token.
func (s *Server) Revoke(appID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.app(appID)
	if a == nil {
		return false
	}
	t := s.tokens[a.ID()]
	if t == nil || !t.valid(s.opts.Now()) {
		return false
	}
	// It stays in byValue, so records still hide it.
	t.revoked = true
	return true
}

// issueToken returns the app's token, valid for the lifetime from now: the
// same one while it is valid, else a new one. s.mu is held.
func (s *Server) issueToken(appID string, now time.Time) *token {
	t := s.tokens[appID]
	if t == nil || !t.valid(now) {
		t = &token{value: randomHex(16), app: appID}
		s.tokens[appID] = t
		s.byValue[t.value] = t
	}
	t.expires = now.Add(s.opts.TokenLifetime)
	return t
}

// authorize checks the access token of a topapi call: the app's token
// answers nil, anything else the 88 answer DingTalk gives. s.mu is held.
func (s *Server) authorize(x *exchange) (*token, *reply) {
	if x.token == "" {
		rp := tokenError(subMissingToken, "缺少参数 access_token")
		return nil, &rp
	}
	t := s.byValue[x.token]
	if t == nil || !t.valid(x.now) {
		rp := tokenError(subInvalidToken, "不合法的access_token")
		return nil, &rp
	}
	return t, nil
}

func missingParam(name string) reply {
	return reply{code: codeMissingParam, msg: "缺少参数 " + name}
}
