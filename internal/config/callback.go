package config

import (
	"net/url"
	"time"
	"unicode/utf8"

	"github.com/dingq/dingq/dingtalk"
)

// Callback is the callback registration of the apps and where the events
// DingTalk pushes go. Leaving token and aes_key empty turns the receiver
// off.
type Callback struct {
	// Token signs DingTalk's pushes: 6 to 64 characters. Secret.
	Token string `yaml:"token" secret:"true"`
	// AESKey encrypts them: exactly 43 characters of a-z, A-Z, 0-9.
	// Secret.
	AESKey string `yaml:"aes_key" secret:"true"`
	// OwnerKey is what DingTalk puts after each event: the corpId for a
	// callback registered through the API, the app's AppKey for one set in
	// the console. Required with a token.
	OwnerKey string `yaml:"owner_key"`
	// URL is where DingTalk pushes, as registered: this api's
	// /v1/callbacks/dingtalk as DingTalk reaches it.
	URL string `yaml:"url"`
	// Tags are the event types to register for. If empty with a url, the
	// contact events (user_add_org, user_modify_org, user_leave_org,
	// org_dept_create, org_dept_modify, org_dept_remove).
	Tags []string `yaml:"tags"`
	// TimestampWindow is how far a push's timestamp may be from now; a
	// nonce is remembered twice as long. > 0, <= 1h. If zero, 5m.
	TimestampWindow time.Duration `yaml:"timestamp_window"`
	// ForwardURL, if set, gets each event POSTed as JSON, signed with
	// ForwardSecret (at least 16 characters; secret).
	ForwardURL    string `yaml:"forward_url"`
	ForwardSecret string `yaml:"forward_secret" secret:"true"`
	// ForwardEvents lists the event types forwarded; empty or "*": all.
	ForwardEvents []string `yaml:"forward_events"`
	// Stream, if set, is the Redis Stream each event is added to (it is
	// used as the key as it is), trimmed to about StreamMaxLen entries
	// (if zero, 100000). StreamEvents as ForwardEvents.
	Stream       string   `yaml:"stream"`
	StreamMaxLen int64    `yaml:"stream_max_len"`
	StreamEvents []string `yaml:"stream_events"`
	// FailedPullInterval is how often the workers pull the events DingTalk
	// failed to push (get_call_back_failed_result) when a callback is
	// configured (callback.url); 0 never, else at least 1m. If absent, 5m.
	FailedPullInterval *time.Duration `yaml:"failed_pull_interval"`
}

// On reports whether the callback receiver is configured.
func (c *Callback) On() bool { return c.Token != "" || c.AESKey != "" }

var defaultCallbackTags = []string{"user_add_org", "user_modify_org", "user_leave_org",
	"org_dept_create", "org_dept_modify", "org_dept_remove"}

const (
	defaultTimestampWindow = 5 * time.Minute
	defaultStreamMaxLen    = 100000
	defaultFailedPull      = 5 * time.Minute
	minForwardSecretLen    = 16
)

func (c *Callback) setDefaults() {
	// An empty list in the file is no list.
	for _, l := range []*[]string{&c.Tags, &c.ForwardEvents, &c.StreamEvents} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	if c.TimestampWindow == 0 {
		c.TimestampWindow = defaultTimestampWindow
	}
	if c.StreamMaxLen == 0 {
		c.StreamMaxLen = defaultStreamMaxLen
	}
	if c.URL != "" && len(c.Tags) == 0 {
		c.Tags = append([]string(nil), defaultCallbackTags...)
	}
	if c.FailedPullInterval == nil {
		d := defaultFailedPull
		c.FailedPullInterval = &d
	}
}

func (c *Callback) validate(v *validator) {
	if c.On() {
		if _, err := dingtalk.NewCallbackCrypto(c.Token, c.AESKey, c.OwnerKey); err != nil {
			if ve, ok := err.(*dingtalk.ValidationError); ok {
				v.add("callback."+ve.Field, "%s", ve.Reason)
			} else {
				v.add("callback", "%v", err)
			}
		}
		if c.OwnerKey == "" {
			v.add("callback.owner_key", "required with callback.token: the corpId (API registrations) or the app's AppKey (console ones)")
		}
	}
	if c.URL != "" && !absoluteHTTP(c.URL) {
		v.add("callback.url", "must be an absolute http or https URL")
	}
	if c.URL != "" && !c.On() {
		v.add("callback.token", "required with callback.url")
	}
	if c.TimestampWindow <= 0 || c.TimestampWindow > time.Hour {
		v.add("callback.timestamp_window", "must be > 0 and <= 1h")
	}
	if c.ForwardURL != "" {
		if !absoluteHTTP(c.ForwardURL) {
			v.add("callback.forward_url", "must be an absolute http or https URL")
		}
		if utf8.RuneCountInString(c.ForwardSecret) < minForwardSecretLen {
			v.add("callback.forward_secret", "required with forward_url: at least %d characters", minForwardSecretLen)
		}
	}
	if c.StreamMaxLen < 0 {
		v.add("callback.stream_max_len", "must be >= 0")
	}
	if d := c.FailedPullInterval; d != nil && *d != 0 && *d < time.Minute {
		v.add("callback.failed_pull_interval", "must be 0s (never) or at least 1m")
	}
}

func absoluteHTTP(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// SessionPaths are the session endpoints of seed 001. They are not in
// DingTalk's published API: empty ones take the seed article's.
type SessionPaths struct {
	Get    string `yaml:"get"`
	Create string `yaml:"create"`
	Close  string `yaml:"close"`
}

func (s *SessionPaths) setDefaults() {
	*s = SessionPaths(dingtalk.SessionPaths(*s).WithDefaults())
}

func (s *SessionPaths) validate(v *validator) {
	for _, f := range []struct{ name, path string }{{"get", s.Get}, {"create", s.Create}, {"close", s.Close}} {
		if f.path != "" && (f.path[0] != '/' || len(f.path) > 200) {
			v.add("dingtalk.session_paths."+f.name, "must be a path starting with /")
		}
	}
}
