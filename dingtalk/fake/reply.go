package fake

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
)

// The errcodes the fake answers with, as DingTalk documents them.
const (
	codeOK            = 0
	codeInvalidMethod = 22     // unknown topapi method
	codeTopAPIToken   = 88     // topapi's wrapper of token errors, with a sub_code
	codeNotFound      = 404    // unknown path (with HTTP 404)
	codeMissingParam  = 40035  // 缺少参数
	codeBadAgentID    = 40056  // 不合法的agentId
	codeBadCorpSecret = 40089  // 不合法的corpid或corpsecret
	codeBadAppSecret  = 40096  // 不合法的appKey或appSecret
	codeThrottled     = 90018  // 接口调用超过限流: the per-app-per-API limit
	codeBadParam      = 400002 // 参数错误
)

// The sub_codes of errcode 88.
const (
	subMissingToken = "40000"
	subInvalidToken = "40014"
)

// field is one field of an answer after errcode and errmsg.
type field struct {
	key   string
	value any
}

// reply is one answer of the legacy host before it is written: errcode
// first, then sub_code and sub_msg if any, errmsg, the fields in order, and
// request_id on topapi paths.
type reply struct {
	// status is the HTTP status; 0 means 200, as the legacy host always says.
	status    int
	code      int
	subCode   string
	subMsg    string
	msg       string
	fields    []field
	requestID string
	// body, if not nil, is the answer's body as is, in place of the errcode
	// JSON: a broken gateway's text or the per-IP ban. code is then 0.
	body []byte
	// text marks body as plain text rather than JSON.
	text bool
	// contentType, if set, is body's Content-Type, text or not.
	contentType string
	// errorCode is the new host's error code of body, as in
	// "InvalidAuthentication", for the record; "" if none.
	errorCode string
}

func okReply(fields ...field) reply { return reply{code: codeOK, msg: "ok", fields: fields} }

func notFound() reply {
	return reply{status: http.StatusNotFound, code: codeNotFound, msg: "not found"}
}

// tokenError is topapi's answer to a missing or bad access token.
func tokenError(sub, subMsg string) reply {
	return reply{code: codeTopAPIToken, subCode: sub, subMsg: subMsg,
		msg: "ding talk error[subcode=" + sub + ",submsg=" + subMsg + "]"}
}

// encode returns rp as JSON, fields in DingTalk's order.
func (rp reply) encode() []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	add := func(k string, v any) {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		writeJSON(&b, k)
		b.WriteByte(':')
		writeJSON(&b, v)
	}
	add("errcode", rp.code)
	if rp.subCode != "" {
		add("sub_code", rp.subCode)
		add("sub_msg", rp.subMsg)
	}
	add("errmsg", rp.msg)
	for _, f := range rp.fields {
		add(f.key, f.value)
	}
	if rp.requestID != "" {
		add("request_id", rp.requestID)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// writeJSON appends v's JSON without escaping <, > and &, as DingTalk
// writes it.
func writeJSON(b *bytes.Buffer, v any) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Answers hold only strings and numbers, which always encode.
		panic("fake: encoding answer: " + err.Error())
	}
	b.Truncate(b.Len() - 1) // Encode's newline
}

// write sends rp.
func (rp reply) write(w http.ResponseWriter) {
	status := rp.status
	if status == 0 {
		status = http.StatusOK
	}
	switch {
	case rp.body == nil:
		writeRaw(w, status, rp.encode())
	case rp.contentType != "":
		writeBody(w, status, rp.contentType, rp.body)
	case rp.text:
		writeBody(w, status, "text/plain; charset=utf-8", rp.body)
	default:
		writeRaw(w, status, rp.body)
	}
}

// writeRaw sends a JSON body.
func writeRaw(w http.ResponseWriter, status int, body []byte) {
	writeBody(w, status, "application/json;charset=utf-8", body)
}

// writeBody sends body as contentType with the status.
func writeBody(w http.ResponseWriter, status int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// randomHex returns n random bytes as 2n hex digits.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails: crypto/rand.Read crashes the program instead
	return hex.EncodeToString(b)
}

// newRequestID returns a random request_id.
func newRequestID() string { return randomHex(8) }
