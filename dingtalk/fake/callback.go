package fake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/dingq/dingq/dingtalk"
)

// CallbackTimeout is how long the fake waits for a receiver's answer to a
// check_url or a pushed event: DingTalk's 1500 ms.
const CallbackTimeout = 1500 * time.Millisecond

// MaxFailedPerCall is the most events one get_call_back_failed_result call
// returns: DingTalk's 200.
const MaxFailedPerCall = 200

// callbackAnswerLimit bounds how much of a receiver's answer the fake
// reads.
const callbackAnswerLimit = 64 << 10

// The errcodes of the callback endpoints, as DingTalk documents them.
const (
	codeMissingToken   = 41001 // 缺少access_token参数 (legacy host)
	codeInvalidToken   = 40014 // 不合法的access_token (legacy host)
	codeMissingURL     = 41010 // 缺少url
	codeCallbackExists = 71006 // 回调地址已经存在
	codeCallbackGone   = 71007 // 回调地址已不存在
	codeBadCallbackTag = 71008 // call_back_tag not in the list
	codeNotSuccess     = 71009 // 返回文本非success
	codeBadCallbackURL = 71011 // 传入的url参数不是合法的url格式
	codeURLUnreachable = 71012 // url地址访问异常
)

// What register_call_back takes, and the event it posts to the URL.
const (
	callbackTokenMinLen = 6
	callbackTokenMaxLen = 64
	callbackAESKeyLen   = 43
	checkURLEventType   = "check_url"
)

// callbackTags are the event types a registration may subscribe to.
// check_url is not one: DingTalk sends it to every registration.
var callbackTags = map[string]bool{
	// Contacts.
	"user_add_org": true, "user_modify_org": true, "user_leave_org": true, "user_active_org": true,
	"org_admin_add": true, "org_admin_remove": true,
	"org_dept_create": true, "org_dept_modify": true, "org_dept_remove": true,
	"org_remove": true, "org_change": true,
	"label_user_change": true, "label_conf_add": true, "label_conf_modify": true, "label_conf_del": true,
	// Group chats.
	"chat_add_member": true, "chat_remove_member": true, "chat_quit": true,
	"chat_update_owner": true, "chat_update_title": true, "chat_disband": true,
	// Check-ins and attendance.
	"check_in": true, "attendance_check_record": true, "attendance_schedule_change": true,
	"attendance_overtime_duration": true,
	// Approvals.
	"bpms_task_change": true, "bpms_instance_change": true,
}

// CallbackTags returns, sorted, the event types register_call_back and
// update_call_back take in call_back_tag.
func CallbackTags() []string { return slices.Sorted(maps.Keys(callbackTags)) }

// ErrUnknownApp is the error of [Server.Push] for an app the fake does not
// know.
var ErrUnknownApp = errors.New("fake: unknown app")

// ErrNoCallback is the error of [Server.Push] for an app with no callback
// registered: there is nowhere to push to, and the event is not kept.
var ErrNoCallback = errors.New("fake: no callback registered")

// PushError is what went wrong with one post to a callback URL: the error
// of [Server.Push] when the receiver did not take the event, which then
// went to the app's failed list.
type PushError struct {
	// App is the id of the app whose callback it was.
	App string
	// Unreachable is set when no answer came (connection refused or reset,
	// or none within CallbackTimeout): registering answers 71012. Otherwise
	// an answer came that was not a valid encrypted "success": 71009.
	Unreachable bool
	// Reason tells what happened, as in "answer decrypts to \"ok\", want
	// \"success\"".
	Reason string
}

// Error implements error.
func (e *PushError) Error() string {
	kind := "answer was not success"
	if e.Unreachable {
		kind = "callback URL unreachable"
	}
	return fmt.Sprintf("fake: push to app %s: %s: %s", e.App, kind, e.Reason)
}

// reply is DingTalk's answer to a registration whose check_url got e.
func (e *PushError) reply() reply {
	if e.Unreachable {
		return reply{code: codeURLUnreachable, msg: "url地址访问异常,错误原因为:" + e.Reason}
	}
	return reply{code: codeNotSuccess, msg: "返回文本非success: " + e.Reason}
}

// registration is an app's registered callback.
type registration struct {
	cb    dingtalk.Callback
	since time.Time // registered or last updated
}

// failedEvent is an event whose push failed, waiting in its app's failed
// list.
type failedEvent struct {
	tag   string // the event's EventType, "" if none
	time  time.Time
	event json.RawMessage
}

// MarshalJSON writes the event as get_call_back_failed_result lists it:
// the event under its tag (under "event" if it has none), call_back_tag
// and event_time in ms.
func (f failedEvent) MarshalJSON() ([]byte, error) {
	key := f.tag
	if key == "" {
		key = "event"
	}
	var b bytes.Buffer
	b.WriteByte('{')
	writeJSON(&b, key)
	b.WriteByte(':')
	b.Write(f.event)
	b.WriteString(`,"call_back_tag":`)
	writeJSON(&b, f.tag)
	b.WriteString(`,"event_time":`)
	b.WriteString(strconv.FormatInt(f.time.UnixMilli(), 10))
	b.WriteByte('}')
	return b.Bytes(), nil
}

// CallbackInfo is one registered callback as GET /_fake/callbacks shows
// it: never its token or aes_key.
type CallbackInfo struct {
	// App is the id of the app that registered it.
	App string `json:"app"`
	// Tags are the event types it subscribed to.
	Tags []string `json:"call_back_tag"`
	URL  string   `json:"url"`
	// Registered is when it was registered, or last updated.
	Registered time.Time `json:"registered"`
	// Failed counts the events waiting in the app's failed list.
	Failed int `json:"failed"`
}

// Callbacks returns the registered callbacks, by app id, without their
// secrets.
func (s *Server) Callbacks() []CallbackInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []CallbackInfo{}
	for _, app := range slices.Sorted(maps.Keys(s.callbacks)) {
		r := s.callbacks[app]
		out = append(out, CallbackInfo{App: app, Tags: slices.Clone(r.cb.Tags), URL: r.cb.URL,
			Registered: r.since, Failed: len(s.failedEvents[app])})
	}
	return out
}

// callbackClient posts events to callback URLs. It keeps no connection
// open, follows no redirect and uses no proxy.
var callbackClient = &http.Client{
	Timeout:   CallbackTimeout,
	Transport: &http.Transport{DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// ownerKey is the key the events of app are sealed with: its CorpID if
// set (an API registration), else its Key. s.mu is held.
func (s *Server) ownerKey(appID string) string {
	a := s.app(appID)
	switch {
	case a == nil:
		return appID
	case a.CorpID != "":
		return a.CorpID
	default:
		return a.Key
	}
}

// post sends event to cb's URL as DingTalk does, sealed with cb's token
// and aes_key and owner, with a fresh timestamp (the fake's clock, in ms)
// and a random nonce, and checks the answer: nil if it is a valid
// encrypted "success". It must be called without s.mu.
func (s *Server) post(app string, cb dingtalk.Callback, owner string, event []byte) *PushError {
	fail := func(unreachable bool, format string, args ...any) *PushError {
		return &PushError{App: app, Unreachable: unreachable, Reason: fmt.Sprintf(format, args...)}
	}
	c, err := dingtalk.NewCallbackCrypto(cb.Token, cb.AESKey, owner)
	if err != nil {
		return fail(false, "sealing: %v", err)
	}
	ts := strconv.FormatInt(s.opts.Now().UnixMilli(), 10)
	nonce := randomHex(4)
	enc, sig, err := c.Seal(event, ts, nonce)
	if err != nil {
		return fail(false, "sealing: %v", err)
	}
	u, err := url.Parse(cb.URL)
	if err != nil {
		return fail(true, "bad url: %v", err)
	}
	q := u.Query()
	q.Set("signature", sig)
	q.Set("timestamp", ts)
	q.Set("nonce", nonce)
	u.RawQuery = q.Encode()
	body, _ := json.Marshal(map[string]string{"encrypt": enc}) // strings always encode
	req, err := http.NewRequest(http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return fail(true, "%v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := callbackClient.Do(req)
	if err != nil {
		return fail(true, "%v", unwrapURLError(err))
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, callbackAnswerLimit))
	if err != nil {
		return fail(true, "reading the answer: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fail(false, "HTTP status %d", resp.StatusCode)
	}
	var cr dingtalk.CallbackResponse
	if err := json.Unmarshal(answer, &cr); err != nil {
		return fail(false, "answer is not the JSON of an encrypted success: %q", clip(answer))
	}
	plain, err := c.Open(cr.MsgSignature, cr.TimeStamp, cr.Nonce, cr.Encrypt)
	if err != nil {
		return fail(false, "answer does not verify and decrypt: %v", err)
	}
	if string(plain) != "success" {
		return fail(false, "answer decrypts to %q, want \"success\"", clip(plain))
	}
	return nil
}

// unwrapURLError drops the *url.Error wrapping, whose text repeats the URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// clip shortens b for an error message.
func clip(b []byte) string {
	const n = 100
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// unlocked runs f without s.mu, which the caller holds, and takes it back
// before returning: a handler calls out to a callback URL through it, so
// other calls go on meanwhile (and a receiver may call the fake).
func (s *Server) unlocked(f func()) {
	s.mu.Unlock()
	defer s.mu.Lock()
	f()
}

// authorizeAny checks the access token of a call on the legacy host as
// DingTalk does: topapi paths as [Server.authorize]; others answer 41001
// for a missing token and 40014 for an unknown, expired or revoked one.
// s.mu is held.
func (s *Server) authorizeAny(x *exchange) (*token, *reply) {
	t, bad := s.authorize(x)
	if bad == nil || isTopAPI(x.req.URL.Path) {
		return t, bad
	}
	if x.token == "" {
		return nil, &reply{code: codeMissingToken, msg: "缺少access_token参数"}
	}
	return nil, &reply{code: codeInvalidToken, msg: "不合法的access_token"}
}

// registerCallback answers POST /call_back/register_call_back. s.mu is
// held, and released for the check_url.
func (s *Server) registerCallback(x *exchange) reply { return s.putCallback(x, false) }

// updateCallback answers POST /call_back/update_call_back. s.mu is held,
// and released for the check_url.
func (s *Server) updateCallback(x *exchange) reply { return s.putCallback(x, true) }

// putCallback registers (or, if update, updates) the callback of the
// token's app: token (41001/40014), body (400002), the Callback's fields
// (71008, 400002, 41010, 71011), then whether the app has one (71006 when
// registering, 71007 when updating), then the check_url event, posted
// without s.mu (71012 unreachable, 71009 any answer but an encrypted
// success). The secrets in the body are recorded as "***". s.mu is held.
func (s *Server) putCallback(x *exchange, update bool) reply {
	t, bad := s.authorizeAny(x)
	if bad != nil {
		return *bad
	}
	var cb dingtalk.Callback
	if err := json.Unmarshal(x.body, &cb); err != nil {
		return reply{code: codeBadParam, msg: "参数错误"}
	}
	// Recorded without the callback's secrets.
	for _, secret := range []string{cb.Token, cb.AESKey} {
		if secret != "" {
			x.body = replaceSecret(x.body, secret)
		}
	}
	if rp := validateCallback(cb); rp != nil {
		return *rp
	}
	if rp := s.checkRegistered(t.app, update); rp != nil {
		return *rp
	}
	owner := s.ownerKey(t.app)
	var perr *PushError
	s.unlocked(func() { perr = s.post(t.app, cb, owner, []byte(`{"EventType":"`+checkURLEventType+`"}`)) })
	if perr != nil {
		return perr.reply()
	}
	// Another call may have registered or deleted it meanwhile.
	if rp := s.checkRegistered(t.app, update); rp != nil {
		return *rp
	}
	cb.Tags = slices.Clone(cb.Tags)
	s.callbacks[t.app] = &registration{cb: cb, since: s.opts.Now()}
	return okReply()
}

// checkRegistered answers 71006 if app has a callback and it is to be
// registered, 71007 if it has none and it is to be updated, else nil.
// s.mu is held.
func (s *Server) checkRegistered(app string, update bool) *reply {
	exists := s.callbacks[app] != nil
	switch {
	case !update && exists:
		return &reply{code: codeCallbackExists, msg: "回调地址已经存在"}
	case update && !exists:
		return callbackGone()
	}
	return nil
}

func callbackGone() *reply { return &reply{code: codeCallbackGone, msg: "回调地址已不存在"} }

// validateCallback checks cb as DingTalk does: call_back_tag not empty and
// each one known (71008); token 6 to 64 characters and aes_key 43 letters
// and digits (400002 naming the field); url given (41010) and an absolute
// http or https URL (71011). It answers nil if cb is fine.
func validateCallback(cb dingtalk.Callback) *reply {
	if len(cb.Tags) == 0 {
		return &reply{code: codeBadCallbackTag, msg: "回调call_back_tag必须在指定的call_back_tag列表中: call_back_tag is empty"}
	}
	for _, tag := range cb.Tags {
		if !callbackTags[tag] {
			return &reply{code: codeBadCallbackTag, msg: "回调call_back_tag必须在指定的call_back_tag列表中: " + strconv.Quote(tag)}
		}
	}
	if n := utf8.RuneCountInString(cb.Token); n < callbackTokenMinLen || n > callbackTokenMaxLen {
		return &reply{code: codeBadParam, msg: fmt.Sprintf("参数错误: token: must be %d to %d characters, got %d",
			callbackTokenMinLen, callbackTokenMaxLen, n)}
	}
	if !validAESKey(cb.AESKey) {
		return &reply{code: codeBadParam, msg: fmt.Sprintf("参数错误: aes_key: must be %d letters and digits, got %d characters",
			callbackAESKeyLen, utf8.RuneCountInString(cb.AESKey))}
	}
	if cb.URL == "" {
		return &reply{code: codeMissingURL, msg: "缺少url"}
	}
	u, err := url.Parse(cb.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return &reply{code: codeBadCallbackURL, msg: "传入的url参数不是合法的url格式"}
	}
	return nil
}

// validAESKey reports whether k is 43 characters of [a-zA-Z0-9].
func validAESKey(k string) bool {
	if len(k) != callbackAESKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// getCallback answers GET /call_back/get_call_back: the app's callback,
// its fields at the top level, or 71007. s.mu is held.
func (s *Server) getCallback(x *exchange) reply {
	t, bad := s.authorizeAny(x)
	if bad != nil {
		return *bad
	}
	r := s.callbacks[t.app]
	if r == nil {
		return *callbackGone()
	}
	return okReply(
		field{"call_back_tag", slices.Clone(r.cb.Tags)},
		field{"token", r.cb.Token},
		field{"aes_key", r.cb.AESKey},
		field{"url", r.cb.URL},
	)
}

// deleteCallback answers GET /call_back/delete_call_back: ok, or 71007 if
// the app has no callback. The app's failed list stays. s.mu is held.
func (s *Server) deleteCallback(x *exchange) reply {
	t, bad := s.authorizeAny(x)
	if bad != nil {
		return *bad
	}
	if s.callbacks[t.app] == nil {
		return *callbackGone()
	}
	delete(s.callbacks, t.app)
	return okReply()
}

// callbackFailed answers GET /call_back/get_call_back_failed_result: the
// oldest MaxFailedPerCall events of the app's failed list, which it
// forgets, and whether more are left. s.mu is held.
func (s *Server) callbackFailed(x *exchange) reply {
	t, bad := s.authorizeAny(x)
	if bad != nil {
		return *bad
	}
	list := s.failedEvents[t.app]
	n := min(len(list), MaxFailedPerCall)
	out := append([]failedEvent{}, list[:n]...) // [] rather than null when empty
	if rest := list[n:]; len(rest) > 0 {
		s.failedEvents[t.app] = slices.Clone(rest)
	} else {
		delete(s.failedEvents, t.app)
	}
	return okReply(field{"has_more", len(list) > n}, field{"failed_list", out})
}

// Push posts one event, a JSON value such as
// {"EventType":"user_add_org","UserId":["u1"],"CorpId":"…"}, to the
// callback the app whose Key or CorpID is appID registered, as DingTalk
// does: sealed with the callback's token and aes_key and the app's owner
// key (its CorpID if set, else its Key), with a fresh timestamp (the
// fake's clock) and a random nonce. It waits for the answer, at most
// CallbackTimeout, without holding the server's lock. The event is taken
// if the answer is a valid encrypted "success"; otherwise it goes to the
// app's failed list (get_call_back_failed_result) and Push returns a
// *[PushError]. The fake does not check the event's type against the
// callback's tags. Push returns [ErrUnknownApp] or [ErrNoCallback] (and
// keeps nothing) for an app unknown or with no callback, and an error for
// an event that is not JSON.
func (s *Server) Push(appID string, event []byte) error {
	if !json.Valid(event) {
		return fmt.Errorf("fake: push to app %s: the event is not JSON", appID)
	}
	s.mu.Lock()
	a := s.app(appID)
	if a == nil {
		s.mu.Unlock()
		return fmt.Errorf("%w %q", ErrUnknownApp, appID)
	}
	id := a.ID()
	r := s.callbacks[id]
	if r == nil {
		s.mu.Unlock()
		return fmt.Errorf("%w for app %s", ErrNoCallback, id)
	}
	cb, owner := r.cb, s.ownerKey(id)
	s.mu.Unlock()

	perr := s.post(id, cb, owner, event)

	s.mu.Lock()
	defer s.mu.Unlock()
	if perr == nil {
		s.pushed++
		return nil
	}
	s.pushFailed++
	var head struct {
		EventType string `json:"EventType"`
	}
	_ = json.Unmarshal(event, &head) // not an object: no tag
	s.failedEvents[id] = append(s.failedEvents[id],
		failedEvent{tag: head.EventType, time: s.opts.Now(), event: compactJSON(event)})
	return perr
}

// compactJSON returns valid JSON b without its insignificant spaces.
func compactJSON(b []byte) json.RawMessage {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return slices.Clone(b)
	}
	return out.Bytes()
}

// pushRequest is the body of POST /_fake/push.
type pushRequest struct {
	// App is the Key or CorpID of the app whose callback gets the events.
	App string `json:"app"`
	// Events are pushed in order.
	Events []json.RawMessage `json:"events"`
	// Times is how many times in a row each event is pushed, as DingTalk
	// re-pushes: the same content, each time with a new timestamp and
	// nonce. If zero, once.
	Times int `json:"times"`
}

// maxPushTimes bounds pushRequest.Times.
const maxPushTimes = 1000

// pushAll pushes what a POST /_fake/push asks and counts the events taken
// and failed. The error is the request's fault: nothing was pushed.
func (s *Server) pushAll(req pushRequest) (pushed, failed int, err error) {
	switch {
	case req.App == "":
		return 0, 0, errors.New(`push: missing "app", the Key or CorpID of the app`)
	case len(req.Events) == 0:
		return 0, 0, errors.New(`push: missing "events", a list of events as JSON objects`)
	case req.Times < 0 || req.Times > maxPushTimes:
		return 0, 0, fmt.Errorf(`push: "times" must be in [0, %d] (0: once), got %d`, maxPushTimes, req.Times)
	}
	times := max(req.Times, 1)
	for _, ev := range req.Events {
		for range times {
			err := s.Push(req.App, ev)
			var perr *PushError
			switch {
			case err == nil:
				pushed++
			case errors.As(err, &perr):
				failed++
			default:
				return pushed, failed, err
			}
		}
	}
	return pushed, failed, nil
}
