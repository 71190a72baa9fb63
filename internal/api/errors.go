package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/dingq/dingq/dingtalk"
)

// Error codes of the API's error answers.
const (
	CodeInvalidArgument = "invalid_argument"
	CodeUnauthenticated = "unauthenticated"
	CodeNotFound        = "not_found"
	CodeConflict        = "conflict"
	CodeTooLarge        = "payload_too_large"
	CodeUnavailable     = "unavailable"
	CodeInternal        = "internal"
	CodeMethod          = "method_not_allowed"
	CodeUnsupportedType = "unsupported_media_type"
	CodeReadOnly        = "read_only"
)

// ErrorBody is the JSON of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong and, for bad input, which field.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, field, format string, args ...any) {
	writeJSON(w, status, ErrorBody{Error: ErrorDetail{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}})
}

// decodeError turns a JSON decoding error into the status, field and
// message of the answer.
func decodeError(err error) (status int, field, msg string) {
	var (
		big *errBodyTooLarge
		se  *json.SyntaxError
		ute *json.UnmarshalTypeError
		pe  *time.ParseError
		ve  *dingtalk.ValidationError
	)
	switch {
	case errors.As(err, &big):
		return http.StatusRequestEntityTooLarge, "", big.Error()
	case errors.As(err, &se):
		return http.StatusBadRequest, "", fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se)
	case errors.As(err, &ute):
		return http.StatusBadRequest, ute.Field, fmt.Sprintf("must be a JSON %s, got %s", jsonKind(ute.Type.Kind().String()), ute.Value)
	case errors.As(err, &pe):
		return http.StatusBadRequest, "send_at", "must be an RFC 3339 time such as 2026-11-23T09:00:00+08:00"
	case errors.As(err, &ve):
		return http.StatusBadRequest, ve.Field, ve.Reason
	case errors.Is(err, errTrailingData):
		return http.StatusBadRequest, "", err.Error()
	}
	if strings.HasPrefix(err.Error(), "Time.UnmarshalJSON: ") {
		// The only time in a message is send_at.
		return http.StatusBadRequest, "send_at", "must be an RFC 3339 time string such as 2026-11-23T09:00:00+08:00"
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		f := strings.Trim(name, `"`)
		return http.StatusBadRequest, f, fmt.Sprintf("unknown field %q", f)
	}
	if err.Error() == "EOF" || err.Error() == "unexpected EOF" {
		return http.StatusBadRequest, "", "request body is empty or cut short: send a JSON object"
	}
	return http.StatusBadRequest, "", "malformed JSON: " + err.Error()
}

func jsonKind(goKind string) string {
	switch goKind {
	case "slice", "array":
		return "array"
	case "struct", "map":
		return "object"
	case "int", "int64", "int32", "uint", "uint64", "float64":
		return "number"
	case "bool":
		return "boolean"
	}
	return goKind
}

var errTrailingData = errors.New("request body has data after its JSON object")
