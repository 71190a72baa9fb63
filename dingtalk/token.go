package dingtalk

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Paths of the token endpoints: the legacy host's and the new host's.
const (
	PathGetToken      = "/gettoken"
	PathAccessTokenV1 = "/v1.0/oauth2/accessToken"
)

// DefaultTokenLifetime is used when DingTalk answers gettoken with an
// expires_in of 0 or one beyond MaxTokenLifetime.
const DefaultTokenLifetime = 7200 * time.Second

// MaxTokenLifetime is the longest expires_in taken at its word.
const MaxTokenLifetime = 24 * time.Hour

// Credentials identify an app to gettoken: AppKey and AppSecret, or the
// legacy CorpID and CorpSecret of older corps (seed 001). Its String never
// shows the secrets.
type Credentials struct {
	AppKey     string
	AppSecret  string
	CorpID     string
	CorpSecret string
}

// ID returns the public half of the credentials: the app key, else the
// corp id.
func (c Credentials) ID() string {
	if c.AppKey != "" {
		return c.AppKey
	}
	return c.CorpID
}

// String implements fmt.Stringer without the secrets.
func (c Credentials) String() string { return "Credentials{" + c.ID() + ", secret redacted}" }

// GoString implements fmt.GoStringer without the secrets.
func (c Credentials) GoString() string { return c.String() }

// Validate reports credentials that cannot be sent.
func (c Credentials) Validate() error {
	switch {
	case c.AppKey != "" || c.AppSecret != "":
		return firstErr(required("app_key", c.AppKey), required("app_secret", c.AppSecret))
	case c.CorpID != "" || c.CorpSecret != "":
		return firstErr(required("corp_id", c.CorpID), required("corp_secret", c.CorpSecret))
	}
	return invalid("app_key", "required: give app_key and app_secret, or corp_id and corp_secret")
}

// Token is an access token and when it stops being valid. Its String never
// shows the token.
type Token struct {
	AccessToken string
	// ExpiresIn is the lifetime DingTalk gave, after sanity checks.
	ExpiresIn time.Duration
	// ExpiresAt is when the token was fetched plus ExpiresIn.
	ExpiresAt time.Time
}

// String implements fmt.Stringer without the token.
func (t Token) String() string {
	return "Token{redacted, expires " + t.ExpiresAt.Format(time.RFC3339) + "}"
}

// GoString implements fmt.GoStringer without the token.
func (t Token) GoString() string { return t.String() }

type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// GetToken fetches the app's access token from /gettoken. DingTalk answers
// the same token while it is valid and throttles apps that ask often: cache
// it. Bad credentials come back as an *Error whose BadCredentials is true.
func (c *Client) GetToken(ctx context.Context, cred Credentials) (*Token, error) {
	if err := cred.Validate(); err != nil {
		return nil, err
	}
	q := url.Values{}
	if cred.AppKey != "" {
		q.Set("appkey", cred.AppKey)
		q.Set("appsecret", cred.AppSecret)
	} else {
		q.Set("corpid", cred.CorpID)
		q.Set("corpsecret", cred.CorpSecret)
	}
	start := c.now()
	var a tokenAnswer
	if err := c.call(ctx, http.MethodGet, PathGetToken, q, nil, &a); err != nil {
		return nil, err
	}
	if a.AccessToken == "" {
		return nil, &TransportError{Method: http.MethodGet, Path: PathGetToken, Err: errNoToken}
	}
	return newToken(a.AccessToken, a.ExpiresIn, start), nil
}

type constError string

func (e constError) Error() string { return string(e) }

const errNoToken = constError("malformed answer: errcode 0 without access_token")

func tokenQuery(token string) url.Values {
	return url.Values{"access_token": {token}}
}

type tokenAnswerV1 struct {
	AccessToken string `json:"accessToken"`
	ExpireIn    int64  `json:"expireIn"`
}

// GetAccessTokenV1 fetches the app's access token from the new host's
// /v1.0/oauth2/accessToken, the token its v1.0 APIs take. Only an app key
// and secret can ask for it. Like GetToken it answers the same token while
// it is valid: cache it. Bad credentials come back as an *Error whose
// BadCredentials is true (HTTP 400 invalidClientIdOrSecret).
func (c *Client) GetAccessTokenV1(ctx context.Context, cred Credentials) (*Token, error) {
	if cred.AppKey == "" && cred.CorpID != "" {
		return nil, invalid("app_key", "required: the new host's token endpoint takes app_key and app_secret, not corp_id")
	}
	if err := cred.Validate(); err != nil {
		return nil, err
	}
	body := map[string]string{"appKey": cred.AppKey, "appSecret": cred.AppSecret}
	start := c.now()
	var a tokenAnswerV1
	if err := c.callV1(ctx, http.MethodPost, PathAccessTokenV1, "", body, &a); err != nil {
		return nil, err
	}
	if a.AccessToken == "" {
		return nil, &TransportError{Method: http.MethodPost, Path: PathAccessTokenV1, Err: errNoTokenV1}
	}
	return newToken(a.AccessToken, a.ExpireIn, start), nil
}

const errNoTokenV1 = constError("malformed answer: no accessToken")

// newToken is token v with DingTalk's lifetime of expiresIn seconds, taken
// at its word only when it is sane.
func newToken(v string, expiresIn int64, fetched time.Time) *Token {
	life := DefaultTokenLifetime
	if expiresIn > 0 && expiresIn <= int64(MaxTokenLifetime/time.Second) {
		life = time.Duration(expiresIn) * time.Second
	}
	return &Token{AccessToken: v, ExpiresIn: life, ExpiresAt: fetched.Add(life)}
}
