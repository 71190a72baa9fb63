package api_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/dingq/dingq/internal/api"
	"github.com/dingq/dingq/producer"
)

func TestSessions(t *testing.T) {
	f := setup(t)
	resp, body := f.request(t, http.MethodPost, "/v1/sessions",
		`{"app":"hr","action":"create","userid":"manager1","chatid":"chat42"}`, authJSON())
	var acc struct{ ID, Status string }
	if err := json.Unmarshal(body, &acc); err != nil || resp.StatusCode != http.StatusAccepted || acc.ID == "" || acc.Status != "queued" {
		t.Fatalf("POST /v1/sessions: %d %s", resp.StatusCode, body)
	}
	resp, body = f.request(t, http.MethodGet, "/v1/sessions/"+acc.ID, "", authJSON())
	var o producer.Outcome
	if err := json.Unmarshal(body, &o); err != nil || resp.StatusCode != http.StatusOK || o.Kind != "session.create" || o.Status != producer.StatusQueued {
		t.Fatalf("GET /v1/sessions/%s: %d %s", acc.ID, resp.StatusCode, body)
	}
	// A message's id is not a session task.
	resp, body = f.request(t, http.MethodPost, "/v1/messages", messageBody(textMsg), authJSON())
	var m struct{ ID string }
	if err := json.Unmarshal(body, &m); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/messages: %d %s", resp.StatusCode, body)
	}
	if resp, _ := f.request(t, http.MethodGet, "/v1/sessions/"+m.ID, "", authJSON()); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a message's id as a session: %d, want 404", resp.StatusCode)
	}

	tests := []struct {
		name, body, field string
		status            int
	}{
		{"unknown action", `{"app":"hr","action":"open","userid":"u"}`, "action", 400},
		{"get without userid", `{"app":"hr","action":"get"}`, "userid", 400},
		{"close without session_id", `{"app":"hr","action":"close","userid":"u"}`, "session_id", 400},
		{"unknown app", `{"app":"nope","action":"get","userid":"u"}`, "app", 400},
		{"unknown field", `{"app":"hr","action":"get","userid":"u","extra":1}`, "extra", 400},
		{"not JSON", `action=get`, "", 400},
	}
	for _, tt := range tests {
		resp, body := f.request(t, http.MethodPost, "/v1/sessions", tt.body, authJSON())
		e := apiError(t, resp, body)
		if resp.StatusCode != tt.status || e.Field != tt.field || e.Code != api.CodeInvalidArgument {
			t.Errorf("%s: %d %+v, want %d naming %q", tt.name, resp.StatusCode, e, tt.status, tt.field)
		}
	}
	if resp, _ := f.request(t, http.MethodPost, "/v1/sessions", `{"app":"hr","action":"get","userid":"u"}`, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a token: %d, want 401", resp.StatusCode)
	}
	if resp, _ := f.request(t, http.MethodGet, "/v1/sessions/unknown-id", "", authJSON()); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown id: %d, want 404", resp.StatusCode)
	}
	// No callback receiver configured: its path is not served.
	if resp, _ := f.request(t, http.MethodPost, "/v1/callbacks/dingtalk?signature=x", `{}`, nil); resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusNotFound {
		t.Errorf("callback path without a receiver: %d, want 404 or 405", resp.StatusCode)
	}
}

func TestCallbackRouteNeedsNoToken(t *testing.T) {
	called := 0
	f := setupWith(t, producer.Config{Apps: []string{"hr"}}, api.Config{Tokens: []string{testToken},
		Callbacks: map[string]http.Handler{"": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			called++
			w.WriteHeader(http.StatusTeapot)
		})}})
	if resp, _ := f.request(t, http.MethodPost, "/v1/callbacks/dingtalk?signature=x", `{}`, nil); resp.StatusCode != http.StatusTeapot || called != 1 {
		t.Errorf("POST /v1/callbacks/dingtalk: %d, %d calls; want the receiver's answer", resp.StatusCode, called)
	}
}
