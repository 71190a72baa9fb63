package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/dingtalk/fake"
	"github.com/dingq/dingq/internal/redistest"
	"github.com/dingq/dingq/producer"
	"github.com/hibiken/asynq"
)

// TestThreeProcesses runs dingq as its users do: fake-dingtalk, worker and
// api as three processes of the real binary against a real redis-server,
// talking HTTP. Every message type goes through, bad input is refused
// without enqueueing, and a bad secret fails after one gettoken call.
func TestThreeProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes; skipped with -short")
	}
	t.Parallel()
	rs := redistest.Start(t)
	bin := sharedBinary(t)
	dir := t.TempDir()

	fakeAddr := freeAddr(t)
	const (
		hrKey, hrSecret   = "dinghrkey", "hr-secret-6f1d2a"
		badKey, badSecret = "dingbadkey", "bad-secret-real"
		apiToken          = "e2e-token-0123456789abcdef"
	)
	start(t, dir, "fake", bin, nil, "fake-dingtalk", "--listen", fakeAddr,
		"--app", hrKey+":"+hrSecret+":777", "--app", badKey+":"+badSecret+":888")
	fakeURL := "http://" + fakeAddr
	waitHTTP(t, fakeURL+fake.PathAdminStats)

	apiAddr := freeAddr(t)
	cfg := filepath.Join(dir, "config.yaml")
	writeFile(t, cfg, fmt.Sprintf(`
redis:
  addr: %s
dingtalk:
  base_url: %s
  apps:
    - name: hr
      app_key: %s
      app_secret: ${E2E_HR_SECRET}
      agent_id: 777
    - name: bad
      app_key: %s
      app_secret: wrong-secret-on-purpose
      agent_id: 888
worker:
  concurrency: 8
  retry_base_delay: 50ms
  retry_max_delay: 200ms
api:
  listen: %s
  tokens: ["%s"]
log:
  level: debug
`, rs.Addr, fakeURL, hrKey, badKey, apiAddr, apiToken))
	env := []string{"DINGQ_CONFIG=" + cfg, "E2E_HR_SECRET=" + hrSecret}
	start(t, dir, "worker", bin, env, "worker")
	start(t, dir, "api", bin, env, "api")
	apiURL := "http://" + apiAddr
	waitHTTP(t, apiURL+"/readyz")

	api := &apiClient{t: t, base: apiURL, token: apiToken}

	// Every message type, through the HTTP API.
	bodies := map[string]string{
		"text":        `{"msgtype":"text","text":{"content":"月度报表已生成 <a&b>"}}`,
		"image":       `{"msgtype":"image","image":{"media_id":"@lADOADmaWMzazQKA"}}`,
		"voice":       `{"msgtype":"voice","voice":{"media_id":"@lADOADmaWMzazQKA","duration":"10"}}`,
		"file":        `{"msgtype":"file","file":{"media_id":"@lAz0x1"}}`,
		"link":        `{"msgtype":"link","link":{"messageUrl":"https://example.com/r?a=1&b=2","picUrl":"@lADOADmaWMzazQKA","title":"Report","text":"Open it"}}`,
		"oa":          `{"msgtype":"oa","oa":{"message_url":"https://example.com/oa","head":{"bgcolor":"FFBBBBBB","text":"Approvals"},"status_bar":{"status_value":"pending","status_bg":"0xFFF65E5E"},"body":{"title":"Leave request","form":[{"key":"Who:","value":"Li Lei"},{"key":"Days:","value":"2"}],"rich":{"num":"15.6","unit":"元"},"content":"Please approve","author":"Li"}}}`,
		"markdown":    `{"msgtype":"markdown","markdown":{"title":"Release","text":"# v2\n* **fast**"}}`,
		"action_card": `{"msgtype":"action_card","action_card":{"title":"Vote","markdown":"Pick one","btn_orientation":"1","btn_json_list":[{"title":"Yes","action_url":"https://example.com/y"},{"title":"No","action_url":"https://example.com/n"}]}}`,
	}
	ids := map[string]string{}
	for typ, msg := range bodies {
		status, body := api.do("POST", "/v1/messages", `{"app":"hr","userid_list":["u1","u2"],"msg":`+msg+`}`)
		if status != http.StatusAccepted {
			t.Fatalf("%s: POST answered %d %s", typ, status, body)
		}
		var r struct{ ID, Status string }
		mustJSON(t, body, &r)
		if r.ID == "" || r.Status != "queued" {
			t.Fatalf("%s: answer %s", typ, body)
		}
		ids[typ] = r.ID
	}
	taskIDs := map[string]int64{}
	for typ, id := range ids {
		o := api.waitTerminal(id)
		if o.Status != producer.StatusSent || o.TaskID == 0 {
			t.Fatalf("%s: outcome %+v, want sent with a task_id", typ, o)
		}
		taskIDs[typ] = o.TaskID
	}
	// What DingTalk received: the exact JSON, one send per message.
	var sent []fake.Sent
	getJSON(t, fakeURL+fake.PathAdminSent, &sent)
	if len(sent) != len(bodies) {
		t.Fatalf("fake recorded %d sends, want %d", len(sent), len(bodies))
	}
	for _, s := range sent {
		typ := string(s.Request.Msg.MsgType)
		want := `{"agent_id":777,"userid_list":"u1,u2","msg":` + compact(t, bodies[typ]) + `}`
		if string(s.Body) != want {
			t.Errorf("%s: DingTalk received\n %s\nwant\n %s", typ, s.Body, want)
		}
		if s.TaskID != taskIDs[typ] {
			t.Errorf("%s: fake task_id %d, outcome says %d", typ, s.TaskID, taskIDs[typ])
		}
	}

	// dingq status shows the same.
	status := exec.Command(bin, "status", ids["markdown"])
	status.Env = append(os.Environ(), env...)
	out, err := status.Output()
	if err != nil {
		t.Fatalf("dingq status: %v: %s", err, out)
	}
	var o producer.Outcome
	mustJSON(t, string(out), &o)
	if o.Status != producer.StatusSent || o.TaskID != taskIDs["markdown"] {
		t.Errorf("dingq status: %s", out)
	}

	// Bad messages: 400 naming the field, nothing enqueued.
	insp := asynq.NewInspectorFromRedisClient(rs.Client(t))
	before := queued(t, insp)
	many := make([]string, 30)
	for i := range many {
		many[i] = fmt.Sprintf("%d", i+1)
	}
	many[25] = "26,27"
	depts, _ := json.Marshal(many)
	bad := []struct{ name, body, field string }{
		{"unknown msgtype", `{"app":"hr","userid_list":["u1"],"msg":{"msgtype":"video","text":{"content":"x"}}}`, "msg.msgtype"},
		{"a bad id among 30 dept ids", `{"app":"hr","dept_id_list":` + string(depts) + `,"msg":{"msgtype":"text","text":{"content":"x"}}}`, "dept_id_list[25]"},
		{"3 KB msg", `{"app":"hr","userid_list":["u1"],"msg":{"msgtype":"text","text":{"content":"` + strings.Repeat("长", 1000) + `"}}}`, "msg.text"},
		{"missing field", `{"app":"hr","userid_list":["u1"],"msg":{"msgtype":"link","link":{"messageUrl":"https://e.com","title":"t","text":"x"}}}`, "msg.link.picUrl"},
		{"unknown app", `{"app":"nope","userid_list":["u1"],"msg":{"msgtype":"text","text":{"content":"x"}}}`, "app"},
	}
	for _, b := range bad {
		status, body := api.do("POST", "/v1/messages", b.body)
		var e struct {
			Error struct{ Code, Message, Field string }
		}
		mustJSON(t, body, &e)
		if status != http.StatusBadRequest || e.Error.Code != "invalid_argument" || e.Error.Field != b.field {
			t.Errorf("%s: %d %s, want 400 naming %s", b.name, status, body, b.field)
		}
	}
	if after := queued(t, insp); after != before {
		t.Errorf("bad messages enqueued tasks: %d before, %d after", before, after)
	}
	if status, _ := api.do("GET", "/v1/messages/01a2-unknown", ""); status != http.StatusNotFound {
		t.Errorf("unknown id: %d, want 404", status)
	}
	if status, _ := (&apiClient{t: t, base: apiURL, token: "wrong-token-wrong-token"}).do("GET", "/v1/messages/"+ids["text"], ""); status != http.StatusUnauthorized {
		t.Errorf("wrong token: %d, want 401", status)
	}

	// A bad app secret: failed with 40096 after one gettoken, no loop.
	code, body := api.do("POST", "/v1/messages", `{"app":"bad","userid_list":["u1"],"msg":{"msgtype":"text","text":{"content":"x"}}}`)
	if code != http.StatusAccepted {
		t.Fatalf("bad app: %d %s", code, body)
	}
	var r struct{ ID string }
	mustJSON(t, body, &r)
	fo := api.waitTerminal(r.ID)
	if fo.Status != producer.StatusFailed || fo.LastError == nil || fo.LastError.Code != 40096 || fo.Attempts != 1 {
		t.Errorf("bad secret: outcome %+v, want failed with 40096 after 1 attempt", fo)
	}
	var stats fake.Stats
	getJSON(t, fakeURL+fake.PathAdminStats, &stats)
	if stats.TokenFetches[badKey] != 1 || stats.TokenFetches[hrKey] != 1 {
		t.Errorf("gettoken calls %v, want 1 for each app", stats.TokenFetches)
	}

	// No secret in any process's log.
	checkLogsClean(t, dir, hrSecret, "wrong-secret-on-purpose", apiToken)
}

// start runs bin with args and env added to the environment, and stops it
// with SIGINT when the test ends; its output goes to dir/name.log.
func start(t *testing.T, dir, name, bin string, env []string, argv ...string) {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, argv...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("%s did not stop within 10s of SIGINT", name)
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("--- %s log (last 3000 bytes) ---\n%s", name, lastBytes(b, 3000))
		}
	})
}

func lastBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer 200 within 15s", url)
}

type apiClient struct {
	t     *testing.T
	base  string
	token string
}

func (c *apiClient) do(method, path, body string) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (c *apiClient) waitTerminal(id string) *producer.Outcome {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		status, body := c.do("GET", "/v1/messages/"+id, "")
		if status != http.StatusOK {
			c.t.Fatalf("GET %s: %d %s", id, status, body)
		}
		var o producer.Outcome
		mustJSON(c.t, body, &o)
		if o.Status.Terminal() {
			return &o
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("message %s still %s after 20s", id, o.Status)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func queued(t *testing.T, insp *asynq.Inspector) int {
	t.Helper()
	q, err := insp.GetQueueInfo(producer.QueueDefault)
	if err != nil {
		return 0 // the queue does not exist yet
	}
	return q.Size
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("not JSON (%v): %s", err, s)
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// compact returns s as DingTalk receives it: compact, < > & unescaped.
func compact(t *testing.T, s string) string {
	t.Helper()
	var m dingtalk.Message
	mustJSON(t, s, &m)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(b.String())
}
