package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/producer"
)

// TestFleetWebUI serves asynqmon from a real `dingq api` to a real browser:
// headless Chromium logs in with a UI user, runs the page's JavaScript and
// must show the queues list; without a login it gets nothing. A second api
// on the same Redis, read-only, refuses the actions the first one performs.
func TestFleetWebUI(t *testing.T) {
	t.Parallel()
	chromium := lookTool(t, "chromium", "chromium")
	const (
		token    = "ui-test-api-token-0123456789"
		user     = "ops"
		password = "ui-test-password-0123456789"
	)
	fl := startFleetWith(t, fleetOpts{workers: 1, concurrency: 5, fakeArgs: []string{"--no-limits"},
		apiYAML: fmt.Sprintf("tokens: [%s]\nui_users: [{name: %s, password: %s}]", token, user, password)}, hrApp)
	start(t, fl.dir, "api", fl.bin, fl.env, "api")
	waitHTTP(t, fl.apiURL+"/readyz")
	roURL := "http://" + freeAddr(t)
	start(t, fl.dir, "api-ro", fl.bin, append(fl.env, "DINGQ_API_LISTEN="+strings.TrimPrefix(roURL, "http://"), "DINGQ_API_UI_READ_ONLY=true"), "api")
	waitHTTP(t, roURL+"/readyz")

	// One message on each lane, so the UI has three queues to show.
	var ids []string
	for _, p := range []producer.Priority{producer.PriorityCritical, producer.PriorityDefault, producer.PriorityBulk} {
		id, err := fl.producer.Send(context.Background(), &producer.Message{App: "hr", UserIDs: []string{"u1"},
			Priority: p, Msg: dingtalk.TextMessage("ui " + string(p))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	fl.waitSent(ids, 20*time.Second)
	queues := []string{producer.QueueCritical, producer.QueueDefault, producer.QueueBulk}

	uiGet := func(base, path, auth string) (int, []byte) {
		return uiDo(t, http.MethodGet, base+path, auth)
	}
	login := basicLogin(user, password)

	// Over HTTP: a login or the token opens it; nothing else does.
	if code, _ := uiGet(fl.apiURL, "/ui/", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /ui/ without a login: %d, want 401", code)
	}
	if code, _ := uiGet(fl.apiURL, "/ui/api/queues", basicLogin(user, "wrong-password-0123456789")); code != http.StatusUnauthorized {
		t.Errorf("GET /ui/api/queues with a wrong password: %d, want 401", code)
	}
	if code, body := uiGet(fl.apiURL, "/ui/", login); code != http.StatusOK || !bytes.Contains(body, []byte("<div id=\"root\">")) {
		t.Errorf("GET /ui/ logged in: %d, want 200 and asynqmon's page:\n%.300s", code, body)
	}
	if got := uiQueues(t, fl.apiURL, "Bearer "+token); !sameSet(got, queues) {
		t.Errorf("queues with the token: %v, want %v", got, queues)
	}

	// Actions: the read-only api refuses them, the other performs them.
	pause := "/ui/api/queues/" + producer.QueueBulk + ":pause"
	if code, body := uiDo(t, http.MethodPost, roURL+pause, login); code != http.StatusForbidden || !bytes.Contains(body, []byte("read_only")) {
		t.Errorf("POST %s on the read-only api: %d %s, want 403 read_only", pause, code, body)
	}
	if paused := uiPaused(t, fl.apiURL, login); paused[producer.QueueBulk] {
		t.Errorf("the read-only api paused %s", producer.QueueBulk)
	}
	if code, body := uiDo(t, http.MethodPost, fl.apiURL+pause, login); code != http.StatusNoContent && code != http.StatusOK {
		t.Errorf("POST %s: %d %s, want it done", pause, code, body)
	}
	if paused := uiPaused(t, fl.apiURL, login); !paused[producer.QueueBulk] {
		t.Errorf("%s not paused after the UI paused it", producer.QueueBulk)
	}
	resume := "/ui/api/queues/" + producer.QueueBulk + ":resume"
	if code, _ := uiDo(t, http.MethodPost, fl.apiURL+resume, login); code != http.StatusNoContent && code != http.StatusOK {
		t.Errorf("POST %s: %d", resume, code)
	}

	// In a real browser: the page's JavaScript fetches the queues and
	// lists them.
	host := strings.TrimPrefix(fl.apiURL, "http://")
	dom := chromiumDOM(t, chromium, fmt.Sprintf("http://%s:%s@%s/ui/", user, password, host))
	for _, q := range queues {
		if !strings.Contains(dom, q) {
			t.Errorf("Chromium's page does not show queue %s", q)
		}
	}
	if !strings.Contains(dom, "Queues") {
		t.Errorf("Chromium's page has no queues list")
	}
	if t.Failed() {
		t.Logf("Chromium's DOM (first 3000 bytes):\n%.3000s", dom)
	}
	// What the UI shows of the tasks, and every process's log, hold no
	// secret: not the app's, not its access token, not a login.
	accessToken := fakeAccessToken(t, fl.fakeURL, hrApp)
	secrets := []string{hrApp.secret, accessToken, token, password}
	for _, q := range queues {
		_, body := uiGet(fl.apiURL, "/ui/api/queues/"+q+"/completed_tasks", login)
		if !bytes.Contains(body, []byte(`"tasks"`)) {
			t.Errorf("completed tasks of %s: %.300s", q, body)
		}
		for _, s := range secrets {
			if bytes.Contains(body, []byte(s)) {
				t.Errorf("the UI's tasks of %s show a secret", q)
			}
		}
	}
	checkLogsClean(t, fl.dir, secrets...)
	// Without a login the browser is asked for one and shows no queue.
	dom = chromiumDOM(t, chromium, "http://"+host+"/ui/")
	if strings.Contains(dom, producer.QueueCritical) || strings.Contains(dom, "<div id=\"root\">") {
		t.Errorf("Chromium without a login got the UI:\n%.1000s", dom)
	}
}

func basicLogin(user, password string) string {
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	req.SetBasicAuth(user, password)
	return req.Header.Get("Authorization")
}

func uiDo(t *testing.T, method, url, auth string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// uiQueueList is asynqmon's answer to GET /api/queues.
type uiQueueList struct {
	Queues []struct {
		Queue  string `json:"queue"`
		Paused bool   `json:"paused"`
	} `json:"queues"`
}

func uiList(t *testing.T, base, auth string) uiQueueList {
	t.Helper()
	code, body := uiDo(t, http.MethodGet, base+"/ui/api/queues", auth)
	var l uiQueueList
	if code != http.StatusOK || json.Unmarshal(body, &l) != nil {
		t.Fatalf("GET /ui/api/queues: %d %.300s", code, body)
	}
	return l
}

func uiQueues(t *testing.T, base, auth string) []string {
	var names []string
	for _, q := range uiList(t, base, auth).Queues {
		names = append(names, q.Queue)
	}
	return names
}

func uiPaused(t *testing.T, base, auth string) map[string]bool {
	paused := map[string]bool{}
	for _, q := range uiList(t, base, auth).Queues {
		paused[q.Queue] = q.Paused
	}
	return paused
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		if seen[s]--; seen[s] < 0 {
			return false
		}
	}
	return true
}

// chromiumDOM loads url in headless Chromium, gives its JavaScript up to
// 15 s of virtual time, and returns the DOM it rendered. With
// DINGQ_TEST_SCREENSHOT set to a directory, it also saves a screenshot there.
func chromiumDOM(t *testing.T, chromium, url string) string {
	t.Helper()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir(), "--virtual-time-budget=15000"}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, chromium, append(args, "--dump-dom", url)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v\n%s", err, lastBytes(stderr.Bytes(), 2000))
	}
	if dir := os.Getenv("DINGQ_TEST_SCREENSHOT"); dir != "" {
		shot := filepath.Join(dir, fmt.Sprintf("ui-%d.png", time.Now().UnixNano()))
		shotCmd := exec.CommandContext(ctx, chromium, append(args, "--window-size=1400,900", "--screenshot="+shot, url)...)
		if b, err := shotCmd.CombinedOutput(); err != nil {
			t.Logf("screenshot: %v\n%s", err, lastBytes(b, 1000))
		} else {
			t.Logf("screenshot: %s", shot)
		}
	}
	return string(out)
}

// fakeAccessToken asks the fake for app's access token, which is the one
// the workers hold: the fake hands out the same token until it expires.
func fakeAccessToken(t *testing.T, fakeURL string, app fleetApp) string {
	t.Helper()
	var r struct {
		AccessToken string `json:"access_token"`
	}
	getJSON(t, fakeURL+dingtalk.PathGetToken+"?appkey="+app.key+"&appsecret="+app.secret, &r)
	if len(r.AccessToken) < 16 {
		t.Fatalf("the fake gave no access token: %+v", r)
	}
	return r.AccessToken
}

// checkLogsClean fails t if a log of the processes started in dir holds
// one of secrets.
func checkLogsClean(t *testing.T, dir string, secrets ...string) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(logs) == 0 {
		t.Fatalf("no logs in %s", dir)
	}
	for _, path := range logs {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range secrets {
			if s != "" && bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds secret #%d", filepath.Base(path), i)
			}
		}
	}
}
