package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/internal/outcome"
	"github.com/dingq/dingq/internal/ratelimit"
	"github.com/dingq/dingq/internal/token"
	"github.com/dingq/dingq/producer"
	"github.com/hibiken/asynq"
	"go.uber.org/zap"
)

// Robot is a robot the worker sends through: a custom group robot
// (Webhooks), or the enterprise robot of one of the worker's apps (App).
type Robot struct {
	// Name is what producers call it (dingtalk.robots[].name).
	Name string
	// Webhooks are a custom group robot's webhooks: robots of one group
	// chat, taken in turn, so the group gets more than one robot's 20
	// messages a minute.
	Webhooks []dingtalk.Robot
	// RateLimit caps each webhook's messages, for the whole fleet.
	RateLimit RobotLimit
	// App names the app (Config.Apps) whose enterprise robot this is; it
	// needs the app's key and secret, the new host's token endpoint takes
	// nothing else. RobotCode is the robot's code; if empty, the app's key.
	App       string
	RobotCode string

	// hookIDs name the webhooks to the limiter and in records: a digest of
	// each token, never the token, and the same whatever their order.
	hookIDs []string
}

// webhookID names a webhook by a digest of its token.
func webhookID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:8])
}

// RobotLimit caps a custom robot's messages: Messages in any Per. Zero
// fields take DingTalk's figures, 20 a minute; a robot over them is
// blocked for dingtalk.RobotBlock.
type RobotLimit struct {
	Messages int
	Per      time.Duration
}

func (l RobotLimit) limit() ratelimit.Limit {
	n, per := l.Messages, l.Per
	if n <= 0 {
		n = dingtalk.RobotMessagesPerMinute
	}
	if per <= 0 {
		per = time.Minute
	}
	return ratelimit.Limit{N: n, Per: per}
}

// group reports whether r is a custom group robot.
func (r *Robot) group() bool { return len(r.Webhooks) > 0 }

// validate reports the first field of r that cannot work; apps are the
// worker's, by name.
func (r *Robot) validate(i int, apps map[string]App, hooks map[string]string) error {
	f := fmt.Sprintf("worker: Config.Robots[%d]", i)
	switch {
	case r.Name == "":
		return fmt.Errorf("%s.Name is required", f)
	case r.group() == (r.App != ""):
		return fmt.Errorf("%s: give Webhooks (a custom group robot) or App (an enterprise robot), one of them", f)
	case r.RateLimit.Messages < 0 || r.RateLimit.Per < 0:
		return fmt.Errorf("%s.RateLimit must be >= 0", f)
	}
	for j, w := range r.Webhooks {
		if w.Token == "" {
			return fmt.Errorf("%s.Webhooks[%d].Token is required", f, j)
		}
		if hooks[w.Token] != "" {
			// Two limits on one webhook would let it take twice its
			// messages, and DingTalk block it.
			return fmt.Errorf("%s.Webhooks[%d] is the same webhook as %s", f, j, hooks[w.Token])
		}
		hooks[w.Token] = fmt.Sprintf("%s.Webhooks[%d]", f, j)
	}
	if r.App != "" {
		a, ok := apps[r.App]
		switch {
		case !ok:
			return fmt.Errorf("%s.App %q is not one of Config.Apps", f, r.App)
		case a.Credentials.AppKey == "":
			return fmt.Errorf("%s.App %q has no app key: an enterprise robot's token needs app_key and app_secret", f, r.App)
		}
	}
	return nil
}

// webhookRequests are the limiter's requests of the webhooks message id
// may go through. A message bound to a webhook (via: an attempt went
// through it, and DingTalk may have taken it) goes through that one only:
// its msgUuid is that webhook's, and another one would post it twice.
// Otherwise every webhook, first the one the message id hashes to, so
// messages spread over them.
func (l *limits) webhookRequests(r *Robot, id, via string) []ratelimit.Request {
	if i := slices.Index(r.hookIDs, via); i >= 0 {
		return []ratelimit.Request{l.webhookRequest(r, i)}
	}
	h := fnv.New32a()
	h.Write([]byte(id))
	start := int(h.Sum32() % uint32(len(r.Webhooks)))
	reqs := make([]ratelimit.Request, len(r.Webhooks))
	for i := range reqs {
		reqs[i] = l.webhookRequest(r, (start+i)%len(r.Webhooks))
	}
	return reqs
}

// webhookRequest is the limiter's request of r's webhook i: its own calls
// limit, keyed by its id (never its token), and the fleet's.
func (l *limits) webhookRequest(r *Robot, i int) ratelimit.Request {
	return ratelimit.Request{App: "robot." + r.hookIDs[i], API: dingtalk.PathRobotSend,
		Calls: r.RateLimit.limit(), Fleet: l.fleet}
}

// webhookOf returns the index of the webhook req names.
func webhookOf(r *Robot, req ratelimit.Request) int {
	return max(slices.Index(r.hookIDs, strings.TrimPrefix(req.App, "robot.")), 0)
}

// viaAny unbinds a message from its webhook: DingTalk refused it there
// for certain, and another webhook may take it.
const viaAny = "*"

// errUnknownRobot fails a message for a robot the worker is not configured
// for, or configured as the other kind.
var errUnknownRobot = errors.New("unknown robot")

// HandleRobotSend sends one message through a custom group robot: it
// takes a slot of one of the robot's webhooks (the one an earlier attempt
// went through, if any), marks the message sending through it, calls the
// webhook, signed when it has a secret and with the message id as msgUuid
// unless the message has one, and records what DingTalk said. A webhook
// DingTalk blocked for sending too fast is held for the whole fleet until
// the block ends, and the message is free to go through another one.
func (h *Handlers) HandleRobotSend(ctx context.Context, t *asynq.Task) error {
	p, err := producer.DecodeRobotSend(t)
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	annotate(ctx, zap.String("message_id", p.ID), zap.String("robot", p.Robot))
	c := counted{app: p.Robot, kind: outcome.KindRobot, recipients: 1}

	st, via, err := h.store.StatusVia(ctx, p.ID)
	switch {
	case err == nil && st.Terminal():
		annotate(ctx, zap.String("status", string(st)), zap.Bool("duplicate", true))
		h.countFinal(ctx, c, p.ID)
		return nil
	case err != nil && !errors.Is(err, outcome.ErrNotFound):
		return err
	}
	rb, known := h.robots[p.Robot]
	known = known && rb.group()
	var (
		req  ratelimit.Request
		hook int
	)
	if known {
		reqs := h.limits.webhookRequests(rb, p.ID, via)
		i, err := h.limits.admitAny(ctx, reqs)
		if err != nil {
			return err
		}
		req, hook = reqs[i], webhookOf(rb, reqs[i])
		via = rb.hookIDs[hook]
	}

	n, err := h.beginAttempt(ctx, c, &outcome.Outcome{ID: p.ID, Kind: outcome.KindRobot, Robot: p.Robot, Recipients: 1}, via)
	if n == 0 {
		return err
	}
	if !known {
		return h.finish(ctx, c, p.ID, n, fmt.Errorf("%w %q: not a custom group robot of this worker's dingtalk.robots", errUnknownRobot, p.Robot))
	}
	annotate(ctx, zap.Int("webhook", hook), zap.String("webhook_id", via))
	msg := p.Msg
	if msg.MsgUUID == "" {
		msg.MsgUUID = p.ID // a retry is the same message for DingTalk
	}
	err = h.measured(rb.Name, dingtalk.PathRobotSend, func(string) error {
		return h.client.SendRobot(ctx, rb.Webhooks[hook], &msg)
	})("")
	h.limits.observeReq(ctx, req, err)
	if err != nil {
		var de *dingtalk.Error
		if wait, ok := dingtalk.RetryAfter(err); ok && errors.As(err, &de) && !de.IPBanned && wait >= dingtalk.RobotBlock {
			// Blocked for sending too fast (another sender shares the
			// webhook, or the limit is set too high): no call of the fleet
			// goes to it until the block ends; the others take the message.
			h.limits.hold(ctx, req, wait)
			h.log.Warn("DingTalk blocked a robot webhook for sending too fast; it rests until the block ends",
				zap.String("robot", rb.Name), zap.Int("webhook", hook), zap.String("webhook_id", via),
				zap.Duration("blocked_for", wait))
			if len(rb.Webhooks) > 1 {
				// DingTalk did not take it: another webhook may.
				if rerr := h.retryRedis(ctx, func(ctx context.Context) error { return h.store.SetVia(ctx, p.ID, viaAny) }); rerr == nil {
					err = &throttledError{err: err, wait: time.Second}
				}
			}
		}
		return h.finish(ctx, c, p.ID, n, err)
	}
	annotate(ctx, zap.String("status", string(outcome.StatusSent)))
	tr := outcome.Transition{To: outcome.StatusSent,
		Attempt: &outcome.Attempt{N: n, Result: outcome.StatusSent}}
	if err := h.record(ctx, c, p.ID, tr); err != nil {
		h.log.Error("robot message sent but its outcome could not be recorded",
			zap.String("message_id", p.ID), zap.Error(err))
	}
	return nil
}

// hold keeps req's calls from the whole fleet for d.
func (l *limits) hold(ctx context.Context, req ratelimit.Request, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := l.lim.Hold(ctx, req, d); err != nil {
		l.log.Error("robot block not shared with the fleet", zap.String("robot", req.App), zap.Error(err))
	}
}

// sendRobotBatch makes the batchSend call of an enterprise robot's batch,
// with the new host's token of the robot's app; again is HandleBatch's
// check before a second call.
func (h *Handlers) sendRobotBatch(ctx context.Context, app App, p *producer.BatchPayload, again func(context.Context) error) (*dingtalk.RobotBatchResult, error) {
	rb, ok := h.robots[p.Robot]
	if !ok || rb.group() || rb.App != app.Name || p.RobotMsg == nil {
		return nil, fmt.Errorf("%w %q: not an enterprise robot of app %q in this worker's dingtalk.robots", errUnknownRobot, p.Robot, app.Name)
	}
	code := rb.RobotCode
	if code == "" {
		code = app.Credentials.AppKey
	}
	req := &dingtalk.RobotBatchRequest{RobotCode: code, UserIDs: p.UserIDs, Msg: *p.RobotMsg}
	var res *dingtalk.RobotBatchResult
	err := h.callVia(ctx, h.tokensV1, app, dingtalk.PathRobotBatchSend, 0, again, func(tok string) (err error) {
		res, err = h.client.RobotBatchSend(ctx, tok, req)
		return err
	})
	return res, err
}

// robotResults sorts a batch send's answer into the batch's results and
// the users to send once more: those DingTalk held back for flow control,
// unless the batch is itself a re-send (then they stay forbidden, code
// producer.ForbiddenFlowControlled).
func robotResults(b *producer.BatchPayload, res *dingtalk.RobotBatchResult) (r outcome.BatchResults, resend []string) {
	invalid := make(map[string]bool, len(res.InvalidStaffIDs))
	for _, id := range res.InvalidStaffIDs {
		invalid[id] = true
	}
	held := make(map[string]bool, len(res.FlowControlledStaffIDs))
	for _, id := range res.FlowControlledStaffIDs {
		held[id] = true
	}
	for _, id := range b.UserIDs {
		switch {
		case invalid[id]:
			r.Invalid = append(r.Invalid, id)
		case held[id] && !b.Resend:
			resend = append(resend, id)
		case held[id]:
			r.Forbidden = append(r.Forbidden, outcome.Forbidden{UserID: id, Code: producer.ForbiddenFlowControlled})
		default:
			r.Delivered = append(r.Delivered, id)
		}
	}
	return r, resend
}

// v1Tokens fetches the new host's tokens (dingtalk.Client.GetAccessTokenV1)
// for a token.Cache.
type v1Tokens struct{ c *dingtalk.Client }

func (f v1Tokens) GetToken(ctx context.Context, cred dingtalk.Credentials) (*dingtalk.Token, error) {
	return f.c.GetAccessTokenV1(ctx, cred)
}

var _ token.Fetcher = v1Tokens{}
