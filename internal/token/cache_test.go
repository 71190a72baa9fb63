package token_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/internal/token"
)

// clock is a settable clock safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fetcher is a fake token.Fetcher. Its n-th token for an app key is
// "<app key>-<n>", valid for life from the clock's now. It counts its calls.
type fetcher struct {
	clock *clock

	mu    sync.Mutex
	life  time.Duration
	err   error          // returned instead of a token while set
	calls map[string]int // by app key
	total int

	// started, when set, receives the app key as each call starts.
	started chan string
	// release, when set, blocks each call until it is closed.
	release chan struct{}
}

func newFetcher(c *clock) *fetcher {
	return &fetcher{clock: c, life: 2 * time.Hour, calls: map[string]int{}}
}

func (f *fetcher) GetToken(ctx context.Context, cred dingtalk.Credentials) (*dingtalk.Token, error) {
	f.mu.Lock()
	f.calls[cred.AppKey]++
	f.total++
	n, life, err, started, release := f.calls[cred.AppKey], f.life, f.err, f.started, f.release
	f.mu.Unlock()

	if started != nil {
		started <- cred.AppKey
	}
	if release != nil {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	return &dingtalk.Token{AccessToken: fmt.Sprintf("%s-%d", cred.AppKey, n),
		ExpiresIn: life, ExpiresAt: f.clock.Now().Add(life)}, nil
}

func (f *fetcher) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fetcher) setLife(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.life = d
}

func (f *fetcher) setRelease(c chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.release = c
}

func (f *fetcher) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.total
}

func (f *fetcher) countFor(app string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[app]
}

func cred(app string) dingtalk.Credentials {
	return dingtalk.Credentials{AppKey: app, AppSecret: "secret-" + app}
}

// setup returns a process-local cache configured by cfg on a fake
// fetcher, both on one fake clock.
func setup(t *testing.T, cfg ...token.Config) (*token.Cache, *fetcher, *clock) {
	t.Helper()
	c := newClock()
	f := newFetcher(c)
	var cf token.Config
	if len(cfg) > 0 {
		cf = cfg[0]
	}
	cf.Now = c.Now
	cache := token.New(f, cf)
	t.Cleanup(cache.Close)
	return cache, f, c
}

// mustToken calls Token and fails the test on error.
func mustToken(t *testing.T, cache *token.Cache, app string) string {
	t.Helper()
	tok, err := cache.Token(context.Background(), app, cred(app))
	if err != nil {
		t.Fatalf("Token(%s): %v", app, err)
	}
	return tok
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

var errDown = errors.New("gettoken: connection refused")

func badCredentials() *dingtalk.Error {
	return &dingtalk.Error{Path: dingtalk.PathGetToken, Code: 40096, Message: "invalid appkey or appsecret"}
}

func TestTokenCached(t *testing.T) {
	cache, f, c := setup(t)
	first := mustToken(t, cache, "a")
	c.Add(time.Hour)
	second := mustToken(t, cache, "a")
	if got, want := first, "a-1"; got != want {
		t.Errorf("first token: got %v, want %v", got, want)
	}
	if got, want := second, first; got != want {
		t.Errorf("second token: got %v, want %v", got, want)
	}
	if got, want := f.count(), 1; got != want {
		t.Errorf("fetches: got %v, want %v", got, want)
	}
}

func TestTokenRefresh(t *testing.T) {
	const life = 2 * time.Hour
	tests := []struct {
		name    string
		life    time.Duration
		margin  time.Duration // Config.RefreshMargin; 0 keeps the default
		advance time.Duration
		// wantNow is the token the call after advance answers at once;
		// wantAfter the one a call answers once a background refresh, if
		// any, has ended; wantFetches counts fetches by then.
		wantNow, wantAfter string
		wantFetches        int
	}{
		{name: "default margin, just before", life: life,
			advance: life - token.DefaultRefreshMargin - time.Millisecond, wantNow: "a-1", wantAfter: "a-1", wantFetches: 1},
		{name: "default margin, at margin: refreshed behind the caller", life: life,
			advance: life - token.DefaultRefreshMargin, wantNow: "a-1", wantAfter: "a-2", wantFetches: 2},
		{name: "default margin, half the margin left: caller waits", life: life,
			advance: life - token.DefaultRefreshMargin/2, wantNow: "a-2", wantAfter: "a-2", wantFetches: 2},
		{name: "after expiry", life: life,
			advance: 3 * time.Hour, wantNow: "a-2", wantAfter: "a-2", wantFetches: 2},
		{name: "custom margin, just before", life: life, margin: time.Minute,
			advance: life - time.Minute - time.Millisecond, wantNow: "a-1", wantAfter: "a-1", wantFetches: 1},
		{name: "custom margin, at margin", life: life, margin: time.Minute,
			advance: life - time.Minute, wantNow: "a-1", wantAfter: "a-2", wantFetches: 2},
		{name: "5s token, just before tenth", life: 5 * time.Second,
			advance: 4500*time.Millisecond - time.Millisecond, wantNow: "a-1", wantAfter: "a-1", wantFetches: 1},
		{name: "5s token, at tenth", life: 5 * time.Second,
			advance: 4500 * time.Millisecond, wantNow: "a-1", wantAfter: "a-2", wantFetches: 2},
		{name: "5s token, 250ms left", life: 5 * time.Second,
			advance: 4750 * time.Millisecond, wantNow: "a-2", wantAfter: "a-2", wantFetches: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache, f, c := setup(t, token.Config{RefreshMargin: tt.margin})
			f.setLife(tt.life)
			mustToken(t, cache, "a")
			c.Add(tt.advance)
			if got := mustToken(t, cache, "a"); got != tt.wantNow {
				t.Errorf("token: got %v, want %v", got, tt.wantNow)
			}
			waitFor(t, "fetches", func() bool { return f.count() >= tt.wantFetches })
			waitFor(t, "token after refresh", func() bool { return mustToken(t, cache, "a") == tt.wantAfter })
			if got := f.count(); got != tt.wantFetches {
				t.Errorf("fetches: got %v, want %v", got, tt.wantFetches)
			}
		})
	}
}

// TestRefreshInBackground: while a token nearing its expiry is refreshed,
// every caller goes on getting the old one without waiting, and a single
// fetch is made.
func TestRefreshInBackground(t *testing.T) {
	cache, f, c := setup(t)
	mustToken(t, cache, "a")
	f.started = make(chan string, 1)
	f.release = make(chan struct{})
	c.Add(2*time.Hour - token.DefaultRefreshMargin)
	for i := range 100 {
		if got, want := mustToken(t, cache, "a"), "a-1"; got != want {
			t.Fatalf("call %d during refresh: got %v, want %v", i, got, want)
		}
	}
	<-f.started
	close(f.release)
	waitFor(t, "refreshed token", func() bool { return mustToken(t, cache, "a") == "a-2" })
	if got, want := f.count(), 2; got != want {
		t.Errorf("fetches: got %v, want %v", got, want)
	}
}

func TestTokenSingleFetch(t *testing.T) {
	tests := []struct {
		name    string
		apps    []string
		callers int // per app
	}{
		{name: "one app", apps: []string{"a"}, callers: 100},
		{name: "two apps", apps: []string{"a", "b"}, callers: 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache, f, _ := setup(t)
			f.started = make(chan string, len(tt.apps)*tt.callers)
			f.release = make(chan struct{})

			var entered atomic.Int32
			var wg sync.WaitGroup
			type result struct {
				app, tok string
				err      error
			}
			results := make(chan result, len(tt.apps)*tt.callers)
			for _, app := range tt.apps {
				for range tt.callers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						entered.Add(1)
						tok, err := cache.Token(context.Background(), app, cred(app))
						results <- result{app, tok, err}
					}()
				}
			}
			// Every app's fetch is under way at once (apps do not wait for
			// each other), and every caller has arrived, before any fetch
			// ends.
			seen := map[string]bool{}
			for range tt.apps {
				select {
				case app := <-f.started:
					seen[app] = true
				case <-time.After(5 * time.Second):
					t.Fatalf("timed out waiting for fetches to start; started %v", seen)
				}
			}
			waitFor(t, "all callers", func() bool { return int(entered.Load()) == len(tt.apps)*tt.callers })
			close(f.release)
			wg.Wait()
			close(results)

			for r := range results {
				if r.err != nil {
					t.Errorf("Token(%s): %v", r.app, r.err)
					continue
				}
				if want := r.app + "-1"; r.tok != want {
					t.Errorf("Token(%s): got %v, want %v", r.app, r.tok, want)
				}
			}
			for _, app := range tt.apps {
				if got, want := f.countFor(app), 1; got != want {
					t.Errorf("fetches for %s: got %v, want %v", app, got, want)
				}
			}
			if got, want := len(seen), len(tt.apps); got != want {
				t.Errorf("apps fetched: got %v, want %v", got, want)
			}
		})
	}
}

func TestInvalidate(t *testing.T) {
	tests := []struct {
		name        string
		invalidate  func(first, second string) string
		wantToken   string
		wantFetches int
	}{
		{name: "current token", invalidate: func(_, second string) string { return second },
			wantToken: "a-3", wantFetches: 3},
		{name: "old token keeps newer", invalidate: func(first, _ string) string { return first },
			wantToken: "a-2", wantFetches: 2},
		{name: "unknown token", invalidate: func(_, _ string) string { return "not-a-token" },
			wantToken: "a-2", wantFetches: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache, f, c := setup(t)
			first := mustToken(t, cache, "a")
			c.Add(2 * time.Hour) // expired: the next call fetches a newer token
			second := mustToken(t, cache, "a")
			cache.Invalidate(context.Background(), "a", tt.invalidate(first, second))
			if got := mustToken(t, cache, "a"); got != tt.wantToken {
				t.Errorf("token: got %v, want %v", got, tt.wantToken)
			}
			if got := f.count(); got != tt.wantFetches {
				t.Errorf("fetches: got %v, want %v", got, tt.wantFetches)
			}
		})
	}
}

func TestInvalidateOtherApp(t *testing.T) {
	cache, f, _ := setup(t)
	a := mustToken(t, cache, "a")
	mustToken(t, cache, "b")
	cache.Invalidate(context.Background(), "b", a)
	cache.Invalidate(context.Background(), "never-seen", a)
	if got, want := mustToken(t, cache, "b"), "b-1"; got != want {
		t.Errorf("token b: got %v, want %v", got, want)
	}
	if got, want := f.count(), 2; got != want {
		t.Errorf("fetches: got %v, want %v", got, want)
	}
}

// checkBadCredentials fails the test unless err is DingTalk's refusal of
// the credentials, errcode 40096.
func checkBadCredentials(t *testing.T, what string, err error) {
	t.Helper()
	var de *dingtalk.Error
	if !errors.As(err, &de) {
		t.Errorf("%s: errors.As(%v, *dingtalk.Error): got false, want true", what, err)
		return
	}
	if got, want := de.Code, 40096; got != want {
		t.Errorf("%s: Code: got %v, want %v", what, got, want)
	}
}

func TestBadCredentials(t *testing.T) {
	cache, f, c := setup(t)
	ctx := context.Background()
	f.setErr(badCredentials())

	_, err := cache.Token(ctx, "a", cred("a"))
	if err == nil {
		t.Fatalf("first Token: got nil error, want one")
	}
	checkBadCredentials(t, "first Token", err)

	for i := range 100 {
		tok, err := cache.Token(ctx, "a", cred("a"))
		if tok != "" {
			t.Errorf("call %d: token: got %v, want empty", i, tok)
		}
		if got, want := errors.Is(err, token.ErrBadCredentials), true; got != want {
			t.Fatalf("call %d: errors.Is(%v, ErrBadCredentials): got %v, want %v", i, err, got, want)
		}
		checkBadCredentials(t, fmt.Sprintf("call %d", i), err)
	}
	if got, want := f.count(), 1; got != want {
		t.Errorf("fetches within BadCredentialsTTL: got %v, want %v", got, want)
	}

	// Another app is not affected.
	f.setErr(nil)
	if got, want := mustToken(t, cache, "b"), "b-1"; got != want {
		t.Errorf("token b: got %v, want %v", got, want)
	}
	f.setErr(badCredentials())

	// Just before the TTL ends it still fails fast; at its end it asks again.
	c.Add(token.DefaultBadCredentialsTTL - time.Millisecond)
	if _, err := cache.Token(ctx, "a", cred("a")); !errors.Is(err, token.ErrBadCredentials) {
		t.Errorf("before TTL: got %v, want %v", err, token.ErrBadCredentials)
	}
	if got, want := f.countFor("a"), 1; got != want {
		t.Errorf("fetches before TTL: got %v, want %v", got, want)
	}
	c.Add(time.Millisecond)
	_, err = cache.Token(ctx, "a", cred("a"))
	checkBadCredentials(t, "after TTL", err)
	if got, want := f.countFor("a"), 2; got != want {
		t.Errorf("fetches after TTL: got %v, want %v", got, want)
	}

	// Fixed credentials work once the TTL has passed again.
	f.setErr(nil)
	c.Add(token.DefaultBadCredentialsTTL)
	if got, want := mustToken(t, cache, "a"), "a-3"; got != want {
		t.Errorf("token after fix: got %v, want %v", got, want)
	}
	if got, want := mustToken(t, cache, "a"), "a-3"; got != want {
		t.Errorf("cached token after fix: got %v, want %v", got, want)
	}
	if got, want := f.countFor("a"), 3; got != want {
		t.Errorf("fetches after fix: got %v, want %v", got, want)
	}
}

func TestBadCredentialsTTLSetting(t *testing.T) {
	cache, f, c := setup(t, token.Config{BadCredentialsTTL: 10 * time.Second})
	f.setErr(badCredentials())
	ctx := context.Background()
	if _, err := cache.Token(ctx, "a", cred("a")); err == nil {
		t.Fatalf("first Token: got nil error, want one")
	}
	c.Add(10 * time.Second)
	if _, err := cache.Token(ctx, "a", cred("a")); errors.Is(err, token.ErrBadCredentials) {
		t.Errorf("after TTL: got %v, want a fresh refusal", err)
	}
	if got, want := f.count(), 2; got != want {
		t.Errorf("fetches: got %v, want %v", got, want)
	}
}

func TestFetchError(t *testing.T) {
	transient := &dingtalk.Error{Path: dingtalk.PathGetToken, Code: -1, Message: "system busy"}
	tests := []struct {
		name      string
		err       error
		cached    bool          // fetch a token first
		advance   time.Duration // then move the clock
		wantToken string
		wantErr   error // nil: no error
	}{
		{name: "transient, old token still valid", err: errDown, cached: true,
			advance: 2*time.Hour - time.Minute, wantToken: "a-1"},
		{name: "busy, old token still valid", err: transient, cached: true,
			advance: 2*time.Hour - time.Minute, wantToken: "a-1"},
		{name: "transient, old token expired", err: errDown, cached: true,
			advance: 2 * time.Hour, wantErr: errDown},
		{name: "transient, no token", err: errDown, wantErr: errDown},
		{name: "busy, no token", err: transient, wantErr: transient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache, f, c := setup(t)
			wantFetches := 1
			if tt.cached {
				mustToken(t, cache, "a")
				wantFetches++
			}
			c.Add(tt.advance)
			f.setErr(tt.err)
			tok, err := cache.Token(context.Background(), "a", cred("a"))
			if tok != tt.wantToken {
				t.Errorf("token: got %v, want %v", tok, tt.wantToken)
			}
			if tt.wantErr == nil && err != nil {
				t.Errorf("error: got %v, want nil", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error: got %v, want %v", err, tt.wantErr)
			}
			if got := f.count(); got != wantFetches {
				t.Errorf("fetches: got %v, want %v", got, wantFetches)
			}

			// A transient error is not remembered: once the fetcher works
			// again, the next call fetches.
			f.setErr(nil)
			if got, want := mustToken(t, cache, "a"), fmt.Sprintf("a-%d", wantFetches+1); got != want {
				t.Errorf("token after recovery: got %v, want %v", got, want)
			}
		})
	}
}

func TestTokenContextWhileOtherFetches(t *testing.T) {
	tests := []struct {
		name    string
		ctx     func() (context.Context, context.CancelFunc)
		wantErr error
	}{
		{name: "canceled", wantErr: context.Canceled, ctx: func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}},
		{name: "deadline", wantErr: context.DeadlineExceeded, ctx: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), time.Millisecond)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache, f, _ := setup(t)
			f.started = make(chan string, 1)
			f.release = make(chan struct{})

			type result struct {
				tok string
				err error
			}
			holder := make(chan result, 1)
			go func() {
				tok, err := cache.Token(context.Background(), "a", cred("a"))
				holder <- result{tok, err}
			}()
			select {
			case <-f.started:
			case <-time.After(5 * time.Second):
				t.Fatalf("timed out waiting for the fetch to start")
			}

			ctx, cancel := tt.ctx()
			defer cancel()
			tok, err := cache.Token(ctx, "a", cred("a"))
			if tok != "" {
				t.Errorf("token: got %v, want empty", tok)
			}
			if got, want := err, tt.wantErr; got != want {
				t.Errorf("error: got %v, want %v", got, want)
			}

			close(f.release)
			r := <-holder
			if r.err != nil {
				t.Fatalf("holder's Token: %v", r.err)
			}
			if got, want := r.tok, "a-1"; got != want {
				t.Errorf("holder's token: got %v, want %v", got, want)
			}
			if got, want := f.count(), 1; got != want {
				t.Errorf("fetches: got %v, want %v", got, want)
			}
		})
	}
}
