package worker

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/internal/metrics"
	"github.com/dingq/dingq/internal/outcome"
	"go.uber.org/zap"
)

// What the handlers tell the metrics (Config.Metrics): every call to
// DingTalk goes through measured; every record a handler finds final, or
// makes final, through countFinal, and every batch end and result of a
// broadcast through countBatch; the rate limits measure their own waits
// (limits.admit).
//
// A record counts once, fleet-wide, whatever the retries, redeliveries
// and number of workers: whoever sees it final first claims it in Redis
// (outcome.Store.ClaimFinished) and counts it with the final status the
// record holds. A broadcast's recipients count as their batch ends or its
// results come in, once each: a batch is ended, and its results
// recorded, by one delivery only; those canceled outside the workers are
// counted by HandleBroadcastCanceled.

// Kinds of records, as the metrics label them; a broadcast is
// outcome.KindBroadcast.
const (
	kindMessage = "message"
)

// counted is a record as the metrics count it when it becomes final: its
// app, its kind and its recipients.
type counted struct {
	app, kind  string
	recipients int
}

// kindOf is the kind label of a kind task's what ("session create",
// "callback register"): its first word.
func kindOf(what string) string {
	kind, _, _ := strings.Cut(what, " ")
	return kind
}

// measured wraps do, a call of app to api, so that its errcode and its
// duration are measured.
func (h *Handlers) measured(app, api string, do func(token string) error) func(token string) error {
	if h.metrics == nil {
		return do
	}
	return func(tok string) error {
		start := time.Now()
		err := do(tok)
		h.metrics.Call(app, api, errcode(err), time.Since(start))
		return err
	}
}

// errcode is the errcode label of a call's error: "0" for none, DingTalk's
// errcode or string code, else what kept DingTalk's answer from us.
func errcode(err error) string {
	var de *dingtalk.Error
	var ve *dingtalk.ValidationError
	var ne net.Error
	switch {
	case err == nil:
		return "0"
	case errors.As(err, &de):
		switch {
		case de.IPBanned:
			return "ip_banned"
		case de.Code != 0:
			return strconv.Itoa(de.Code)
		case de.ErrorCode != "":
			return word(de.ErrorCode)
		case de.HTTPStatus >= 500:
			return "http_5xx"
		case de.HTTPStatus >= 400:
			return "http_4xx"
		}
		return "http_other"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, &ve):
		return "invalid"
	}
	return "transport"
}

// word is s if it is a short code of letters, digits, '.', '_' and '-',
// else "other": a label value must stay one of few.
func word(s string) string {
	if len(s) > 64 {
		return "other"
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return "other"
		}
	}
	return s
}

// countFinal counts record c (id), if it is final and nobody counted it
// yet, with its final status, and its recipients: sent, rejected (failed)
// or canceled.
func (h *Handlers) countFinal(ctx context.Context, c counted, id string) {
	if st, ok := h.claimFinished(ctx, id); ok {
		h.countClaimed(c, st)
	}
}

// countClaimed counts record c, whose finish with status st this worker
// claimed, and its recipients.
func (h *Handlers) countClaimed(c counted, st outcome.Status) {
	app := h.appLabel(c.app)
	h.metrics.Message(app, c.kind, string(st))
	switch st {
	case outcome.StatusSent:
		h.metrics.Recipients(app, string(outcome.StatusSent), c.recipients)
	case outcome.StatusFailed:
		h.metrics.Recipients(app, outcome.ResultRejected, c.recipients)
	case outcome.StatusCanceled:
		h.metrics.Recipients(app, outcome.ResultCanceled, c.recipients)
	}
}

// countBatch counts what became of a broadcast's recipients: a batch
// canceled or failed (status ResultCanceled or ResultRejected) or the
// results of an accepted one (r); then the broadcast itself, if it
// finished and nobody counted it yet.
func (h *Handlers) countBatch(ctx context.Context, app, id, status string, n int, r *outcome.BatchResults) {
	if h.metrics == nil {
		return
	}
	app = h.appLabel(app)
	h.metrics.Recipients(app, status, n)
	if r != nil {
		for _, l := range []struct {
			status string
			n      int
		}{
			{outcome.ResultInvalid, len(r.Invalid)}, {outcome.ResultForbidden, len(r.Forbidden)},
			{outcome.ResultFailed, len(r.Failed)}, {outcome.ResultRead, len(r.Read)},
			{outcome.ResultUnread, len(r.Unread)}, {outcome.ResultUnknown, len(r.Unknown)},
			{outcome.ResultDelivered, len(r.Delivered)},
		} {
			h.metrics.Recipients(app, l.status, l.n)
		}
	}
	h.countBroadcast(ctx, app, id)
}

// countBroadcast counts broadcast id of app if it finished and nobody
// counted it yet.
func (h *Handlers) countBroadcast(ctx context.Context, app, id string) {
	if st, ok := h.claimFinished(ctx, id); ok {
		h.metrics.Message(h.appLabel(app), outcome.KindBroadcast, string(st))
	}
}

// claimFinished claims the count of record id's final state: its status
// and true if the record is final and this call is the first, fleet-wide,
// to claim it. It claims nothing without metrics (a worker that counts
// nothing must not take the count from one that does), and runs even
// when ctx is done, trying until Redis answers (retryRedis) under one
// claimant, so a claim whose answer was lost is still this call's.
func (h *Handlers) claimFinished(ctx context.Context, id string) (outcome.Status, bool) {
	if h.metrics == nil {
		return "", false
	}
	claimant := rand.Text()
	var (
		st outcome.Status
		ok bool
	)
	err := h.retryRedis(ctx, func(ctx context.Context) (err error) {
		st, ok, err = h.store.ClaimFinished(ctx, id, claimant)
		return err
	})
	if err != nil {
		h.log.Warn("could not tell whether the record is final; it is not counted",
			zap.String("record_id", id), zap.Error(err))
		return "", false
	}
	return st, ok
}

// appLabel is the app label of app: metrics.AppUnknown for an app this
// worker is not configured for. Without a list of apps a producer takes
// any well-formed name, and a typo must not make a series of its own.
func (h *Handlers) appLabel(app string) string {
	if _, ok := h.apps[app]; ok {
		return app
	}
	if _, ok := h.robots[app]; ok {
		return app
	}
	return metrics.AppUnknown
}
