package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
)

// UIPath is where the asynq web UI is served.
const UIPath = "/ui"

// UIOptions configure NewUI.
type UIOptions struct {
	// Redis is the connection asynqmon opens for itself. Required.
	Redis asynq.RedisConnOpt
	// ReadOnly hides the UI's action buttons. The Server refuses the
	// actions themselves (Config.UIReadOnly); this only keeps the page
	// from offering them.
	ReadOnly bool
	// PrometheusURL, if set, is the Prometheus the UI's charts query. The
	// api queries it (asynqmon fetches the series server-side), so it is
	// Prometheus as the api reaches it.
	PrometheusURL string
}

// NewUI returns asynqmon, the asynq web UI, rooted at UIPath, showing task
// payloads and results through FormatPayload. Close it to close its Redis
// connections.
func NewUI(o UIOptions) *asynqmon.HTTPHandler {
	return asynqmon.New(asynqmon.Options{
		RootPath:          UIPath,
		RedisConnOpt:      o.Redis,
		PayloadFormatter:  asynqmon.PayloadFormatterFunc(func(_ string, b []byte) string { return FormatPayload(b) }),
		ResultFormatter:   asynqmon.ResultFormatterFunc(func(_ string, b []byte) string { return FormatPayload(b) }),
		PrometheusAddress: o.PrometheusURL,
		ReadOnly:          o.ReadOnly,
	})
}

// Redacted replaces the value of a secret field in FormatPayload's output.
const Redacted = "[redacted]"

// secretWords mark a JSON field as secret when its name, lower-cased
// without '_', '-' and '.', contains one of them: access_token,
// refresh_token, suite_access_token, app_secret, suiteSecret, password,
// jsapi_ticket, suiteTicket, aes_key, EncodingAESKey, AuthCode… dingq's own
// payloads carry no secret by design (registration tasks take the callback
// keys from the worker's config); these are what DingTalk's events and a
// careless producer could still put in one. No field of a message (content,
// title, urls, media ids, recipients) contains one.
var secretWords = []string{"token", "secret", "password", "passwd", "ticket", "aeskey", "authcode", "permanentcode", "privatekey", "credential"}

var fieldNormalizer = strings.NewReplacer("_", "", "-", "", ".", "")

// isSecretField reports whether a JSON field holds a secret.
func isSecretField(name string) bool {
	n := fieldNormalizer.Replace(strings.ToLower(name))
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// FormatPayload shows a task payload or result in the UI: JSON indented,
// with the value of every secret field (isSecretField, at any depth, also
// inside strings that hold JSON, as DingTalk's sync pushes do) replaced by
// Redacted; the rest, message content and recipients included, as it is.
// Anything but exactly one JSON value is only summarised, since it cannot
// be searched for secrets.
func FormatPayload(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	v, ok := decodeOne(b)
	if !ok {
		return fmt.Sprintf("(%d bytes, not JSON)", len(b))
	}
	out, err := json.MarshalIndent(redact(v), "", "  ")
	if err != nil {
		return fmt.Sprintf("(%d bytes of JSON)", len(b))
	}
	return string(out)
}

// decodeOne decodes b if it is exactly one JSON value, keeping numbers as
// they are written.
func decodeOne(b []byte) (any, bool) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return v, true
}

// redact returns v with the values of secret fields replaced, looking into
// strings that hold a JSON object or array.
func redact(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if isSecretField(k) {
				t[k] = Redacted
			} else {
				t[k] = redact(e)
			}
		}
	case []any:
		for i, e := range t {
			t[i] = redact(e)
		}
	case string:
		if s := strings.TrimSpace(t); len(s) > 1 && (s[0] == '{' || s[0] == '[') {
			if inner, ok := decodeOne([]byte(s)); ok {
				if b, err := json.Marshal(redact(inner)); err == nil {
					return string(b)
				}
			}
		}
	}
	return v
}

// readOnly refuses every request to h but GET and HEAD: the UI's actions
// (run, delete, archive, pause, cancel) all use other methods.
func readOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeError(w, http.StatusForbidden, CodeReadOnly, "", "the web UI is read-only (api.ui_read_only): %s is refused", r.Method)
			return
		}
		h.ServeHTTP(w, r)
	})
}
