package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/producer"
	"go.uber.org/zap"
)

// DefaultMaxBodyBytes bounds a request body when no limit is configured.
const DefaultMaxBodyBytes = 1 << 20

// Config configures the API's handler.
type Config struct {
	// Producer accepts messages and reads outcomes. Required.
	Producer *producer.Producer
	// Tokens are the bearer tokens accepted. If empty, the API is open: the
	// configuration allows that only on a loopback address.
	Tokens []string
	// MaxBodyBytes bounds a request body, not counting the ids of a
	// message's userid_list and dept_id_list; larger ones get 413. If zero,
	// 1 MiB.
	MaxBodyBytes int64
	// MaxRecipients caps the user and department ids of one message. If
	// zero, producer.DefaultMaxRecipients.
	MaxRecipients int
	// Callbacks are the callback receivers by name: "" is served at
	// POST /v1/callbacks/dingtalk, any other at /v1/callbacks/dingtalk/{name}.
	// They take no bearer token: DingTalk's signature is their check.
	Callbacks map[string]http.Handler
	// UI, if set, is served at /ui/ (the asynq web UI, NewUI) to a bearer
	// token of Tokens or a login of UIUsers (HTTP basic authentication,
	// which browsers ask for); with neither configured, to everyone.
	UI http.Handler
	// UIUsers are the logins of UI and Metrics.
	UIUsers []UIUser
	// UIReadOnly refuses every request to UI but GET and HEAD with 403.
	UIReadOnly bool
	// Metrics, if set, is served at GET /metrics to the same credentials
	// as UI.
	Metrics http.Handler
	// Logger receives one line per request (those UI and Metrics answer
	// with success at debug level). If nil, nothing is logged.
	Logger *zap.Logger
}

// UIUser is a login of the web UI and /metrics.
type UIUser struct {
	Name, Password string
}

// Server is the API's http.Handler.
type Server struct {
	producer *producer.Producer
	tokens   [][32]byte
	users    []userHash
	maxBody  int64
	maxIDs   int
	log      *zap.Logger
	mux      *http.ServeMux
}

// New returns the API handler for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Producer == nil {
		return nil, errors.New("api: Config.Producer is required")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxRecipients <= 0 {
		cfg.MaxRecipients = producer.DefaultMaxRecipients
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	s := &Server{producer: cfg.Producer, maxBody: cfg.MaxBodyBytes, maxIDs: cfg.MaxRecipients, log: cfg.Logger,
		mux: http.NewServeMux()}
	for _, t := range cfg.Tokens {
		s.tokens = append(s.tokens, sha256.Sum256([]byte(t)))
	}
	for _, u := range cfg.UIUsers {
		if u.Name == "" || u.Password == "" {
			return nil, errors.New("api: a UIUser needs a name and a password")
		}
		s.users = append(s.users, userHash{sha256.Sum256([]byte(u.Name)), sha256.Sum256([]byte(u.Password))})
	}
	if cfg.UI != nil {
		ui := cfg.UI
		if cfg.UIReadOnly {
			ui = readOnly(ui)
		}
		// A browser sends the cached basic-auth login with cross-site
		// requests too: a hostile page could pause or delete queues. Refuse
		// unsafe methods that a browser marks as cross-origin.
		ui = http.NewCrossOriginProtection().Handler(ui)
		s.mux.Handle(UIPath+"/", s.authUI(ui))
		s.mux.Handle("GET "+UIPath, http.RedirectHandler(UIPath+"/", http.StatusMovedPermanently))
	}
	if cfg.Metrics != nil {
		s.mux.Handle("GET /metrics", s.authUI(cfg.Metrics))
	}
	s.mux.HandleFunc("POST /v1/messages", s.auth(s.handleSend))
	s.mux.HandleFunc("POST /v1/robot-messages", s.auth(s.handleRobotSend))
	s.mux.HandleFunc("GET /v1/messages/{id}", s.auth(s.handleStatus))
	s.mux.HandleFunc("DELETE /v1/messages/{id}", s.auth(s.handleCancel))
	s.mux.HandleFunc("POST /v1/messages/{id}/cancel", s.auth(s.handleCancel))
	s.mux.HandleFunc("POST /v1/messages/{id}/pause", s.auth(s.handlePause))
	s.mux.HandleFunc("POST /v1/messages/{id}/resume", s.auth(s.handleResume))
	s.mux.HandleFunc("POST /v1/messages/{id}/recall", s.auth(s.handleRecall))
	s.mux.HandleFunc("GET /v1/messages/{id}/recipients", s.auth(s.handleRecipients))
	s.mux.HandleFunc("POST /v1/sessions", s.auth(s.handleSessionCreate))
	s.mux.HandleFunc("GET /v1/sessions/{id}", s.auth(s.handleSessionStatus))
	for name, h := range cfg.Callbacks {
		if name == "" {
			s.mux.Handle("POST /v1/callbacks/dingtalk", h)
		} else {
			s.mux.Handle("POST /v1/callbacks/dingtalk/"+name, h)
		}
	}
	s.mux.HandleFunc("GET /healthz", s.handleHealth)
	s.mux.HandleFunc("GET /readyz", s.handleReady)
	s.mux.HandleFunc("/", s.handleNotFound)
	return s, nil
}

// ServeHTTP implements http.Handler: it logs every request (never its
// body or Authorization header) and turns a panic into a 500.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &statusWriter{ResponseWriter: w}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("api: panic serving request", zap.String("path", r.URL.Path), zap.Any("panic", p), zap.Stack("stack"))
			if rw.status == 0 {
				writeError(rw, http.StatusInternalServerError, CodeInternal, "", "internal error")
			}
		}
		lvl := zap.InfoLevel
		if (strings.HasPrefix(r.URL.Path, UIPath+"/") || r.URL.Path == "/metrics") && rw.status < 300 {
			lvl = zap.DebugLevel // the UI polls every few seconds, Prometheus too; refusals stay at info
		}
		s.log.Log(lvl, "api request", zap.String("method", r.Method), zap.String("path", r.URL.Path),
			zap.Int("status", rw.status), zap.Duration("took", time.Since(start)),
			zap.String("remote", r.RemoteAddr))
	}()
	s.mux.ServeHTTP(rw, r)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// auth lets a request through when it carries one of the tokens (compared
// in constant time) or when no token is configured.
func (s *Server) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if len(s.tokens) == 0 || s.bearer(r) {
			next(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="dingq"`)
		writeError(w, http.StatusUnauthorized, CodeUnauthenticated, "", "missing or wrong bearer token in the Authorization header")
	}
}

// authUI lets a request through when it carries one of the tokens or the
// basic-auth login of a UI user, or when neither is configured. Its 401
// asks browsers for a login.
func (s *Server) authUI(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(s.tokens) == 0 && len(s.users) == 0 || s.bearer(r) || s.basic(r) {
			next.ServeHTTP(w, r)
			return
		}
		if len(s.users) > 0 {
			w.Header().Add("WWW-Authenticate", `Basic realm="dingq", charset="UTF-8"`)
		}
		if len(s.tokens) > 0 {
			w.Header().Add("WWW-Authenticate", `Bearer realm="dingq"`)
		}
		writeError(w, http.StatusUnauthorized, CodeUnauthenticated, "", "log in as a web UI user (api.ui_users) or send a bearer token")
	})
}

// bearer reports whether r's Authorization header holds one of the tokens.
// Every token is compared, in constant time.
func (s *Server) bearer(r *http.Request) bool {
	scheme, given, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || len(s.tokens) == 0 {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(given)))
	match := 0
	for i := range s.tokens {
		match |= subtle.ConstantTimeCompare(sum[:], s.tokens[i][:])
	}
	return match == 1
}

// userHash is a UI login, hashed so that comparing takes the same time
// whatever the lengths.
type userHash struct{ name, password [32]byte }

// basic reports whether r carries the basic-auth login of a UI user. Every
// user is compared, name and password, in constant time.
func (s *Server) basic(r *http.Request) bool {
	name, password, ok := r.BasicAuth()
	if !ok || len(s.users) == 0 {
		return false
	}
	n, p := sha256.Sum256([]byte(name)), sha256.Sum256([]byte(password))
	match := 0
	for _, u := range s.users {
		match |= subtle.ConstantTimeCompare(n[:], u.name[:]) & subtle.ConstantTimeCompare(p[:], u.password[:])
	}
	return match == 1
}

// SendResponse is the answer to an accepted message: its id, and for a
// broadcast how many recipients and batches it has.
type SendResponse = producer.Accepted

func (s *Server) handleSend(w http.ResponseWriter, r *http.Request) {
	if !jsonContent(w, r) {
		return
	}
	m, err := decodeMessage(r.Body, s.maxBody, s.maxIDs)
	if err != nil {
		writeDecodeError(w, err)
		return
	}
	acc, err := s.producer.Enqueue(r.Context(), m)
	s.writeAccepted(w, acc, err, "message", zap.String("app", m.App))
}

// handleRobotSend accepts a robot's message: a custom group robot's into
// its group, or an enterprise robot's to users one to one, in batches.
func (s *Server) handleRobotSend(w http.ResponseWriter, r *http.Request) {
	if !jsonContent(w, r) {
		return
	}
	m, err := decodeRobotMessage(r.Body, s.maxBody, s.maxIDs)
	if err != nil {
		writeDecodeError(w, err)
		return
	}
	acc, err := s.producer.SendRobot(r.Context(), m)
	s.writeAccepted(w, acc, err, "robot message", zap.String("robot", m.Robot))
}

// writeAccepted answers the producer's acceptance of a message (what, for
// the logs, which get by too): 202 with acc, or the error's status.
func (s *Server) writeAccepted(w http.ResponseWriter, acc *producer.Accepted, err error, what string, by zap.Field) {
	var ve *dingtalk.ValidationError
	switch {
	case errors.As(err, &ve):
		writeError(w, http.StatusBadRequest, CodeInvalidArgument, ve.Field, "%s", ve.Reason)
	case errors.Is(err, producer.ErrIdempotencyConflict):
		writeError(w, http.StatusConflict, CodeConflict, "idempotency_key", "this idempotency_key was already used for a different message")
	case errors.Is(err, context.Canceled):
		// The client went away; nothing useful to answer.
	case err != nil:
		s.log.Error("api: accepting a "+what+" failed", by, zap.Error(err))
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "", "the message could not be queued; try again with the same idempotency_key")
	default:
		if acc.Batches > 0 {
			s.log.Info("api: broadcast accepted", zap.String("message_id", acc.ID), by,
				zap.Int("recipients", acc.Recipients), zap.Int("batches", acc.Batches), zap.Int("duplicates", acc.Duplicates))
		}
		writeJSON(w, http.StatusAccepted, acc)
	}
}

// jsonContent answers 415 and returns false unless the request's
// Content-Type, if any, is application/json.
func jsonContent(w http.ResponseWriter, r *http.Request) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, CodeUnsupportedType, "", "Content-Type must be application/json, got %q", ct)
			return false
		}
	}
	return true
}

// writeDecodeError answers a request whose body could not be decoded.
func writeDecodeError(w http.ResponseWriter, err error) {
	status, field, msg := decodeError(err)
	code := CodeInvalidArgument
	if status == http.StatusRequestEntityTooLarge {
		code = CodeTooLarge
	}
	writeError(w, status, code, field, "%s", msg)
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !idPattern.MatchString(id) {
		writeError(w, http.StatusNotFound, CodeNotFound, "id", "no message %q", id)
		return
	}
	o, err := s.producer.Status(r.Context(), id)
	switch {
	case errors.Is(err, producer.ErrNotFound):
		writeError(w, http.StatusNotFound, CodeNotFound, "id", "no message %q (unknown, or older than the retention)", id)
	case err != nil:
		s.log.Error("api: reading an outcome failed", zap.String("message_id", id), zap.Error(err))
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "", "the outcome could not be read; try again")
	default:
		writeJSON(w, http.StatusOK, o)
	}
}

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReady(w http.ResponseWriter, _ *http.Request) {
	if err := s.producer.Ping(); err != nil {
		s.log.Warn("api: not ready: redis does not answer", zap.Error(err))
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "redis unreachable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// allowed lists the methods of the API's paths, for 405 answers.
func allowed(path string) string {
	switch {
	case path == "/v1/messages", path == "/v1/robot-messages", path == "/v1/sessions", strings.HasPrefix(path, "/v1/callbacks/dingtalk"):
		return http.MethodPost
	case strings.HasPrefix(path, "/v1/sessions/") && idPattern.MatchString(strings.TrimPrefix(path, "/v1/sessions/")):
		return http.MethodGet
	case !strings.HasPrefix(path, "/v1/messages/"):
	case idPattern.MatchString(strings.TrimPrefix(path, "/v1/messages/")):
		return "GET, DELETE"
	}
	if id, action, ok := strings.Cut(strings.TrimPrefix(path, "/v1/messages/"), "/"); ok && idPattern.MatchString(id) {
		switch action {
		case "cancel", "pause", "resume", "recall":
			return http.MethodPost
		case "recipients":
			return http.MethodGet
		}
	}
	switch {
	case path == "/healthz", path == "/readyz":
		return http.MethodGet
	}
	return ""
}

func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	if allow := allowed(r.URL.Path); allow != "" {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, CodeMethod, "", "%s %s: use %s", r.Method, r.URL.Path, allow)
		return
	}
	writeError(w, http.StatusNotFound, CodeNotFound, "", "no route %s %s", r.Method, r.URL.Path)
}
