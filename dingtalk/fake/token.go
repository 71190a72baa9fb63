package fake

import (
	"time"
)

// token is an access token the fake issued.
type token struct {
	value   string
	app     string // App.ID() of the app it belongs to
	expires time.Time
}

func (t *token) valid(now time.Time) bool { return now.Before(t.expires) }

// getToken answers GET /gettoken, in the appkey/appsecret form or the
// legacy corpid/corpsecret form. Every call naming an appkey or corpid
// counts as a fetch for it, successful or not. s.mu is held.
func (s *Server) getToken(x *exchange) reply {
	q := x.req.URL.Query()
	key, secret := q.Get("appkey"), q.Get("appsecret")
	corp, corpSecret := q.Get("corpid"), q.Get("corpsecret")

	var app *App
	switch {
	case key != "" || (secret != "" && corp == ""):
		x.app = key
		if key == "" {
			return missingParam("appkey")
		}
		s.fetches[key]++
		if secret == "" {
			return missingParam("appsecret")
		}
		if app = s.byKey[key]; app == nil || app.Secret != secret {
			return reply{code: codeBadAppSecret, msg: "不合法的appKey或appSecret"}
		}
	case corp != "" || corpSecret != "":
		x.app = corp
		if corp == "" {
			return missingParam("corpid")
		}
		s.fetches[corp]++
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
