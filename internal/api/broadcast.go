package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/producer"
	"go.uber.org/zap"
)

// DefaultRecipientsPage is the page size of GET …/recipients without a limit.
const DefaultRecipientsPage = 1000

// messageAction runs one of the producer's actions on the message named
// by the path and answers with the outcome it returns.
func (s *Server) messageAction(w http.ResponseWriter, r *http.Request, status int, what string,
	do func(ctx context.Context, id string) (*producer.Outcome, error)) {
	id := r.PathValue("id")
	if !idPattern.MatchString(id) {
		writeError(w, http.StatusNotFound, CodeNotFound, "id", "no message %q", id)
		return
	}
	o, err := do(r.Context(), id)
	var te *producer.TerminalError
	switch {
	case errors.Is(err, producer.ErrNotFound):
		writeError(w, http.StatusNotFound, CodeNotFound, "id", "no message %q (unknown, or older than the retention)", id)
	case errors.As(err, &te):
		writeError(w, http.StatusConflict, CodeConflict, "", "cannot %s message %s: it is %s already", what, id, te.Status)
	case errors.Is(err, producer.ErrNotBroadcast):
		writeError(w, http.StatusConflict, CodeConflict, "", "cannot %s message %s: only a broadcast (more than 100 users or 20 departments) can", what, id)
	case errors.Is(err, producer.ErrInFlight):
		writeError(w, http.StatusConflict, CodeConflict, "", "cannot %s message %s: a worker is sending it right now", what, id)
	case errors.Is(err, producer.ErrNothingToRecall):
		writeError(w, http.StatusConflict, CodeConflict, "", "cannot %s message %s: DingTalk has accepted none of it", what, id)
	case errors.Is(err, producer.ErrRobotRecall):
		writeError(w, http.StatusConflict, CodeConflict, "", "cannot %s message %s: a robot sent it, and dingq recalls work notifications only", what, id)
	case errors.Is(err, context.Canceled):
	case err != nil:
		s.log.Error("api: message action failed", zap.String("action", what), zap.String("message_id", id), zap.Error(err))
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "", "could not %s the message; try again", what)
	default:
		writeJSON(w, status, o)
	}
}

func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request) {
	s.messageAction(w, r, http.StatusOK, "cancel", s.producer.Cancel)
}

func (s *Server) handlePause(w http.ResponseWriter, r *http.Request) {
	s.messageAction(w, r, http.StatusOK, "pause", s.producer.Pause)
}

func (s *Server) handleResume(w http.ResponseWriter, r *http.Request) {
	s.messageAction(w, r, http.StatusOK, "resume", s.producer.Resume)
}

func (s *Server) handleRecall(w http.ResponseWriter, r *http.Request) {
	s.messageAction(w, r, http.StatusAccepted, "recall", s.producer.Recall)
}

func (s *Server) handleRecipients(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !idPattern.MatchString(id) {
		writeError(w, http.StatusNotFound, CodeNotFound, "id", "no message %q", id)
		return
	}
	q := r.URL.Query()
	offset, limit := int64(0), int64(DefaultRecipientsPage)
	for _, p := range []struct {
		name string
		v    *int64
	}{{"offset", &offset}, {"limit", &limit}} {
		if raw := q.Get(p.name); raw != "" {
			n, err := strconv.ParseInt(raw, 10, 64)
			if err != nil {
				writeError(w, http.StatusBadRequest, CodeInvalidArgument, p.name, "must be a whole number, got %q", raw)
				return
			}
			*p.v = n
		}
	}
	status := q.Get("status")
	if status == "" {
		writeError(w, http.StatusBadRequest, CodeInvalidArgument, "status", "required: one of %v", producer.RecipientResults)
		return
	}
	page, err := s.producer.Recipients(r.Context(), id, status, offset, limit)
	var ve *dingtalk.ValidationError
	switch {
	case errors.As(err, &ve):
		writeError(w, http.StatusBadRequest, CodeInvalidArgument, ve.Field, "%s", ve.Reason)
	case errors.Is(err, producer.ErrNotFound):
		writeError(w, http.StatusNotFound, CodeNotFound, "id", "no message %q (unknown, or older than the retention)", id)
	case errors.Is(err, context.Canceled):
	case err != nil:
		s.log.Error("api: reading recipients failed", zap.String("message_id", id), zap.Error(err))
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "", "the recipients could not be read; try again")
	default:
		writeJSON(w, http.StatusOK, page)
	}
}
