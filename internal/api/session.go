package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/producer"
	"go.uber.org/zap"
)

func (s *Server) handleSessionCreate(w http.ResponseWriter, r *http.Request) {
	if !jsonContent(w, r) {
		return
	}
	var sess producer.Session
	dec := json.NewDecoder(&budgetReader{r: r.Body, left: s.maxBody, limit: s.maxBody})
	dec.DisallowUnknownFields()
	err := dec.Decode(&sess)
	if err == nil {
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			err = errTrailingData
		}
	}
	if err != nil {
		writeDecodeError(w, err)
		return
	}
	id, err := s.producer.EnqueueSession(r.Context(), &sess)
	var ve *dingtalk.ValidationError
	switch {
	case errors.As(err, &ve):
		writeError(w, http.StatusBadRequest, CodeInvalidArgument, ve.Field, "%s", ve.Reason)
	case errors.Is(err, context.Canceled):
	case err != nil:
		s.log.Error("api: queueing a session task failed", zap.String("app", sess.App), zap.Error(err))
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "", "the session task could not be queued; try again")
	default:
		writeJSON(w, http.StatusAccepted, map[string]string{"id": id, "status": string(producer.StatusQueued)})
	}
}

func (s *Server) handleSessionStatus(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !idPattern.MatchString(id) {
		writeError(w, http.StatusNotFound, CodeNotFound, "id", "no session task %q", id)
		return
	}
	o, err := s.producer.Status(r.Context(), id)
	switch {
	case errors.Is(err, producer.ErrNotFound) || (err == nil && !strings.HasPrefix(o.Kind, "session.")):
		writeError(w, http.StatusNotFound, CodeNotFound, "id", "no session task %q (unknown, or older than the retention)", id)
	case err != nil:
		s.log.Error("api: reading an outcome failed", zap.String("record_id", id), zap.Error(err))
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "", "the outcome could not be read; try again")
	default:
		writeJSON(w, http.StatusOK, o)
	}
}
