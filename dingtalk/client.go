package dingtalk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultBaseURL is DingTalk's legacy API host, where tokens and work
// notifications live.
const DefaultBaseURL = "https://oapi.dingtalk.com"

// DefaultAPIBaseURL is DingTalk's new API host, where the v1.0 APIs live:
// the enterprise robot's batch send and the token endpoint it takes.
const DefaultAPIBaseURL = "https://api.dingtalk.com"

// DefaultTimeout bounds one HTTP call when no other timeout is given.
const DefaultTimeout = 10 * time.Second

// maxAnswerBytes bounds how much of an answer is read: DingTalk's answers
// are small, a proxy's error page need not be read whole.
const maxAnswerBytes = 1 << 20

// Client calls DingTalk's open API. It is safe for concurrent use. It holds
// no token: callers pass one to each call, so they decide how tokens are
// cached and shared.
type Client struct {
	baseURL    *url.URL
	apiBaseURL *url.URL
	httpClient *http.Client
	userAgent  string
	now        func() time.Time
}

// Option configures a Client.
type Option func(*Client) error

// WithBaseURL points the client's legacy-host calls at another host, such
// as dingq's fake DingTalk. The URL must be absolute http or https.
func WithBaseURL(raw string) Option {
	return func(c *Client) (err error) {
		c.baseURL, err = parseBaseURL("base URL", raw)
		return err
	}
}

// WithAPIBaseURL points the client's new-host (v1.0) calls at another
// host, such as dingq's fake DingTalk, which serves both. The URL must be
// absolute http or https.
func WithAPIBaseURL(raw string) Option {
	return func(c *Client) (err error) {
		c.apiBaseURL, err = parseBaseURL("API base URL", raw)
		return err
	}
}

func parseBaseURL(what, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("dingtalk: %s %q: must be an absolute http(s) URL", what, raw)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// WithHTTPClient makes the client use hc for every call. Its Timeout bounds
// each call; a nil hc is an error. Give it a CheckRedirect that refuses
// redirects, as the default client's does, or a redirect would carry the
// new host's token header to wherever it points.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("dingtalk: nil *http.Client")
		}
		c.httpClient = hc
		return nil
	}
}

// WithTimeout bounds each call of the default HTTP client; it must be > 0.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) error {
		if d <= 0 {
			return fmt.Errorf("dingtalk: timeout must be > 0, got %s", d)
		}
		hc := *c.httpClient
		hc.Timeout = d
		c.httpClient = &hc
		return nil
	}
}

// WithClock sets the clock that stamps a token's ExpiresAt (tests of
// expiry inject one, so nothing has to sleep). If not given, time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *Client) error {
		if now == nil {
			return errors.New("dingtalk: nil clock")
		}
		c.now = now
		return nil
	}
}

// WithUserAgent sets the User-Agent header of every call.
func WithUserAgent(ua string) Option {
	return func(c *Client) error {
		c.userAgent = ua
		return nil
	}
}

// MaxIdleConns is how many idle connections to DingTalk the default HTTP
// client keeps for reuse. net/http keeps 2 per host by default, so a
// worker making 20 calls at once would open (and, over TLS, handshake) a
// new connection for most of them.
const MaxIdleConns = 128

// defaultTransport is http.DefaultTransport keeping MaxIdleConns idle
// connections to DingTalk's one host.
func defaultTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = MaxIdleConns
	t.MaxIdleConnsPerHost = MaxIdleConns
	return t
}

// noRedirects refuses every redirect: DingTalk's APIs do not redirect, and
// following one would hand the access token (a new-host header) and a
// token request's secret to another host. The 3xx answer comes back as
// an *Error.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// NewClient returns a client for DefaultBaseURL and DefaultAPIBaseURL with
// a DefaultTimeout, changed by opts. Its HTTP client keeps up to
// MaxIdleConns connections to each host open for reuse.
func NewClient(opts ...Option) (*Client, error) {
	base, _ := url.Parse(DefaultBaseURL)
	apiBase, _ := url.Parse(DefaultAPIBaseURL)
	c := &Client{
		baseURL:    base,
		apiBaseURL: apiBase,
		httpClient: &http.Client{Timeout: DefaultTimeout, Transport: defaultTransport(), CheckRedirect: noRedirects},
		userAgent:  "dingq",
		now:        time.Now,
	}
	for _, opt := range opts {
		if err := opt(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// BaseURL returns the legacy host the client calls.
func (c *Client) BaseURL() string { return c.baseURL.String() }

// APIBaseURL returns the new host the client calls.
func (c *Client) APIBaseURL() string { return c.apiBaseURL.String() }

// legacyAnswer is the envelope every legacy-host answer shares. Status and
// Wait come with the per-IP ban body.
type legacyAnswer struct {
	ErrCode   *int   `json:"errcode"`
	ErrMsg    string `json:"errmsg"`
	SubCode   string `json:"sub_code"`
	SubMsg    string `json:"sub_msg"`
	RequestID string `json:"request_id"`
	Status    int    `json:"status"`
	Wait      int    `json:"wait"`
	// new host's error shape, in case a proxy answers with it
	Code       string `json:"code"`
	Message    string `json:"message"`
	RequestID2 string `json:"requestid"`
}

// call performs one legacy-host call: method and path, the query (the
// access token among it), an optional JSON body, and decodes a successful
// answer into out. Every failure comes back as *Error or *TransportError.
func (c *Client) call(ctx context.Context, method, path string, query url.Values, body, out any) error {
	return c.do(ctx, false, method, path, query, "", body, out)
}

// headerToken is the header that carries the access token on the new host.
const headerToken = "x-acs-dingtalk-access-token"

// callV1 performs one new-host call: the access token, if any, goes in
// headerToken; a successful answer is plain JSON without errcode, an
// error an HTTP 4xx/5xx with {"code","message","requestid"}.
func (c *Client) callV1(ctx context.Context, method, path, token string, body, out any) error {
	return c.do(ctx, true, method, path, nil, token, body, out)
}

func (c *Client) do(ctx context.Context, v1 bool, method, path string, query url.Values, token string, body, out any) error {
	base := c.baseURL
	if v1 {
		base = c.apiBaseURL
	}
	u := *base
	u.Path += path
	u.RawQuery = query.Encode()

	var rd io.Reader
	if body != nil {
		b, err := marshalJSON(body)
		if err != nil {
			return fmt.Errorf("dingtalk: %s: encoding request: %w", path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return &TransportError{Method: method, Path: path, Err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if token != "" {
		req.Header.Set(headerToken, token)
	}

	resp, err := c.httpClient.Do(req)
	if err != nil {
		// *url.Error repeats the URL, token and all: keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return &TransportError{Method: method, Path: path, Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return &TransportError{Method: method, Path: path, Err: fmt.Errorf("reading answer: %w", err)}
	}
	return checkAnswer(method, resp.StatusCode, path, raw, out, v1)
}

// checkAnswer turns an HTTP status and body into nil (and out filled) or
// the error DingTalk meant. It is the one place answers are sorted. A
// legacy answer (v1 false) must carry an errcode; a new-host one succeeds
// with 2xx and no code.
func checkAnswer(method string, status int, path string, raw []byte, out any, v1 bool) error {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) > 0 && trimmed[0] == '<' {
		if status == http.StatusOK {
			// DingTalk answers a banned IP with an HTML page and no errcode.
			return &Error{HTTPStatus: status, Path: path, IPBanned: true, Wait: ipBanDelay, Message: "HTML answer"}
		}
		return &Error{HTTPStatus: status, Path: path, Message: "HTML answer"}
	}
	var a legacyAnswer
	if err := json.Unmarshal(trimmed, &a); err != nil {
		if status >= 300 {
			return &Error{HTTPStatus: status, Path: path, Message: http.StatusText(status)}
		}
		return &TransportError{Method: method, Path: path, Err: fmt.Errorf("malformed answer (HTTP %d, %d bytes): %w", status, len(raw), err)}
	}
	switch {
	case a.Status == 1111:
		wait := time.Duration(a.Wait) * time.Minute
		if wait <= 0 {
			wait = ipBanDelay
		}
		return &Error{HTTPStatus: status, Path: path, IPBanned: true, Wait: wait, Message: "IP banned"}
	case a.Code != "":
		return &Error{HTTPStatus: status, Path: path, ErrorCode: a.Code, Message: a.Message, RequestID: a.RequestID2}
	case a.ErrCode != nil && *a.ErrCode != 0:
		return &Error{HTTPStatus: status, Path: path, Code: *a.ErrCode, SubCode: a.SubCode,
			Message: a.ErrMsg, SubMessage: a.SubMsg, RequestID: a.RequestID}
	case status >= 300:
		return &Error{HTTPStatus: status, Path: path, Message: http.StatusText(status)}
	case a.ErrCode == nil && !v1:
		return &TransportError{Method: method, Path: path, Err: fmt.Errorf("malformed answer: no errcode (HTTP %d, %d bytes)", status, len(raw))}
	}
	if out != nil {
		if err := json.Unmarshal(trimmed, out); err != nil {
			return &TransportError{Method: method, Path: path, Err: fmt.Errorf("malformed answer: %w", err)}
		}
	}
	return nil
}
