package token

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dingq/dingq/dingtalk"
)

// Fetcher fetches a new token; *dingtalk.Client is one.
type Fetcher interface {
	GetToken(ctx context.Context, cred dingtalk.Credentials) (*dingtalk.Token, error)
}

// Defaults of a Cache.
const (
	// DefaultRefreshMargin: a token this close to its expiry is replaced.
	DefaultRefreshMargin = 5 * time.Minute
	// DefaultBadCredentialsTTL: how long refused credentials are remembered.
	DefaultBadCredentialsTTL = time.Minute
)

// ErrBadCredentials wraps the remembered refusal of an app's credentials;
// errors.As still finds DingTalk's *dingtalk.Error in it.
var ErrBadCredentials = errors.New("token: credentials refused recently")

// Cache holds one token per app. It is safe for concurrent use.
type Cache struct {
	fetch Fetcher
	// RefreshMargin: see DefaultRefreshMargin. Set before first use.
	RefreshMargin time.Duration
	// BadCredentialsTTL: see DefaultBadCredentialsTTL. Set before first use.
	BadCredentialsTTL time.Duration
	now               func() time.Time

	mu   sync.Mutex
	apps map[string]*entry
}

type entry struct {
	lock     chan struct{} // one fetch at a time per app
	tok      *dingtalk.Token
	badErr   error
	badUntil time.Time
}

// NewCache returns an empty cache fetching through f.
func NewCache(f Fetcher) *Cache {
	return &Cache{fetch: f, RefreshMargin: DefaultRefreshMargin,
		BadCredentialsTTL: DefaultBadCredentialsTTL, now: time.Now, apps: map[string]*entry{}}
}

// SetClock replaces the cache's clock (tests).
func (c *Cache) SetClock(now func() time.Time) { c.now = now }

func (c *Cache) entry(app string) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.apps[app]
	if !ok {
		e = &entry{lock: make(chan struct{}, 1)}
		c.apps[app] = e
	}
	return e
}

// Token returns app's access token, fetching one with cred when there is
// none or it is about to expire. Callers for one app wait for a single
// fetch. Credentials DingTalk refused are refused again without a call for
// BadCredentialsTTL.
func (c *Cache) Token(ctx context.Context, app string, cred dingtalk.Credentials) (string, error) {
	e := c.entry(app)
	select {
	case e.lock <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-e.lock }()

	now := c.now()
	if e.tok != nil && now.Before(e.tok.ExpiresAt.Add(-c.margin(e.tok))) {
		return e.tok.AccessToken, nil
	}
	if e.badErr != nil && now.Before(e.badUntil) {
		return "", fmt.Errorf("%w (app %s, retry after %s): %w", ErrBadCredentials, app,
			e.badUntil.Sub(now).Round(time.Second), e.badErr)
	}
	tok, err := c.fetch.GetToken(ctx, cred)
	if err != nil {
		var de *dingtalk.Error
		if errors.As(err, &de) && de.BadCredentials() {
			e.badErr, e.badUntil = err, now.Add(c.BadCredentialsTTL)
		}
		if e.tok != nil && now.Before(e.tok.ExpiresAt) && dingtalk.Classify(err) != dingtalk.ClassPermanent {
			// The refresh failed but the old token still works.
			return e.tok.AccessToken, nil
		}
		return "", err
	}
	e.tok, e.badErr = tok, nil
	return tok.AccessToken, nil
}

// margin is the refresh margin for t: RefreshMargin, but never more than a
// tenth of a short token's lifetime.
func (c *Cache) margin(t *dingtalk.Token) time.Duration {
	if m := t.ExpiresIn / 10; m < c.RefreshMargin {
		return m
	}
	return c.RefreshMargin
}

// Invalidate drops app's token if it is still token (compare-and-delete): a
// token refused by DingTalk goes, a newer one fetched meanwhile stays.
func (c *Cache) Invalidate(app, token string) {
	e := c.entry(app)
	e.lock <- struct{}{}
	defer func() { <-e.lock }()
	if e.tok != nil && e.tok.AccessToken == token {
		e.tok = nil
	}
}
