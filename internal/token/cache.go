package token

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/internal/metrics"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Fetcher fetches a new token; *dingtalk.Client is one.
type Fetcher interface {
	GetToken(ctx context.Context, cred dingtalk.Credentials) (*dingtalk.Token, error)
}

// Defaults of a Cache.
const (
	// DefaultRefreshMargin: a token this close to its expiry is replaced in
	// the background, while it is still handed out.
	DefaultRefreshMargin = 5 * time.Minute
	// DefaultBadCredentialsTTL: how long refused credentials are remembered.
	DefaultBadCredentialsTTL = time.Minute
	// DefaultLockTTL: how long one process may hold an app's fetch lock
	// before another may take it over.
	DefaultLockTTL = 15 * time.Second
)

// ErrBadCredentials wraps the remembered refusal of an app's credentials;
// errors.As still finds DingTalk's *dingtalk.Error in it.
var ErrBadCredentials = errors.New("token: credentials refused recently")

// ErrClosed is returned by a Cache after Close.
var ErrClosed = errors.New("token: cache closed")

// Config configures a Cache. The zero value is a process-local cache.
type Config struct {
	// Redis, if set, shares tokens, fetch locks and refused credentials
	// with every process using the same Redis and KeyPrefix. If nil, the
	// cache is process-local.
	Redis redis.UniversalClient
	// KeyPrefix starts the cache's Redis keys; required with Redis.
	KeyPrefix string
	// RefreshMargin: a token this close to its expiry is refreshed in the
	// background; it is never more than a tenth of the token's lifetime. It
	// is handed out until half the margin is left. If zero,
	// DefaultRefreshMargin.
	RefreshMargin time.Duration
	// BadCredentialsTTL: how long credentials DingTalk refused are refused
	// again without a call. If zero, DefaultBadCredentialsTTL.
	BadCredentialsTTL time.Duration
	// LockTTL bounds how long a process holds an app's fetch lock; its fetch
	// gives up after two thirds of it. If zero, DefaultLockTTL.
	LockTTL time.Duration
	// Logger receives fetches, refusals and Redis fallbacks. If nil,
	// nothing is logged.
	Logger *zap.Logger
	// Now tells the time. If nil, time.Now.
	Now func() time.Time
	// Metrics counts fetches and cache hits. If nil, nothing is measured.
	Metrics *metrics.Metrics
}

func (c *Config) setDefaults() {
	if c.RefreshMargin <= 0 {
		c.RefreshMargin = DefaultRefreshMargin
	}
	if c.BadCredentialsTTL <= 0 {
		c.BadCredentialsTTL = DefaultBadCredentialsTTL
	}
	if c.LockTTL <= 0 {
		c.LockTTL = DefaultLockTTL
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Cache holds one access token per app. In steady state Token answers from
// memory: a token nearing its expiry is refreshed in the background by one
// caller while the others go on using it. With Redis, every process shares
// each app's token: one process fetches (holding the app's lock in Redis),
// the others wait for it or keep using the token they have; a token written
// under a lock that was lost never replaces the newer one. When Redis
// cannot be reached the cache falls back to the token it holds, and fetches
// on its own once that has expired.
//
// It is safe for concurrent use. Close stops background refreshes.
type Cache struct {
	fetch  Fetcher
	cfg    Config
	shared *shared // nil: process-local
	log    *zap.Logger
	now    func() time.Time

	base   context.Context // ends at Close; fetches run under it
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	apps   map[string]*entry
}

// entry is one app's state in this process. Its fields are guarded by mu.
type entry struct {
	mu        sync.Mutex
	tok       *held
	nextCheck time.Time // in the refresh window: when to look again (wall clock: it paces Redis reads)
	badErr    *dingtalk.Error
	badCred   string // credHash of the refused credentials
	badUntil  time.Time
	flight    *flight // the fetch under way, if any
	// refused are the last tokens DingTalk refused here: never taken from
	// Redis again, where another process may not have dropped them yet.
	refused []string
}

// maxRefused bounds entry.refused.
const maxRefused = 8

// isRefused reports whether DingTalk refused v in this process. e.mu is
// held.
func (e *entry) isRefused(v string) bool {
	for _, r := range e.refused {
		if r == v {
			return true
		}
	}
	return false
}

// held is a token and when to refresh and drop it.
type held struct {
	value     string
	expiresAt time.Time
	refreshAt time.Time // from here, refresh in the background
	useBy     time.Time // from here, wait for a new one
}

// flight is one load of an app's token, shared by every caller waiting.
type flight struct {
	done  chan struct{}
	need  bool // a caller has no usable token and waits for this one
	value string
	err   error
}

// New returns an empty cache fetching through f.
func New(f Fetcher, cfg Config) *Cache {
	cfg.setDefaults()
	c := &Cache{fetch: f, cfg: cfg, log: cfg.Logger, now: cfg.Now, apps: map[string]*entry{}}
	if cfg.Redis != nil {
		if cfg.KeyPrefix == "" {
			panic("token: Config.KeyPrefix is required with Config.Redis")
		}
		c.shared = &shared{rdb: cfg.Redis, keys: newKeys(cfg.KeyPrefix)}
	}
	c.base, c.cancel = context.WithCancel(context.Background())
	return c
}

// Close stops background refreshes and waits for fetches under way to
// end. Token then returns ErrClosed.
func (c *Cache) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
}

func (c *Cache) entry(app string) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.apps[app]
	if !ok {
		e = &entry{}
		c.apps[app] = e
	}
	return e
}

// Token returns app's access token. It fetches one with cred, or takes the
// one another process fetched, when it holds none it may still use; it
// starts a background refresh when the token nears its expiry. Callers for
// one app share a single load. Credentials DingTalk refused are refused
// again without a call for BadCredentialsTTL, in every process.
func (c *Cache) Token(ctx context.Context, app string, cred dingtalk.Credentials) (string, error) {
	e := c.entry(app)
	for {
		e.mu.Lock()
		now := c.now()
		if t := e.tok; t != nil && now.Before(t.useBy) {
			if !now.Before(t.refreshAt) && e.flight == nil && time.Now().After(e.nextCheck) {
				e.nextCheck = time.Now().Add(checkEvery(t))
				c.startLocked(e, app, cred, false)
			}
			e.mu.Unlock()
			c.cfg.Metrics.TokenCacheHit(app, metrics.LayerMemory)
			return t.value, nil
		}
		if err := c.refusedLocked(e, app, cred, now); err != nil {
			e.mu.Unlock()
			return "", err
		}
		f := e.flight
		if f == nil {
			if f = c.startLocked(e, app, cred, true); f == nil {
				e.mu.Unlock()
				return "", ErrClosed
			}
		}
		e.mu.Unlock()

		select {
		case <-f.done:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		if f.need {
			return f.value, f.err
		}
		// A background refresh ended; it may have left a token or a
		// refusal, or nothing (another process is fetching): look again.
	}
}

// refusedLocked returns the remembered refusal of cred, if it still holds.
// e.mu is held.
func (c *Cache) refusedLocked(e *entry, app string, cred dingtalk.Credentials, now time.Time) error {
	if e.badErr == nil || !now.Before(e.badUntil) || e.badCred != credHash(cred) {
		return nil
	}
	return fmt.Errorf("%w (app %s, retry after %s): %w", ErrBadCredentials, app,
		e.badUntil.Sub(now).Round(time.Second), e.badErr)
}

// checkEvery is how often a token in its refresh window is looked up again
// while another process refreshes it.
func checkEvery(t *held) time.Duration {
	return min(max(t.useBy.Sub(t.refreshAt)/10, 10*time.Millisecond), 5*time.Second)
}

// startLocked starts a load of app's token in the background and returns
// it, or nil after Close. e.mu is held.
func (c *Cache) startLocked(e *entry, app string, cred dingtalk.Credentials, need bool) *flight {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	f := &flight{done: make(chan struct{}), need: need}
	e.flight = f
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(c.base, 2*c.cfg.LockTTL)
		v, err := c.load(ctx, e, app, cred, need)
		cancel()
		e.mu.Lock()
		f.value, f.err = v, err
		e.flight = nil
		e.mu.Unlock()
		close(f.done)
	}()
	return f
}

// load gets app a token. need says a caller has none it may use: then load
// waits for another process's fetch and answers a token or an error. A
// background refresh (need false) gives up quietly when another process is
// fetching, and answers "" with the token kept.
func (c *Cache) load(ctx context.Context, e *entry, app string, cred dingtalk.Credentials, need bool) (string, error) {
	if c.shared == nil {
		return c.fetchLocal(ctx, e, app, cred, need)
	}
	wait := 10 * time.Millisecond
	for {
		if _, v, done, err := c.consult(ctx, e, app, cred, need); done {
			return v, err
		}
		owner, got, err := c.shared.lock(ctx, app, c.cfg.LockTTL)
		if err != nil {
			return c.fallback(ctx, e, app, cred, need, err)
		}
		if got {
			return c.fetchShared(ctx, e, app, cred, need, owner)
		}
		if !need {
			return "", nil
		}
		select {
		case <-time.After(wait):
			wait = min(2*wait, 100*time.Millisecond)
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// consult reads app's state in Redis and adopts what it offers. done says
// the load ends with v and err: a token that suits, a refusal of cred, or
// the fallback's answer when Redis failed. Else st is the state to fetch
// under.
func (c *Cache) consult(ctx context.Context, e *entry, app string, cred dingtalk.Credentials, need bool) (st *state, v string, done bool, err error) {
	st, rerr := c.shared.read(ctx, app)
	if rerr != nil {
		v, err = c.fallback(ctx, e, app, cred, need, rerr)
		return nil, v, true, err
	}
	if v, ok := c.take(e, st, app, cred, need); ok {
		return st, v, true, nil
	}
	if err := c.takeRefusal(e, st, app, cred); err != nil {
		return st, "", true, err
	}
	return st, "", false, nil
}

// take adopts the shared token in st if it suits: one for cred's app that
// may still be used, and, for a background refresh, one that is not itself
// due for a refresh.
func (c *Cache) take(e *entry, st *state, app string, cred dingtalk.Credentials, need bool) (string, bool) {
	if st.tok == nil || st.tok.id != cred.ID() {
		return "", false
	}
	t := c.hold(st.tok.value, st.tok.expiresAt, st.tok.life)
	now := c.now()
	if !now.Before(t.useBy) || (!need && !now.Before(t.refreshAt)) {
		return "", false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.isRefused(t.value) {
		return "", false
	}
	e.tok = t
	c.cfg.Metrics.TokenCacheHit(app, metrics.LayerRedis)
	return t.value, true
}

// takeRefusal adopts another process's record that DingTalk refused cred.
func (c *Cache) takeRefusal(e *entry, st *state, app string, cred dingtalk.Credentials) error {
	if st.refused == nil || st.refused.cred != credHash(cred) || st.refused.ttl <= 0 {
		return nil
	}
	now := c.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.badErr, e.badCred, e.badUntil = st.refused.err, st.refused.cred, now.Add(st.refused.ttl)
	return c.refusedLocked(e, app, cred, now)
}

// fetchShared fetches app's token holding its lock (owner), and shares it.
func (c *Cache) fetchShared(ctx context.Context, e *entry, app string, cred dingtalk.Credentials, need bool, owner string) (string, error) {
	defer func() {
		// Even when ctx ended: a lock left behind blocks the fleet until
		// its TTL.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		if err := c.shared.unlock(uctx, app, owner); err != nil {
			c.log.Warn("token lock not released; it expires by itself", zap.String("app", app),
				zap.Duration("lock_ttl", c.cfg.LockTTL), zap.Error(err))
		}
	}()
	// Another process may have written a token between our read and our
	// lock.
	st, v, done, err := c.consult(ctx, e, app, cred, need)
	if done {
		return v, err
	}

	tok, err := c.getToken(ctx, e, app, cred, need)
	if err != nil {
		var de *dingtalk.Error
		if errors.As(err, &de) && de.BadCredentials() {
			if werr := c.shared.refuse(ctx, app, credHash(cred), de, c.cfg.BadCredentialsTTL); werr != nil {
				c.log.Warn("refused credentials not shared", zap.String("app", app), zap.Error(werr))
			}
		}
		return c.keepOnError(e, need, err)
	}
	cur, err := c.shared.write(ctx, app, st.gen, cred.ID(), tok, c.now())
	switch {
	case err != nil:
		c.log.Warn("token not shared: Redis unreachable", zap.String("app", app), zap.Error(err))
	case cur != nil:
		// Our lock expired and another process wrote a newer token: it
		// stays, and we use it.
		c.log.Warn("fetched token older than the shared one; using the shared one",
			zap.String("app", app), zap.Duration("lock_ttl", c.cfg.LockTTL))
		if cur.id == cred.ID() {
			tok = &dingtalk.Token{AccessToken: cur.value, ExpiresAt: cur.expiresAt, ExpiresIn: cur.life}
		}
	}
	return c.keep(e, tok), nil
}

// fallback serves a load when Redis failed: the token held, while DingTalk
// still takes it; else, for a caller that needs one, a fetch of our own.
func (c *Cache) fallback(ctx context.Context, e *entry, app string, cred dingtalk.Credentials, need bool, rerr error) (string, error) {
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	e.mu.Lock()
	t := e.tok
	e.mu.Unlock()
	valid := t != nil && c.now().Before(t.expiresAt)
	c.log.Warn("token cache: Redis unreachable, using this process's token", zap.String("app", app),
		zap.Bool("have_token", valid), zap.Error(rerr))
	if valid {
		return t.value, nil
	}
	if !need {
		return "", nil
	}
	return c.fetchLocal(ctx, e, app, cred, need)
}

// fetchLocal fetches app's token without Redis.
func (c *Cache) fetchLocal(ctx context.Context, e *entry, app string, cred dingtalk.Credentials, need bool) (string, error) {
	tok, err := c.getToken(ctx, e, app, cred, need)
	if err != nil {
		return c.keepOnError(e, need, err)
	}
	return c.keep(e, tok), nil
}

// getToken calls DingTalk, within two thirds of the lock's TTL, and
// remembers refused credentials in this process.
func (c *Cache) getToken(ctx context.Context, e *entry, app string, cred dingtalk.Credentials, need bool) (*dingtalk.Token, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.LockTTL*2/3)
	defer cancel()
	start := time.Now()
	tok, err := c.fetch.GetToken(ctx, cred)
	took := time.Since(start)
	c.cfg.Metrics.TokenFetch(app, err == nil)
	if err != nil {
		var de *dingtalk.Error
		if errors.As(err, &de) && de.BadCredentials() {
			e.mu.Lock()
			e.badErr, e.badCred, e.badUntil = de, credHash(cred), c.now().Add(c.cfg.BadCredentialsTTL)
			e.mu.Unlock()
			c.log.Error("DingTalk refused the app's credentials; sends for the app fail until they are fixed",
				zap.String("app", app), zap.String("app_key", cred.ID()), zap.Int("errcode", de.Code),
				zap.String("error_code", de.ErrorCode), zap.Duration("refused_for", c.cfg.BadCredentialsTTL))
		} else {
			c.log.Warn("access token fetch failed", zap.String("app", app), zap.Bool("background", !need),
				zap.Duration("took", took), zap.Error(err))
		}
		return nil, err
	}
	c.log.Info("access token fetched", zap.String("app", app), zap.Bool("background", !need),
		zap.Duration("expires_in", tok.ExpiresIn), zap.Duration("took", took))
	return tok, nil
}

// keepOnError answers a failed fetch: a background refresh keeps the token
// held; a caller that needs one gets it while DingTalk still takes it,
// unless the error is permanent, else the error.
func (c *Cache) keepOnError(e *entry, need bool, err error) (string, error) {
	e.mu.Lock()
	t := e.tok
	e.mu.Unlock()
	if !need {
		return "", err
	}
	if t != nil && c.now().Before(t.expiresAt) && dingtalk.Classify(err) != dingtalk.ClassPermanent {
		return t.value, nil
	}
	return "", err
}

// keep makes tok, which DingTalk just gave, app's token in this process
// and returns its value. DingTalk answers the same token while it is valid,
// so a token it refused once and gives again is taken back.
func (c *Cache) keep(e *entry, tok *dingtalk.Token) string {
	t := c.hold(tok.AccessToken, tok.ExpiresAt, tok.ExpiresIn)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tok, e.badErr = t, nil
	e.refused = slices.DeleteFunc(e.refused, func(r string) bool { return r == t.value })
	return t.value
}

// hold returns a token's refresh and drop times: the margin is
// RefreshMargin, never more than a tenth of the lifetime; the token is
// dropped with half the margin left.
func (c *Cache) hold(value string, expiresAt time.Time, life time.Duration) *held {
	m := c.cfg.RefreshMargin
	if life > 0 && life/10 < m {
		m = life / 10
	}
	return &held{value: value, expiresAt: expiresAt, refreshAt: expiresAt.Add(-m), useBy: expiresAt.Add(-m / 2)}
}

// Invalidate drops app's token if it is still token (compare-and-delete),
// here and in Redis: a token refused by DingTalk goes, a newer one fetched
// meanwhile stays. This process never takes token from Redis again, in
// case a load under way puts it back before Redis forgets it.
func (c *Cache) Invalidate(ctx context.Context, app, token string) {
	e := c.entry(app)
	e.mu.Lock()
	if e.tok != nil && e.tok.value == token {
		e.tok = nil
	}
	if !e.isRefused(token) {
		if len(e.refused) == maxRefused {
			e.refused = e.refused[1:]
		}
		e.refused = append(e.refused, token)
	}
	e.mu.Unlock()
	if c.shared == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := c.shared.invalidate(ctx, app, token); err != nil {
		c.log.Warn("refused token not dropped from Redis", zap.String("app", app), zap.Error(err))
	}
}
