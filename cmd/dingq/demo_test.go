package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to write from the demo and read here.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemo runs `dingq demo` in-process: the sample message is sent, and
// the web UI it prints opens with the login it prints.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- runDemo(ctx, &out, "127.0.0.1:0", "error") }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo: %v", err)
		}
	}()
	uiLine := regexp.MustCompile(`The asynq web UI: (http://\S+/ui/) \(user (\S+), password (\S+)\)`)
	deadline := time.Now().Add(30 * time.Second)
	var m []string
	for m == nil && time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("demo stopped: %v\n%s", err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		m = uiLine.FindStringSubmatch(out.String())
	}
	if m == nil {
		t.Fatalf("demo printed no web UI line within 30s:\n%s", out.String())
	}
	if !strings.Contains(out.String(), `"status": "sent"`) {
		t.Errorf("the sample message was not sent:\n%s", out.String())
	}
	for _, tt := range []struct {
		user, password string
		want           int
	}{{m[2], m[3], http.StatusOK}, {m[2], "wrong-password-0123456789", http.StatusUnauthorized}} {
		req, _ := http.NewRequest(http.MethodGet, m[1]+"api/queues", nil)
		req.SetBasicAuth(tt.user, tt.password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("GET %sapi/queues as %s: %d, want %d", m[1], tt.user, resp.StatusCode, tt.want)
		}
	}

	// The robots the demo prints, as its curl lines send them.
	base, token := strings.TrimSuffix(m[1], "/ui/"), m[3]
	for _, body := range []string{
		`{"robot":"alerts","msg":{"msgtype":"text","text":{"content":"db-1: disk full"}}}`,
		`{"robot":"helpdesk","userIds":["u1","u2"],"msgKey":"sampleText","msgParam":{"content":"ticket 7 answered"}}`,
	} {
		if !strings.Contains(out.String(), body) {
			t.Errorf("the demo does not print %s", body)
		}
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/robot-messages", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var acc struct{ ID string }
		err = json.NewDecoder(resp.Body).Decode(&acc)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted || err != nil {
			t.Fatalf("POST %s: %d (%v), want 202", body, resp.StatusCode, err)
		}
		var o struct{ Status string }
		for deadline := time.Now().Add(20 * time.Second); o.Status != "sent" && o.Status != "done"; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("robot message %s: %q after 20s, want sent or done", acc.ID, o.Status)
			}
			req, _ := http.NewRequest(http.MethodGet, base+"/v1/messages/"+acc.ID, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = json.NewDecoder(resp.Body).Decode(&o)
			resp.Body.Close()
		}
	}
}
