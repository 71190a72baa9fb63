// Package callback receives DingTalk's encrypted event pushes: it checks
// each request (signature, timestamp window, nonce not seen before,
// decryption, owner key), hands the event to a queue once, and answers
// DingTalk's encrypted "success" within its 1,500 ms.
package callback

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/internal/metrics"
	"github.com/dingq/dingq/producer"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Defaults of a Receiver.
const (
	// DefaultWindow is how far a request's timestamp may be from now.
	DefaultWindow = 5 * time.Minute
	// DefaultMaxBody bounds a request body.
	DefaultMaxBody = 64 << 10
	// enqueueTimeout keeps the answer inside DingTalk's 1,500 ms.
	enqueueTimeout = time.Second
)

// Config configures a Receiver.
type Config struct {
	// Name names the receiver in tasks and logs; "" is the default one.
	Name string
	// Crypto holds the registration's token, aes_key and owner key.
	// Required.
	Crypto *dingtalk.CallbackCrypto
	// Redis remembers the nonces seen within the window. Required.
	Redis redis.UniversalClient
	// KeyPrefix starts the nonce keys. If empty, "dingq".
	KeyPrefix string
	// Window is how far a request's timestamp may be from now; a nonce is
	// remembered twice as long. If zero, DefaultWindow.
	Window time.Duration
	// MaxBody bounds a request body. If zero, DefaultMaxBody.
	MaxBody int64
	// Enqueue queues a decrypted event once; dup says it was queued
	// before (a re-push). Required.
	Enqueue func(ctx context.Context, receiver string, event []byte) (id string, dup bool, err error)
	// Logger gets one line per refused request, never its body. If nil,
	// nothing is logged.
	Logger *zap.Logger
	// Now tells the time (tests). If nil, time.Now.
	Now func() time.Time
	// Metrics counts the events taken, by type, and the requests refused,
	// by reason. If nil, nothing is measured.
	Metrics *metrics.Metrics
}

// Receiver is the http.Handler DingTalk pushes events to.
type Receiver struct {
	cfg Config
}

// New returns a receiver for cfg.
func New(cfg Config) (*Receiver, error) {
	switch {
	case cfg.Crypto == nil:
		return nil, errors.New("callback: Config.Crypto is required")
	case cfg.Redis == nil:
		return nil, errors.New("callback: Config.Redis is required")
	case cfg.Enqueue == nil:
		return nil, errors.New("callback: Config.Enqueue is required")
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = "dingq"
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Receiver{cfg: cfg}, nil
}

// Reasons a request is refused, as logs and answers name them.
const (
	ReasonMethod    = "method"
	ReasonQuery     = "query"
	ReasonTimestamp = "timestamp"
	ReasonBody      = "body"
	ReasonTooLarge  = "too_large"
	ReasonSignature = "signature"
	ReasonDecrypt   = "decrypt"
	ReasonOwner     = "owner_key"
	ReasonEvent     = "event"
	ReasonReplay    = "replay"
	ReasonRedis     = "unavailable"
)

// refusal is a refused request: its status and reason.
type refusal struct {
	status int
	reason string
	detail string
}

func (r *Receiver) refuse(w http.ResponseWriter, req *http.Request, f refusal) {
	r.cfg.Metrics.CallbackRejected(f.reason)
	r.cfg.Logger.Warn("callback refused", zap.String("receiver", r.cfg.Name), zap.String("reason", f.reason),
		zap.String("detail", f.detail), zap.Int("status", f.status), zap.String("remote", req.RemoteAddr))
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(f.status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": f.reason, "message": f.detail}})
}

// ServeHTTP checks one push and answers DingTalk.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		r.refuse(w, req, refusal{http.StatusMethodNotAllowed, ReasonMethod, "use POST"})
		return
	}
	q := req.URL.Query()
	sig, ts, nonce := first(q.Get("msg_signature"), q.Get("signature")), first(q.Get("timeStamp"), q.Get("timestamp")), q.Get("nonce")
	if sig == "" || ts == "" || nonce == "" || len(nonce) > 64 {
		r.refuse(w, req, refusal{http.StatusBadRequest, ReasonQuery, "signature (or msg_signature), timestamp (or timeStamp) and nonce are required"})
		return
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	// In milliseconds: a huge timestamp must not saturate a Duration.
	skew, win := r.cfg.Now().UnixMilli()-ms, r.cfg.Window.Milliseconds()
	if err != nil || skew > win || skew < -win {
		r.refuse(w, req, refusal{http.StatusBadRequest, ReasonTimestamp, fmt.Sprintf("timestamp is not within %s of now", r.cfg.Window)})
		return
	}
	var body struct {
		Encrypt string `json:"encrypt"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, r.cfg.MaxBody))
	if err := dec.Decode(&body); err != nil || body.Encrypt == "" {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			r.refuse(w, req, refusal{http.StatusRequestEntityTooLarge, ReasonTooLarge, fmt.Sprintf("body over %d bytes", r.cfg.MaxBody)})
			return
		}
		r.refuse(w, req, refusal{http.StatusBadRequest, ReasonBody, `body must be {"encrypt":"…"}`})
		return
	}
	event, err := r.cfg.Crypto.Open(sig, ts, nonce, body.Encrypt)
	switch {
	case errors.Is(err, dingtalk.ErrCallbackSignature):
		r.refuse(w, req, refusal{http.StatusForbidden, ReasonSignature, "signature does not match"})
		return
	case errors.Is(err, dingtalk.ErrCallbackOwner):
		r.refuse(w, req, refusal{http.StatusForbidden, ReasonOwner, "not for this owner key"})
		return
	case err != nil:
		r.refuse(w, req, refusal{http.StatusBadRequest, ReasonDecrypt, "cannot decrypt"})
		return
	}
	if !json.Valid(event) {
		r.refuse(w, req, refusal{http.StatusBadRequest, ReasonEvent, "the decrypted event is not JSON"})
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), enqueueTimeout)
	defer cancel()
	// The nonce remembers the request it came with: the same request again
	// (DingTalk retrying a push it thinks timed out) is answered success;
	// another request with a used nonce is a replay.
	nonceKey := r.cfg.KeyPrefix + ":callback:nonce:" + r.cfg.Name + ":" + nonce
	sum := sha256.Sum256([]byte(ts + "\x00" + body.Encrypt))
	reqHash := hex.EncodeToString(sum[:16])
	fresh, err := r.cfg.Redis.SetNX(ctx, nonceKey, reqHash, 2*r.cfg.Window).Result()
	if err != nil {
		r.refuse(w, req, refusal{http.StatusServiceUnavailable, ReasonRedis, "cannot check the nonce now; push again"})
		return
	}
	if !fresh {
		prev, err := r.cfg.Redis.Get(ctx, nonceKey).Result()
		if err != nil || prev != reqHash {
			r.refuse(w, req, refusal{http.StatusConflict, ReasonReplay, "this nonce was used already"})
			return
		}
		r.answer(w, req, ts, nonce) // the same push again: taken already
		return
	}
	typ := producer.EventType(event)
	if typ != "check_url" {
		id, dup, err := r.cfg.Enqueue(ctx, r.cfg.Name, event)
		if err != nil {
			// Not taken: DingTalk pushes it again, with this nonce or another.
			dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 200*time.Millisecond)
			r.cfg.Redis.Del(dctx, nonceKey)
			dcancel()
			r.cfg.Logger.Error("callback event could not be queued", zap.String("receiver", r.cfg.Name),
				zap.String("event_type", typ), zap.Error(err))
			r.refuse(w, req, refusal{http.StatusServiceUnavailable, ReasonRedis, "cannot queue the event now; push again"})
			return
		}
		r.cfg.Logger.Info("callback event", zap.String("receiver", r.cfg.Name), zap.String("event_type", typ),
			zap.String("task_id", id), zap.Bool("duplicate", dup))
	}
	r.cfg.Metrics.CallbackReceived(typ)
	r.answer(w, req, ts, nonce)
}

// answer writes DingTalk's encrypted "success".
func (r *Receiver) answer(w http.ResponseWriter, req *http.Request, ts, nonce string) {
	resp, err := r.cfg.Crypto.Success(ts, nonce)
	if err != nil {
		r.refuse(w, req, refusal{http.StatusInternalServerError, ReasonDecrypt, "cannot encrypt the answer"})
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(resp)
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
