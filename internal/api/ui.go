package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

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
	// PrometheusURL, if set, is the Prometheus the UI's charts query, as
	// the operator's browser reaches it.
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

// secretFields are the JSON field names whose values FormatPayload never
// shows, lower-cased without '_' and '-'. dingq's own payloads carry no
// secret by design (registration tasks take the callback keys from the
// worker's config); these are what DingTalk's events and a careless
// producer could still put in one.
var secretFields = map[string]bool{
	"token": true, "accesstoken": true, "apitoken": true, "password": true, "passwd": true,
	"secret": true, "appsecret": true, "corpsecret": true, "clientsecret": true, "forwardsecret": true,
	"aeskey": true, "encodingaeskey": true, "ownerkey": true,
	"suiteticket": true, "authcode": true, "tmpauthcode": true, "permanentcode": true,
}

// isSecretField reports whether a JSON field holds a secret.
func isSecretField(name string) bool {
	n := strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(name))
	return secretFields[n]
}

// FormatPayload shows a task payload or result in the UI: JSON indented,
// with the value of every secret field (token, secret, password, aes_key,
// suite tickets and auth codes, at any depth and in any case) replaced by
// Redacted; the rest, message content and recipients included, as it is.
// Bytes that are not JSON are shown when they are text and summarised when
// they are not.
func FormatPayload(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil || dec.More() {
		if utf8.Valid(b) {
			return string(b)
		}
		return fmt.Sprintf("(%d bytes, not text)", len(b))
	}
	out, err := json.MarshalIndent(redact(v), "", "  ")
	if err != nil {
		return fmt.Sprintf("(%d bytes of JSON)", len(b))
	}
	return string(out)
}

// redact returns v with the values of secret fields replaced.
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
