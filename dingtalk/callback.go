package dingtalk

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Paths of the callback registration endpoints (legacy host).
const (
	PathRegisterCallback = "/call_back/register_call_back"          // POST
	PathUpdateCallback   = "/call_back/update_call_back"            // POST
	PathGetCallback      = "/call_back/get_call_back"               // GET
	PathDeleteCallback   = "/call_back/delete_call_back"            // GET
	PathCallbackFailed   = "/call_back/get_call_back_failed_result" // GET
)

// Limits of a callback registration.
const (
	// MinCallbackTokenLen and MaxCallbackTokenLen bound the length of a
	// callback's token, in characters.
	MinCallbackTokenLen = 6
	MaxCallbackTokenLen = 64
	// CallbackAESKeyLen is the exact length of a callback's aes_key.
	CallbackAESKeyLen = 43
	// MaxFailedEvents is the most events one get_call_back_failed_result
	// answer holds.
	MaxFailedEvents = 200
)

// Callback is a callback registration: the events (tags) DingTalk pushes to
// URL, and the token and aes_key that sign and encrypt them.
type Callback struct {
	Tags   []string `json:"call_back_tag"`
	Token  string   `json:"token"`
	AESKey string   `json:"aes_key"`
	URL    string   `json:"url"`
}

// Validate reports the first thing DingTalk would refuse in c: no tag or an
// empty one, a token not of 6–64 characters, an aes_key not of exactly 43
// characters of [a-zA-Z0-9], a URL not absolute http(s). The error's Field
// is DingTalk's ("call_back_tag", "token", "aes_key", "url"); it never
// holds the token's or the aes_key's value.
func (c *Callback) Validate() error {
	if c == nil {
		return invalid("call_back_tag", "required: no callback given")
	}
	if len(c.Tags) == 0 {
		return invalid("call_back_tag", "required: at least one event tag")
	}
	for i, tag := range c.Tags {
		if strings.TrimSpace(tag) == "" {
			return invalid("call_back_tag", "tag %d is empty", i)
		}
	}
	if n := utf8.RuneCountInString(c.Token); n < MinCallbackTokenLen || n > MaxCallbackTokenLen {
		return invalid("token", "%d characters, want %d to %d", n, MinCallbackTokenLen, MaxCallbackTokenLen)
	}
	if len(c.AESKey) != CallbackAESKeyLen {
		return invalid("aes_key", "%d bytes, want exactly %d characters of [a-zA-Z0-9]", len(c.AESKey), CallbackAESKeyLen)
	}
	for i := 0; i < len(c.AESKey); i++ {
		if !isAlnum(c.AESKey[i]) {
			return invalid("aes_key", "character %d is not one of [a-zA-Z0-9]", i)
		}
	}
	if c.URL == "" {
		return invalid("url", "required: the absolute http(s) URL DingTalk pushes events to")
	}
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalid("url", "must be an absolute http(s) URL")
	}
	return nil
}

func isAlnum(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
}

// RegisterCallback registers cb for the company with register_call_back.
// DingTalk checks the URL at once with a check_url event, which must be
// answered. An invalid cb or a missing token is refused with a
// *ValidationError before any call. DingTalk's refusals (71006 URL already
// registered, 71008 bad tag, 71009 URL did not answer "success", 71012 URL
// unreachable…) come back as *Error.
func (c *Client) RegisterCallback(ctx context.Context, token string, cb *Callback) error {
	return c.putCallback(ctx, PathRegisterCallback, token, cb)
}

// UpdateCallback replaces the company's callback registration by cb with
// update_call_back; it is checked and refused as in RegisterCallback.
func (c *Client) UpdateCallback(ctx context.Context, token string, cb *Callback) error {
	return c.putCallback(ctx, PathUpdateCallback, token, cb)
}

func (c *Client) putCallback(ctx context.Context, path, token string, cb *Callback) error {
	if err := cb.Validate(); err != nil {
		return err
	}
	if token == "" {
		return invalid("access_token", "required")
	}
	return c.call(ctx, http.MethodPost, path, tokenQuery(token), cb, nil)
}

// GetCallback returns the company's callback registration with
// get_call_back. It holds the registration's token and aes_key: do not log
// it. A missing token is refused with a *ValidationError before any call.
func (c *Client) GetCallback(ctx context.Context, token string) (*Callback, error) {
	if token == "" {
		return nil, invalid("access_token", "required")
	}
	var cb Callback
	if err := c.call(ctx, http.MethodGet, PathGetCallback, tokenQuery(token), nil, &cb); err != nil {
		return nil, err
	}
	return &cb, nil
}

// DeleteCallback deletes the company's callback registration with
// delete_call_back. A missing token is refused with a *ValidationError
// before any call.
func (c *Client) DeleteCallback(ctx context.Context, token string) error {
	if token == "" {
		return invalid("access_token", "required")
	}
	return c.call(ctx, http.MethodGet, PathDeleteCallback, tokenQuery(token), nil, nil)
}

// FailedEvents is one page of get_call_back_failed_result: at most 200
// events, which DingTalk forgets once returned.
type FailedEvents struct {
	// HasMore says more failed events wait: call again.
	HasMore bool `json:"has_more"`
	// Events are the failed events as DingTalk returned them.
	Events []json.RawMessage `json:"failed_list"`
}

// GetCallbackFailed returns, with get_call_back_failed_result, up to
// MaxFailedEvents events DingTalk failed to push. DingTalk forgets the
// events it returns: whatever the caller does not keep of the answer is
// lost. A missing token is refused with a *ValidationError before any call.
func (c *Client) GetCallbackFailed(ctx context.Context, token string) (*FailedEvents, error) {
	if token == "" {
		return nil, invalid("access_token", "required")
	}
	var fe FailedEvents
	if err := c.call(ctx, http.MethodGet, PathCallbackFailed, tokenQuery(token), nil, &fe); err != nil {
		return nil, err
	}
	return &fe, nil
}
