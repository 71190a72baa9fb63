package worker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/internal/metrics"
	"github.com/dingq/dingq/internal/outcome"
	"github.com/dingq/dingq/internal/token"
	"github.com/dingq/dingq/producer"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// App is a DingTalk app the worker sends as.
type App struct {
	// Name is what producers call it (dingtalk.apps[].name).
	Name        string
	Credentials dingtalk.Credentials
	AgentID     int64
	// RateLimit is the app's share of DingTalk's limits, for the whole
	// fleet.
	RateLimit AppLimits
}

// AppLimits are an app's rate limits, shared by every worker. A zero field
// takes DingTalk's standard-edition figure; a negative one turns the limit
// off.
type AppLimits struct {
	// CallsPerSecond caps the app's calls to each DingTalk API. If zero,
	// 20.
	CallsPerSecond int
	// RecipientsPerMinute caps the recipients (user ids plus department
	// ids) of the app's work notifications. If zero, 5,000.
	RecipientsPerMinute int
}

// Handlers holds the task handlers and what they share.
type Handlers struct {
	apps   map[string]App
	robots map[string]*Robot
	client *dingtalk.Client
	tokens *token.Cache
	// tokensV1 caches the new host's tokens (enterprise robots).
	tokensV1 *token.Cache
	store    *outcome.Store
	log      *zap.Logger
	// maxDelay caps the backoff of throttled attempts (RetryMaxDelay).
	maxDelay time.Duration
	limits   *limits
	// queue enqueues the tasks that follow a sent batch.
	queue           *asynq.Client
	maxRetry        int
	resultsDelay    time.Duration
	resultsMaxDelay time.Duration
	resendDelay     time.Duration
	// Callbacks and sessions.
	rdb          redis.UniversalClient
	keyPrefix    string
	callback     *CallbackConfig
	httpClient   *http.Client
	sessionPaths SessionPaths
	events       *producer.Producer
	metrics      *metrics.Metrics
	// redisPatience bounds retryRedis; zero means DefaultRedisPatience.
	redisPatience time.Duration
}

// errUnknownApp fails a message for an app the worker is not configured for.
var errUnknownApp = errors.New("unknown app")

// HandleMessageSend sends one work notification: it marks the message
// sending, takes the app's token, calls asyncsend_v2 (once more with a fresh
// token if DingTalk refused the token), and records what DingTalk said. A
// message already sent, failed or canceled is skipped, so a task the queue
// delivers twice is not sent twice.
func (h *Handlers) HandleMessageSend(ctx context.Context, t *asynq.Task) error {
	p, err := producer.DecodeMessageSend(t)
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	annotate(ctx, zap.String("message_id", p.ID), zap.String("app", p.App))
	c := counted{app: p.App, kind: kindMessage, recipients: len(p.UserIDs) + len(p.DeptIDs)}

	// A message already final takes none of DingTalk's budget.
	st, err := h.store.Status(ctx, p.ID)
	switch {
	case err == nil && st.Terminal():
		annotate(ctx, zap.String("status", string(st)), zap.Bool("duplicate", true))
		h.countFinal(ctx, c, p.ID) // canceled: its task leaves the queue now
		return nil
	case err != nil && !errors.Is(err, outcome.ErrNotFound):
		return err
	}
	app, known := h.apps[p.App]
	cost := recipients(p)
	if known {
		if err := h.limits.admit(ctx, app.Name, dingtalk.PathAsyncSendV2, cost); err != nil {
			return err
		}
	}

	n, err := h.beginAttempt(ctx, c, &outcome.Outcome{ID: p.ID, App: p.App, Recipients: len(p.UserIDs) + len(p.DeptIDs)}, "")
	if n == 0 {
		return err
	}
	if !known {
		return h.finish(ctx, c, p.ID, n, fmt.Errorf("%w %q: not in this worker's dingtalk.apps", errUnknownApp, p.App))
	}
	req := &dingtalk.SendRequest{AgentID: app.AgentID, UserIDs: p.UserIDs, DeptIDs: p.DeptIDs,
		ToAllUser: p.ToAllUser, Msg: p.Msg}
	res, err := h.send(ctx, app, req, cost, nil)
	if err != nil {
		return h.finish(ctx, c, p.ID, n, err)
	}
	annotate(ctx, zap.Int64("dingtalk_task_id", res.TaskID), zap.String("request_id", res.RequestID),
		zap.String("status", string(outcome.StatusSent)))
	// DingTalk has the message: record that before anything else, and never
	// answer the queue with an error that would send it again.
	tr := outcome.Transition{To: outcome.StatusSent, TaskID: res.TaskID, RequestID: res.RequestID,
		Attempt: &outcome.Attempt{N: n, Result: outcome.StatusSent, RequestID: res.RequestID}}
	if err := h.record(ctx, c, p.ID, tr); err != nil {
		h.log.Error("message sent but its outcome could not be recorded",
			zap.String("message_id", p.ID), zap.Int64("dingtalk_task_id", res.TaskID), zap.Error(err))
	}
	return nil
}

// beginAttempt marks record rec.ID (c) sending and counts an attempt,
// making the record from rec when the task was enqueued without one (by
// hand, or the record expired), and returns the attempt's number; via, if
// set, binds the record to the way it goes (outcome.Transition.Via). Zero
// says the task is done: the record was final already (nil, counted for
// the metrics) or could not be read (the error).
func (h *Handlers) beginAttempt(ctx context.Context, c counted, rec *outcome.Outcome, via string) (int, error) {
	tr := outcome.Transition{To: outcome.StatusSending, NewAttempt: true, Via: via}
	n, err := h.store.Apply(ctx, rec.ID, tr)
	if errors.Is(err, outcome.ErrNotFound) {
		if _, err = h.store.Create(ctx, rec, ""); err == nil {
			n, err = h.store.Apply(ctx, rec.ID, tr)
		}
	}
	var te *outcome.TerminalError
	if errors.As(err, &te) {
		annotate(ctx, zap.String("status", string(te.Status)), zap.Bool("duplicate", true))
		h.countFinal(ctx, c, rec.ID)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	annotate(ctx, zap.Int("attempt", n))
	return n, nil
}

// send calls asyncsend_v2 with app's cached token; when DingTalk refuses the
// token it drops it, fetches one new one and calls once more.
func (h *Handlers) send(ctx context.Context, app App, req *dingtalk.SendRequest, cost int, again func(context.Context) error) (*dingtalk.SendResult, error) {
	var res *dingtalk.SendResult
	err := h.call(ctx, app, dingtalk.PathAsyncSendV2, cost, again, func(tok string) (err error) {
		res, err = h.client.SendWorkNotification(ctx, tok, req)
		return err
	})
	return res, err
}

// call makes one call of app to api (admitted by the caller) with app's
// cached token, tells the limiter how it went, and when DingTalk refuses
// the token drops it, fetches one new one, takes a new slot and calls once
// more. With again set, a call DingTalk throttles for its per-app rate
// (90018), asking for a wait no longer than the limiter's own wait in
// place, waits that long and takes a new slot right here, once: handed
// back, a broadcast's batch would go to the end of the queue, behind every
// other batch. (A single message is handed back: each of its calls is an
// attempt in its outcome.) again runs before any second call and stops it
// with its error (a broadcast canceled meanwhile).
func (h *Handlers) call(ctx context.Context, app App, api string, cost int, again func(context.Context) error, do func(token string) error) error {
	return h.callVia(ctx, h.tokens, app, api, cost, again, do)
}

// callVia is call with the tokens of cache tokens: the legacy host's or
// the new host's.
func (h *Handlers) callVia(ctx context.Context, tokens *token.Cache, app App, api string, cost int, again func(context.Context) error, do func(token string) error) error {
	do = h.measured(app.Name, api, do)
	tok, err := tokens.Token(ctx, app.Name, app.Credentials)
	if err != nil {
		return err
	}
	err = do(tok)
	h.limits.observe(ctx, app.Name, api, err)
	var de *dingtalk.Error
	if wait, ok := dingtalk.RetryAfter(err); again != nil && ok && errors.As(err, &de) && !de.SharedLimit() && !de.IPBanned &&
		wait <= h.limits.maxWait {
		annotate(ctx, zap.Int("throttled_in_place", de.Code), zap.Duration("throttle_wait", wait))
		if err := sleep(ctx, wait); err != nil {
			return err
		}
		if err := h.limits.admit(ctx, app.Name, api, cost); err != nil {
			return err
		}
		if err := again(ctx); err != nil {
			return err
		}
		err = do(tok)
		h.limits.observe(ctx, app.Name, api, err)
	}
	if dingtalk.Classify(err) != dingtalk.ClassTokenInvalid {
		return err
	}
	tokens.Invalidate(ctx, app.Name, tok)
	if tok, err = tokens.Token(ctx, app.Name, app.Credentials); err != nil {
		return err
	}
	// The second call takes its own slot.
	if err := h.limits.admit(ctx, app.Name, api, cost); err != nil {
		return err
	}
	if again != nil {
		if err := again(ctx); err != nil {
			return err
		}
	}
	err = do(tok)
	h.limits.observe(ctx, app.Name, api, err)
	return err
}

// recipients is what a message costs against the recipients limit: its
// user ids and department ids (a department counts as one: its size is
// not known here), or one for a message to the whole company.
func recipients(p *producer.MessageSendPayload) int {
	n := len(p.UserIDs) + len(p.DeptIDs)
	if n == 0 {
		n = 1
	}
	return n
}

// finish records a failed attempt of record c and tells the queue what
// follows: a permanent error or the last allowed failure ends the message
// (failed, SkipRetry); anything else is retried; a cancelled context hands
// the task back untouched.
func (h *Handlers) finish(ctx context.Context, c counted, id string, n int, err error) error {
	final, info, ret := h.judge(ctx, err, n)
	to := outcome.StatusRetrying
	if final {
		to = outcome.StatusFailed
	}
	annotate(ctx, zap.String("status", string(to)))
	tr := outcome.Transition{To: to, Err: info, Attempt: &outcome.Attempt{N: n, Result: to, Error: info}}
	if rerr := h.record(ctx, c, id, tr); rerr != nil {
		h.log.Error("outcome could not be recorded", zap.String("message_id", id), zap.Error(rerr))
	}
	return ret
}

// judge says what the failed attempt n of a task means: whether it is
// final (a permanent error, or the last allowed failure; throttling and a
// cancelled context never are), the error as the outcome shows it, and
// the error to answer the queue with.
func (h *Handlers) judge(ctx context.Context, err error, n int) (final bool, info *outcome.ErrorInfo, ret error) {
	info = errorInfo(err)
	class := classify(err)
	annotate(ctx, zap.Int("errcode", info.Code), zap.String("error_class", class.String()))

	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, known := asynq.GetMaxRetry(ctx)
	exhausted := known && retried >= maxRetry
	final = class == dingtalk.ClassPermanent ||
		(exhausted && class != dingtalk.ClassThrottled && class != dingtalk.ClassCanceled)
	if final {
		return true, info, fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	var te *throttledError
	if errors.As(err, &te) {
		return false, info, te // the limiter's own wait
	}
	if class == dingtalk.ClassThrottled {
		wait := throttleWait(err, n, h.maxDelay)
		annotate(ctx, zap.Duration("retry_in", wait))
		return false, info, &throttledError{err: err, wait: wait}
	}
	return false, info, err
}

// record applies a transition of record c even when ctx is done (a
// shutdown must still write down what happened), trying until Redis
// answers, within retryRedis's patience. A record already final is left
// as it is. A record final after it, whoever made it so (this call, or an
// earlier try of it whose answer was lost), is counted unless someone
// counted it already.
func (h *Handlers) record(ctx context.Context, c counted, id string, tr outcome.Transition) error {
	if h.metrics != nil && tr.To.Terminal() {
		// The final transition and the claim of its count share one round
		// trip: every message ends here.
		claimant := rand.Text()
		var (
			st      outcome.Status
			claimed bool
		)
		err := h.retryRedis(ctx, func(ctx context.Context) error {
			_, s, ok, err := h.store.ApplyAndClaim(ctx, id, tr, claimant)
			if err != nil && !errors.Is(err, outcome.ErrTerminal) {
				return err
			}
			st, claimed = s, ok
			return nil
		})
		switch {
		case errors.Is(err, outcome.ErrNotClaimed):
			// Recorded; only its count is lost.
			h.log.Warn("could not tell whether the record is final; it is not counted",
				zap.String("record_id", id), zap.Error(err))
			return nil
		case claimed:
			h.countClaimed(c, st)
		}
		return err
	}
	final := false
	err := h.retryRedis(ctx, func(ctx context.Context) error {
		_, err := h.store.Apply(ctx, id, tr)
		if err != nil && !errors.Is(err, outcome.ErrTerminal) {
			return err
		}
		final = err != nil || tr.To.Terminal()
		return nil
	})
	if final {
		h.countFinal(ctx, c, id)
	}
	return err
}

// errorInfo turns err into what the outcome shows: DingTalk's code and
// message, never a URL or a token.
func errorInfo(err error) *outcome.ErrorInfo {
	info := &outcome.ErrorInfo{Class: classify(err).String(), Message: err.Error()}
	var de *dingtalk.Error
	if errors.As(err, &de) {
		info.Code, info.SubCode = de.Code, de.SubCode
		if de.ErrorCode != "" {
			info.SubCode = de.ErrorCode
		}
	}
	return info
}

// classify is dingtalk.Classify plus the worker's own permanent errors.
func classify(err error) dingtalk.Class {
	var le *limitError
	switch {
	case errors.Is(err, errUnknownApp), errors.Is(err, errUnknownRobot):
		return dingtalk.ClassPermanent
	case errors.As(err, &le):
		return dingtalk.ClassThrottled
	}
	return dingtalk.Classify(err)
}
