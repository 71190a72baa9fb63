package fake

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// v1Prefix starts the paths of DingTalk's new host (api.dingtalk.com),
// which the fake serves beside the legacy host's: the token travels in a
// header, success is plain JSON, and errors are HTTP 4xx/5xx with
// {"code","message","requestid"}.
const v1Prefix = "/v1.0/"

func isV1(path string) bool { return strings.HasPrefix(path, v1Prefix) }

// headerTokenV1 carries the access token on the new host.
const headerTokenV1 = "x-acs-dingtalk-access-token"

// The new host's error codes the fake answers with. dingtalk-api.md gives
// InvalidAuthentication, invalidClientIdOrSecret and the QPS code; the
// parameter codes are DingTalk's gateway's, with the field after the dot.
const (
	codeV1Auth             = "InvalidAuthentication"
	codeV1BadClient        = "invalidClientIdOrSecret"
	codeV1MissingParameter = "MissingParameter"
	codeV1InvalidParameter = "InvalidParameter"
	codeV1Throttled        = "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"
	codeV1NotFound         = "InvalidAction.NotFound"
)

// v1Error is the new host's answer to a call it refuses: HTTP status with
// {"code":C,"message":M,"requestid":R}.
func v1Error(status int, code, msg string) reply {
	rp := v1OK(field{"code", code}, field{"message", msg}, field{"requestid", newRequestID()})
	rp.status, rp.errorCode = status, code
	return rp
}

// v1OK is the new host's answer to a call it takes: HTTP 200 with the
// fields in order, and no errcode.
func v1OK(fields ...field) reply {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSON(&b, f.key)
		b.WriteByte(':')
		writeJSON(&b, f.value)
	}
	b.WriteByte('}')
	return reply{body: b.Bytes()}
}

// v1NotFound is the new host's answer to a path (or method) it does not
// have.
func v1NotFound() reply {
	return v1Error(http.StatusNotFound, codeV1NotFound, "Specified api is not found, please check your url and method.")
}

// v1Throttled is the new host's answer to a call over CallsPerSecond, in
// place of the legacy host's errcode 90018.
func v1Throttled() reply {
	return v1Error(http.StatusForbidden, codeV1Throttled, "应用调用该接口的QPS超过限制，请降低调用频率")
}

// tokenRequestV1 is the body of POST /v1.0/oauth2/accessToken.
type tokenRequestV1 struct {
	AppKey    string `json:"appKey"`
	AppSecret string `json:"appSecret"`
}

// countFetchV1 counts a new-host token call as a fetch for the appKey its
// body names, makes that the call's app, and hides the appSecret it
// carries from the record (a wrong secret may be an old one). s.mu is
// held.
func (s *Server) countFetchV1(x *exchange) {
	var r tokenRequestV1
	if json.Unmarshal(x.body, &r) != nil {
		return
	}
	x.hide = append(x.hide, r.AppSecret)
	if r.AppKey != "" {
		x.app = r.AppKey
		s.fetches[r.AppKey]++
	}
}

// accessTokenV1 answers POST /v1.0/oauth2/accessToken, the new host's
// token endpoint, from the same store as gettoken: the app's token, the
// same one while it is valid, extended by the lifetime. Like gettoken it
// counts as a fetch, successful or not, and no limit counts it. s.mu is
// held.
func (s *Server) accessTokenV1(x *exchange) reply {
	s.countFetchV1(x)
	var r tokenRequestV1
	if err := json.Unmarshal(x.body, &r); err != nil {
		return v1Error(http.StatusBadRequest, codeV1InvalidParameter, "body: want a JSON object {\"appKey\",\"appSecret\"}: "+err.Error())
	}
	switch {
	case r.AppKey == "":
		return v1Error(http.StatusBadRequest, codeV1MissingParameter, "appKey is mandatory for this action.")
	case r.AppSecret == "":
		return v1Error(http.StatusBadRequest, codeV1MissingParameter, "appSecret is mandatory for this action.")
	}
	app := s.byKey[r.AppKey]
	if app == nil || app.Secret != r.AppSecret {
		return v1Error(http.StatusBadRequest, codeV1BadClient, "无效的clientId或者clientSecret")
	}
	t := s.issueToken(app.ID(), x.now)
	return v1OK(
		field{"accessToken", t.value},
		field{"expireIn", int64(t.expires.Sub(x.now) / time.Second)},
	)
}

// authorizeV1 checks the access token of a new-host call, from its header:
// the app's valid token answers nil; a missing, unknown, expired or revoked
// one HTTP 400 InvalidAuthentication, which the client takes as a token to
// drop. s.mu is held.
func (s *Server) authorizeV1(x *exchange) (*token, *reply) {
	t := s.byValue[x.token]
	if x.token == "" || t == nil || !t.valid(x.now) {
		rp := v1Error(http.StatusBadRequest, codeV1Auth, "不合法的access_token")
		return nil, &rp
	}
	return t, nil
}
