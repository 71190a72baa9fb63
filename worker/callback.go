package worker

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/internal/metrics"
	"github.com/dingq/dingq/internal/outcome"
	"github.com/dingq/dingq/producer"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// CallbackConfig is the callback registration of the worker's apps and
// where the events DingTalk pushes go.
type CallbackConfig struct {
	// Token, AESKey and URL are what RegisterCallback sends DingTalk; Tags
	// the event types to subscribe to.
	Token, AESKey, URL string
	Tags               []string
	// ForwardURL, if set, receives each event as a POST of its JSON,
	// signed with ForwardSecret (header X-Dingq-Signature: sha256=hex of
	// HMAC-SHA256(secret, X-Dingq-Timestamp + "." + body)), retried with
	// backoff until it answers 2xx. ForwardEvents lists the event types
	// it gets ("*": all; empty: all).
	ForwardURL, ForwardSecret string
	ForwardEvents             []string
	// StreamKey, if set, is the Redis Stream each event is added to (fields
	// id, type, event, received_at), trimmed to about StreamMaxLen
	// entries. StreamEvents as ForwardEvents.
	StreamKey    string
	StreamMaxLen int64
	StreamEvents []string
	// FailedPullInterval is how often get_call_back_failed_result is
	// pulled for each app; zero: never.
	FailedPullInterval time.Duration
}

func matches(types []string, typ string) bool {
	return len(types) == 0 || slices.Contains(types, "*") || slices.Contains(types, typ)
}

// sinkTimeout bounds one forward.
const sinkTimeout = 10 * time.Second

// HandleCallbackEvent delivers one pushed event to the sinks its type
// goes to: the forward URL and the Redis Stream. Each sink takes it once:
// a retry after one sink failed skips the sinks that took it.
func (h *Handlers) HandleCallbackEvent(ctx context.Context, t *asynq.Task) error {
	var p producer.CallbackEventPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || len(p.Event) == 0 {
		return fmt.Errorf("decoding %s payload: %v: %w", t.Type(), err, asynq.SkipRetry)
	}
	id, _ := asynq.GetTaskID(ctx)
	annotate(ctx, zap.String("event_type", p.Type), zap.String("receiver", p.Receiver))
	cb := h.callback
	if cb == nil {
		return fmt.Errorf("no callback sinks configured: %w", asynq.SkipRetry)
	}
	doneKey := h.keyPrefix + ":callback:done:{" + id + "}"
	done, err := h.rdb.HGetAll(ctx, doneKey).Result()
	if err != nil {
		return err
	}
	mark := func(sink string) error {
		// Even when a shutdown ends ctx: the sink took the event.
		return h.retryRedis(ctx, func(ctx context.Context) error {
			_, err := h.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.HSet(ctx, doneKey, sink, time.Now().UnixMilli())
				p.Expire(ctx, doneKey, producer.EventRetention+time.Hour)
				return nil
			})
			return err
		})
	}
	var sinks []string
	if cb.ForwardURL != "" && matches(cb.ForwardEvents, p.Type) {
		sinks = append(sinks, "forward")
		if done["forward"] == "" {
			err := h.forward(ctx, id, &p)
			h.metrics.CallbackForwarded(metrics.SinkForward, err == nil)
			if err != nil {
				return err
			}
			if err := mark("forward"); err != nil {
				return err
			}
		}
	}
	if cb.StreamKey != "" && matches(cb.StreamEvents, p.Type) {
		sinks = append(sinks, "stream")
		if done["stream"] == "" {
			args := &redis.XAddArgs{Stream: cb.StreamKey, Approx: true, MaxLen: cb.StreamMaxLen,
				Values: map[string]any{"id": id, "type": p.Type, "event": string(p.Event),
					"received_at": p.ReceivedAt.Format(time.RFC3339Nano)}}
			err := h.rdb.XAdd(ctx, args).Err()
			h.metrics.CallbackForwarded(metrics.SinkStream, err == nil)
			if err != nil {
				return fmt.Errorf("adding the event to stream %s: %w", cb.StreamKey, err)
			}
			if err := mark("stream"); err != nil {
				return err
			}
		}
	}
	annotate(ctx, zap.Strings("sinks", sinks))
	return nil
}

// forward POSTs an event to the forward URL, signed.
func (h *Handlers) forward(ctx context.Context, id string, p *producer.CallbackEventPayload) error {
	ctx, cancel := context.WithTimeout(ctx, sinkTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.callback.ForwardURL, bytes.NewReader(p.Event))
	if err != nil {
		return fmt.Errorf("forward: %w: %w", err, asynq.SkipRetry)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Dingq-Event-Id", id)
	req.Header.Set("X-Dingq-Event-Type", p.Type)
	req.Header.Set("X-Dingq-Timestamp", ts)
	req.Header.Set("X-Dingq-Signature", "sha256="+SignForward(h.callback.ForwardSecret, ts, p.Event))
	resp, err := h.httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("forward: %w", redactURL(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("forward: the forward URL answered %d", resp.StatusCode)
	}
	return nil
}

// SignForward is the signature of a forwarded event: hex of
// HMAC-SHA256(secret, timestamp + "." + body). A receiver recomputes it
// and compares in constant time (hmac.Equal).
func SignForward(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp + "."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// redactURL keeps the forward URL's query (it may carry a key) out of an
// error.
func redactURL(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// HandleCallbackAdmin registers, updates, reads or deletes an app's
// callback at DingTalk with the worker's callback configuration, and
// records what DingTalk answered (never the token or aes_key).
func (h *Handlers) HandleCallbackAdmin(ctx context.Context, t *asynq.Task) error {
	var p producer.CallbackAdminPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.ID == "" {
		return fmt.Errorf("decoding %s payload: %v: %w", t.Type(), err, asynq.SkipRetry)
	}
	return h.kindTask(ctx, p.ID, p.App, "callback "+p.Action, func(app App) (json.RawMessage, error) {
		if h.callback == nil || h.callback.URL == "" {
			return nil, fmt.Errorf("%w: callback.url, callback.token and callback.aes_key are not configured", errNotConfigured)
		}
		cb := &dingtalk.Callback{Tags: h.callback.Tags, Token: h.callback.Token, AESKey: h.callback.AESKey, URL: h.callback.URL}
		var res json.RawMessage
		err := h.admitted(ctx, app, callbackPath(p.Action), func(tok string) error {
			switch p.Action {
			case "register":
				err := h.client.RegisterCallback(ctx, tok, cb)
				var de *dingtalk.Error
				if retried, _ := asynq.GetRetryCount(ctx); retried > 0 && errors.As(err, &de) && de.Code == 71006 {
					// An earlier attempt registered it and its answer was lost.
					res = json.RawMessage(`{"registered":"by an earlier attempt"}`)
					return nil
				}
				return err
			case "update":
				return h.client.UpdateCallback(ctx, tok, cb)
			case "delete":
				return h.client.DeleteCallback(ctx, tok)
			}
			got, err := h.client.GetCallback(ctx, tok)
			if err == nil {
				res, err = json.Marshal(map[string]any{"call_back_tag": got.Tags, "url": got.URL})
			}
			return err
		})
		return res, err
	})
}

// callbackPath is the DingTalk endpoint of a callback action, as the
// rate limits and the metrics name it: the action is the task's, so only
// the four known ones are told apart, as the admin task does.
func callbackPath(action string) string {
	switch action {
	case "register":
		return dingtalk.PathRegisterCallback
	case "update":
		return dingtalk.PathUpdateCallback
	case "delete":
		return dingtalk.PathDeleteCallback
	}
	return dingtalk.PathGetCallback
}

// errNotConfigured fails a task the worker's configuration cannot do.
var errNotConfigured = errors.New("not configured")

// kindTask runs a task with a record of its own (a session or callback
// task): sending while it runs, then sent with DingTalk's result, or
// retrying or failed as for messages.
func (h *Handlers) kindTask(ctx context.Context, id, appName, what string, do func(App) (json.RawMessage, error)) error {
	annotate(ctx, zap.String("task", what), zap.String("app", appName), zap.String("record_id", id))
	c := counted{app: appName, kind: kindOf(what)}
	n, err := h.store.Apply(ctx, id, outcome.Transition{To: outcome.StatusSending, NewAttempt: true})
	var te *outcome.TerminalError
	if errors.As(err, &te) {
		h.countFinal(ctx, c, id)
		return nil
	}
	if err != nil {
		return err
	}
	app, known := h.apps[appName]
	if !known {
		return h.finish(ctx, c, id, n, fmt.Errorf("%w %q: not in this worker's dingtalk.apps", errUnknownApp, appName))
	}
	res, err := do(app)
	if errors.Is(err, errNotConfigured) {
		return h.finish(ctx, c, id, n, fmt.Errorf("%w: %w", errUnknownApp, err))
	}
	if err != nil {
		return h.finish(ctx, c, id, n, err)
	}
	tr := outcome.Transition{To: outcome.StatusSent, Result: res, Attempt: &outcome.Attempt{N: n, Result: outcome.StatusSent}}
	if err := h.record(ctx, c, id, tr); err != nil {
		h.log.Error("task done but its outcome could not be recorded", zap.String("record_id", id), zap.Error(err))
	}
	return nil
}

// HandleSession gets, creates or closes a session (seed 001) and records
// what DingTalk answered.
func (h *Handlers) HandleSession(ctx context.Context, t *asynq.Task) error {
	var p producer.SessionPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.ID == "" {
		return fmt.Errorf("decoding %s payload: %v: %w", t.Type(), err, asynq.SkipRetry)
	}
	return h.kindTask(ctx, p.ID, p.App, "session "+p.Action, func(app App) (json.RawMessage, error) {
		paths := h.sessionPaths
		r := &dingtalk.SessionRequest{SessionID: p.SessionID, AppKey: app.Credentials.AppKey, ChatID: p.ChatID, UserID: p.UserID}
		var res json.RawMessage
		var path string
		switch p.Action {
		case producer.SessionGet:
			path = paths.Get
		case producer.SessionCreate:
			path = paths.Create
		default:
			path = paths.Close
		}
		err := h.admitted(ctx, app, path, func(tok string) (err error) {
			switch p.Action {
			case producer.SessionGet:
				var s json.RawMessage
				if s, err = h.client.GetSession(ctx, tok, path, p.UserID); err == nil {
					res, err = json.Marshal(map[string]json.RawMessage{"session": s})
				}
			case producer.SessionCreate:
				var sid string
				if sid, err = h.client.CreateSession(ctx, tok, path, r); err == nil {
					res, err = json.Marshal(map[string]string{"session_id": sid})
				}
			default:
				if err = h.client.CloseSession(ctx, tok, path, r); err == nil {
					res = json.RawMessage(`{"success":true}`)
				}
			}
			return err
		})
		return res, err
	})
}

// SessionPaths are the session endpoints' paths; empty ones take the
// seed article's.
type SessionPaths = dingtalk.SessionPaths

// failedPages bounds the pages one pull takes.
const failedPages = 50

// HandleCallbackFailed pulls the events DingTalk failed to push for an
// app (get_call_back_failed_result, which forgets what it returns) and
// queues them like pushed ones. Each page is first put in a spool list in
// Redis, and leaves it only once its events are queued, so nothing is
// lost between the pull and the queue.
func (h *Handlers) HandleCallbackFailed(ctx context.Context, t *asynq.Task) error {
	var p struct {
		App string `json:"app"`
	}
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.App == "" {
		return fmt.Errorf("decoding %s payload: %v: %w", t.Type(), err, asynq.SkipRetry)
	}
	app, known := h.apps[p.App]
	if !known {
		return fmt.Errorf("%w %q: %w", errUnknownApp, p.App, asynq.SkipRetry)
	}
	spool := h.keyPrefix + ":callback:spool:{" + p.App + "}"
	// One pull of an app at a time: two would read and trim the spool
	// under each other.
	lock := spool + ":lock"
	owner := strconv.FormatInt(time.Now().UnixNano(), 36)
	if ok, err := h.rdb.SetNX(ctx, lock, owner, 5*time.Minute).Result(); err != nil || !ok {
		return err // another pull runs
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		if v, _ := h.rdb.Get(ctx, lock).Result(); v == owner {
			h.rdb.Del(ctx, lock)
		}
	}()
	queued := 0
	drain := func() error {
		for {
			evs, err := h.rdb.LRange(ctx, spool, 0, 199).Result()
			if err != nil || len(evs) == 0 {
				return err
			}
			for _, ev := range evs {
				typ, event := unwrapFailed([]byte(ev))
				if _, _, err := h.events.EnqueueEventOfType(ctx, "", typ, event); err != nil {
					return err
				}
				queued++
			}
			if err := h.rdb.LTrim(ctx, spool, int64(len(evs)), -1).Err(); err != nil {
				return err
			}
		}
	}
	if err := drain(); err != nil {
		return err
	}
	for range failedPages {
		var page *dingtalk.FailedEvents
		err := h.admitted(ctx, app, dingtalk.PathCallbackFailed, func(tok string) (err error) {
			page, err = h.client.GetCallbackFailed(ctx, tok)
			return err
		})
		var de *dingtalk.Error
		if errors.As(err, &de) && de.Code == 71007 {
			return nil // the app has no callback: nothing to pull
		}
		if err != nil {
			retried, _ := asynq.GetRetryCount(ctx)
			_, _, ret := h.judge(ctx, err, retried+1)
			return ret
		}
		if len(page.Events) > 0 {
			vals := make([]any, len(page.Events))
			for i, e := range page.Events {
				vals[i] = string(e)
			}
			if err := h.retryRedis(ctx, func(ctx context.Context) error { return h.rdb.RPush(ctx, spool, vals...).Err() }); err != nil {
				h.log.Error("events pulled from DingTalk could not be spooled: they are lost",
					zap.String("app", p.App), zap.Int("events", len(vals)), zap.Error(err))
				return err
			}
		}
		if err := drain(); err != nil {
			return err
		}
		if !page.HasMore {
			break
		}
	}
	annotate(ctx, zap.Int("events", queued))
	return nil
}

// unwrapFailed takes an event out of a get_call_back_failed_result
// entry, {"<tag>":event,"call_back_tag":tag,"event_time":ms}, so it is
// delivered, typed and recognised like the pushed copy; an entry of
// another shape is kept whole.
func unwrapFailed(entry []byte) (typ string, event []byte) {
	var m map[string]json.RawMessage
	if json.Unmarshal(entry, &m) != nil {
		return producer.EventType(entry), entry
	}
	var tag string
	_ = json.Unmarshal(m["call_back_tag"], &tag)
	if inner, ok := m[tag]; ok && tag != "" && len(inner) > 0 && inner[0] == '{' {
		if t := producer.EventType(inner); t != "" {
			tag = t
		}
		return tag, inner
	}
	if t := producer.EventType(entry); t != "" {
		tag = t
	}
	return tag, entry
}

// pullFailed queues a TypeCallbackFailed task per app every interval
// until ctx ends. The task id names the period, so a fleet queues one.
func (h *Handlers) pullFailed(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			period := now.UnixNano() / int64(interval)
			for name := range h.apps {
				b, _ := json.Marshal(map[string]string{"app": name})
				t := asynq.NewTask(producer.TypeCallbackFailed, b, asynq.Queue(producer.QueueDefault),
					asynq.TaskID(fmt.Sprintf("callback-failed:%s:%d", name, period)), asynq.Retention(interval),
					asynq.MaxRetry(3))
				if _, err := h.queue.EnqueueContext(ctx, t); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
					h.log.Warn("could not queue the pull of failed callbacks", zap.String("app", name), zap.Error(err))
				}
			}
		}
	}
}
