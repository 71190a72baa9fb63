package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/dingq/dingq/internal/outcome"
	"github.com/dingq/dingq/producer"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

func TestReadUsers(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 65)
	for _, tc := range []struct {
		name, file, column, in string
		want                   []string
		err                    string // a substring of the error
	}{
		{name: "lines", file: "u.txt", in: "u1\nu2\nu3\n", want: []string{"u1", "u2", "u3"}},
		{name: "no final newline", file: "u.txt", in: "u1\nu2", want: []string{"u1", "u2"}},
		{name: "blanks and spaces", file: "u.txt", in: "\n  u1  \n\n\tu2\t\n \n", want: []string{"u1", "u2"}},
		{name: "BOM", file: "u.txt", in: "\ufeffu1\nu2\n", want: []string{"u1", "u2"}},
		{name: "CRLF", file: "u.txt", in: "u1\r\nu2\r\n\r\n", want: []string{"u1", "u2"}},
		{name: "duplicates kept", file: "u.txt", in: "u1\nu1\n", want: []string{"u1", "u1"}},
		{name: "csv of one column", file: "u.csv", in: "u1\n\"u2\"\n", want: []string{"u1", "u2"}},
		{name: "csv of two columns needs --column", file: "u.csv", in: "userid,name\nu1,Ann\n", err: "u.csv line 1: the CSV has 2 columns"},
		{name: "csv by index", file: "u.csv", column: "2", in: "Ann,u1\nBob, u2 \n", want: []string{"u1", "u2"}},
		{name: "index makes csv", file: "u.txt", column: "2", in: "Ann,u1\nBob,u2\n", want: []string{"u1", "u2"}},
		{name: "csv by name", file: "u.csv", column: "userid", in: "name,userid\nAnn,u1\nBob,u2\n", want: []string{"u1", "u2"}},
		{name: "name any case", file: "u.csv", column: "userid", in: "Name, UserID \nAnn,u1\n", want: []string{"u1"}},
		{name: "csv BOM CRLF", file: "u.csv", column: "userid", in: "\ufeffuserid,name\r\nu1,Ann\r\nu2,Bob\r\n", want: []string{"u1", "u2"}},
		{name: "csv quoted", file: "u.csv", column: "userid",
			in: "name,userid\n\"Doe, Jane\",\"u1\"\n\"say \"\"hi\"\"\", u2\n\"multi\nline\",u3\n", want: []string{"u1", "u2", "u3"}},
		{name: "csv blank rows and cells", file: "u.csv", column: "2", in: "\na,u1\n,\n  \nb,\nc,u2\n", want: []string{"u1", "u2"}},
		{name: "header after blank lines", file: "u.csv", column: "userid", in: "\n\nuserid\nu1\n", want: []string{"u1"}},

		{name: "empty", file: "u.txt", in: "", err: "u.txt: no user ids"},
		{name: "only blanks", file: "u.txt", in: "\n \r\n\t\n", err: "u.txt: no user ids"},
		{name: "BOM only", file: "u.txt", in: "\ufeff", err: "no user ids"},
		{name: "csv header only", file: "u.csv", column: "userid", in: "userid\n", err: "u.csv: no user ids"},
		{name: "csv empty with header wanted", file: "u.csv", column: "userid", in: "", err: `u.csv: no header row with a column "userid"`},
		{name: "missing column", file: "users.csv", column: "userid", in: "name,user\nAnn,u1\n", err: `users.csv line 1: no column "userid" in the header row (name, user)`},
		{name: "missing column late header", file: "users.csv", column: "userid", in: "\n\nname\n", err: `users.csv line 3: no column "userid"`},
		{name: "short row by name", file: "users.csv", column: "userid",
			in: "name,userid\nAnn,u1\nBob,u2\nCid\n", err: `users.csv line 4: no column "userid": the row has 1`},
		{name: "short row by index", file: "users.csv", column: "3", in: "a,b,u1\n\na,b\n", err: "users.csv line 3: no column 3"},
		{name: "short row counts quoted lines", file: "users.csv", column: "2", in: "\"a\nb\",u1\nc\n", err: "users.csv line 3: no column 2"},
		{name: "column zero", file: "u.csv", column: "0", in: "u1\n", err: "--column 0"},
		{name: "bad quote", file: "users.csv", in: "u1\n\"u2\"x\n", err: "users.csv line 2: "},
		{name: "space in id", file: "users.txt", in: "u1\n\nu 2\n", err: `users.txt line 3: id "u 2" contains a comma or white space`},
		{name: "comma in a line", file: "users.txt", in: "u1,u2\n", err: "users.txt line 1: id \"u1,u2\""},
		{name: "long id", file: "users.txt", in: "u1\r\nu2\r\n" + long + "\r\n", err: "users.txt line 3: id is 65 bytes"},
		{name: "long id csv", file: "users.csv", column: "userid", in: "userid\nu1\n" + long + "\n", err: "users.csv line 3: id is 65 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := readUsers(strings.NewReader(tc.in), tc.file, isCSV(tc.file, tc.column), tc.column)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one with %q (ids %q)", err, tc.err, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("ids %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReadUsersFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var errw bytes.Buffer
	empty := filepath.Join(dir, "empty.txt")
	writeFile(t, empty, "")
	if _, err := readUsersFile(empty, "", nil, &errw); err == nil || !strings.Contains(err.Error(), "no user ids") {
		t.Errorf("empty file: %v", err)
	}
	if _, err := readUsersFile(filepath.Join(dir, "nope.txt"), "", nil, &errw); err == nil || !strings.Contains(err.Error(), "--users-file") {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(dir, "big.csv")
	var b strings.Builder
	b.WriteString("name,userid\n")
	for i := range 5000 {
		fmt.Fprintf(&b, "name %d,user%05d\n", i, i)
	}
	writeFile(t, big, b.String())
	ids, err := readUsersFile(big, "userid", nil, &errw)
	if err != nil || len(ids) != 5000 || ids[4999] != "user04999" {
		t.Fatalf("big.csv: %d ids, %v", len(ids), err)
	}
	if !strings.Contains(errw.String(), "reading "+big) {
		t.Errorf("no progress bar on stderr: %q", errw.String())
	}
	ids, err = readUsersFile("-", "", strings.NewReader("a\nb\n"), &errw)
	if err != nil || !slices.Equal(ids, []string{"a", "b"}) {
		t.Fatalf("stdin: %q, %v", ids, err)
	}
}

// testEnv is a miniredis and a config file pointing at it.
type testEnv struct {
	t   *testing.T
	mr  *miniredis.Miniredis
	rdb *redis.Client
	cfg string
	dir string
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	return newTestEnvWith(t, "")
}

// newTestEnvWith is newTestEnv with dingtalkYAML (indented as keys of the
// dingtalk section) added to its configuration.
func newTestEnvWith(t *testing.T, dingtalkYAML string) *testEnv {
	t.Helper()
	mr := miniredis.RunT(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	writeFile(t, cfg, fmt.Sprintf(`
redis:
  addr: %s
dingtalk:
  apps:
    - name: hr
      app_key: dingtestkey
      app_secret: test-secret
      agent_id: 777
%slog:
  level: error
`, mr.Addr(), dingtalkYAML))
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return &testEnv{t: t, mr: mr, rdb: rdb, cfg: cfg, dir: dir}
}

// run runs dingq args in process and returns its stdout and stderr.
func (e *testEnv) run(args ...string) (string, string, error) {
	var out bytes.Buffer
	errs, err := e.runCtx(context.Background(), &out, nil, args...)
	return out.String(), errs, err
}

func (e *testEnv) runCtx(ctx context.Context, stdout io.Writer, stdin io.Reader, args ...string) (string, error) {
	root := newRootCmd()
	var errb bytes.Buffer
	root.SetOut(stdout)
	root.SetErr(&errb)
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	root.SetIn(stdin)
	root.SetArgs(append([]string{"--config", e.cfg}, args...))
	err := root.ExecuteContext(ctx)
	return errb.String(), err
}

// usersFile writes n users (u0000…), a header and dups repeats, as CSV.
func (e *testEnv) usersFile(name string, n, dups int) string {
	var b strings.Builder
	b.WriteString("\ufeffname,userid\r\n")
	for i := range n {
		fmt.Fprintf(&b, "\"Doe, %d\",u%04d\r\n", i, i)
		if i%50 == 0 {
			b.WriteString("\r\n")
		}
	}
	for i := range dups {
		fmt.Fprintf(&b, "again,u%04d\r\n", i)
	}
	path := filepath.Join(e.dir, name)
	writeFile(e.t, path, b.String())
	return path
}

// broadcast queues a broadcast from a file of n users and returns its id.
func (e *testEnv) broadcast(n int) string {
	e.t.Helper()
	out, errs, err := e.run("broadcast", "--app", "hr", "--users-file", e.usersFile("users.csv", n, 0), "--column", "userid", "--text", "hi")
	if err != nil {
		e.t.Fatalf("broadcast: %v\n%s", err, errs)
	}
	return strings.TrimSpace(out)
}

func (e *testEnv) bulkTasks() []*asynq.TaskInfo {
	e.t.Helper()
	insp := asynq.NewInspectorFromRedisClient(e.rdb)
	tasks, err := insp.ListPendingTasks(producer.QueueBulk, asynq.PageSize(1000))
	if errors.Is(err, asynq.ErrQueueNotFound) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return tasks
}

// cancelBatches has every batch of broadcast id taken as a worker would
// after a cancel: each ends canceled, its recipients listed.
func (e *testEnv) cancelBatches(id string) {
	e.t.Helper()
	store := outcome.NewStore(e.rdb, "dingq", 0)
	tasks := e.bulkTasks()
	slices.SortFunc(tasks, func(a, b *asynq.TaskInfo) int { return strings.Compare(a.ID, b.ID) })
	for _, ti := range tasks {
		var bp producer.BatchPayload
		if err := json.Unmarshal(ti.Payload, &bp); err != nil {
			e.t.Fatal(err)
		}
		if bp.ID != id {
			continue
		}
		v, err := store.BeginBatch(context.Background(), id, bp.Batch, bp.Recipients(), ti.Payload)
		if err != nil || v != outcome.BatchCanceled {
			e.t.Fatalf("batch %s: %s, %v", bp.Batch, v, err)
		}
	}
}

func TestBroadcastCmdQueuesBatches(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	file := e.usersFile("staff.csv", 250, 7)
	out, errs, err := e.run("broadcast", "--app", "hr", "--users-file", file, "--column", "userid",
		"--markdown-title", "Notice", "--markdown", "# hi")
	if err != nil {
		t.Fatalf("%v\n%s", err, errs)
	}
	id := strings.TrimSpace(out)
	if strings.Count(out, "\n") != 1 || id == "" {
		t.Fatalf("stdout %q, want the id alone", out)
	}
	if want := "queued " + id + ": 250 recipients, 7 duplicates removed, 3 batches"; !strings.Contains(errs, want) {
		t.Errorf("stderr %q lacks %q", errs, want)
	}
	for _, bar := range []string{"reading " + file, "queueing batches"} {
		if !strings.Contains(errs, bar) {
			t.Errorf("stderr lacks the %q bar: %q", bar, errs)
		}
	}
	tasks := e.bulkTasks()
	if len(tasks) != 3 {
		t.Fatalf("%d tasks in %s, want 3", len(tasks), producer.QueueBulk)
	}
	users := 0
	for _, ti := range tasks {
		var bp producer.BatchPayload
		if err := json.Unmarshal(ti.Payload, &bp); err != nil {
			t.Fatal(err)
		}
		if bp.ID != id || bp.Msg.MsgType != "markdown" {
			t.Errorf("batch %+v", bp)
		}
		users += len(bp.UserIDs)
	}
	if users != 250 {
		t.Errorf("%d users in the batches, want 250", users)
	}

	out, errs, err = e.run("message", "cancel", id)
	if err != nil {
		t.Fatalf("cancel: %v\n%s", err, errs)
	}
	var o producer.Outcome
	mustJSON(t, out, &o)
	if o.ID != id || o.Status != producer.StatusCanceled || o.Broadcast == nil || o.Broadcast.Batches.Total != 3 {
		t.Fatalf("cancel printed %s", out)
	}
	if !strings.Contains(out, "\n  \"status\": \"canceled\"") {
		t.Errorf("not indented JSON: %s", out)
	}
}

func TestBroadcastCmdRefuses(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	bad := filepath.Join(e.dir, "bad.csv")
	writeFile(t, bad, "name,userid\nAnn,u1\nBob\n")
	good := e.usersFile("good.csv", 150, 0)
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--users-file", bad, "--column", "userid", "--text", "hi"}, `bad.csv line 3: no column "userid"`},
		{[]string{"--users-file", bad, "--column", "user_id", "--text", "hi"}, `bad.csv line 1: no column "user_id"`},
		{[]string{"--users-file", good, "--column", "userid"}, "give exactly one of --text"},
		{[]string{"--users-file", good, "--column", "userid", "--text", "hi", "--priority", "urgent"}, "--priority: unknown priority"},
		{[]string{"--users-file", good, "--column", "userid", "--text", "hi", "--send-at", "tomorrow"}, "--send-at"},
		{[]string{"--users-file", "-", "--msg-file", "-"}, "cannot both read stdin"},
		{[]string{"--users-file", good, "--column", "userid", "--text", "hi", "--app", "nope"}, `--app: unknown app "nope"`},
	} {
		args := append([]string{"broadcast", "--app", "hr"}, tc.args...)
		out, _, err := e.run(args...)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: error %v, want %q", tc.args, err, tc.err)
		}
		if out != "" {
			t.Errorf("%q: stdout %q", tc.args, out)
		}
	}
	if n := len(e.bulkTasks()); n != 0 {
		t.Fatalf("%d tasks queued by refused broadcasts", n)
	}
}

func TestBroadcastCmdStdinSmall(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	var out bytes.Buffer
	errs, err := e.runCtx(context.Background(), &out, strings.NewReader("\ufeffu1\r\nu2\r\nu1\r\n"),
		"broadcast", "--app", "hr", "--users-file", "-", "--text", "hi", "--priority", "critical")
	if err != nil {
		t.Fatalf("%v\n%s", err, errs)
	}
	if !strings.Contains(errs, "2 recipients, 1 duplicates removed, 1 call (not a broadcast") {
		t.Errorf("stderr %q", errs)
	}
	id := strings.TrimSpace(out.String())
	o, errs2, err := e.run("status", id)
	if err != nil || !strings.Contains(o, `"recipients": 2`) {
		t.Fatalf("status: %v %s %s", err, o, errs2)
	}
}

// startWait runs dingq broadcast --wait in the background, and returns
// the broadcast's id and a channel with the command's stdout after the id,
// stderr and error once it ends.
func (e *testEnv) startWait(ctx context.Context, n int) (string, <-chan [3]any) {
	e.t.Helper()
	return e.startWaiting(ctx, "broadcast", "--app", "hr", "--users-file", e.usersFile("wait.txt", n, 0),
		"--column", "userid", "--text", "hi", "--wait")
}

// startWaiting runs a dingq command that prints a message id and then
// waits (args), in the background, and returns the id and a channel with
// the command's stdout after the id, stderr and error once it ends.
func (e *testEnv) startWaiting(ctx context.Context, args ...string) (string, <-chan [3]any) {
	e.t.Helper()
	pr, pw := io.Pipe()
	done := make(chan [3]any, 1)
	go func() {
		errs, err := e.runCtx(ctx, pw, nil, args...)
		pw.CloseWithError(io.EOF)
		done <- [3]any{"", errs, err}
	}()
	br := bufio.NewReader(pr)
	id, err := br.ReadString('\n')
	if err != nil {
		e.t.Fatalf("no id from %q: %v", args, err)
	}
	rest := make(chan [3]any, 1)
	go func() {
		b, _ := io.ReadAll(br)
		r := <-done
		r[0] = string(b)
		rest <- r
	}()
	return strings.TrimSpace(id), rest
}

func TestBroadcastCmdWaitCanceled(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	id, done := e.startWait(context.Background(), 250)
	if _, errs, err := e.run("message", "cancel", id); err != nil {
		t.Fatalf("cancel: %v %s", err, errs)
	}
	e.cancelBatches(id)
	var r [3]any
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("broadcast --wait did not end")
	}
	out, errs := r[0].(string), r[1].(string)
	err, _ := r[2].(error)
	var ee exitError
	if !errors.As(err, &ee) || ee != 2 {
		t.Fatalf("error %v, want exit status 2\n%s", err, errs)
	}
	for _, want := range []string{"\nstatus       canceled\n", "\nbatches      3 (sent 0, failed 0, canceled 3)\n",
		"\nrecipients   250 (0 duplicates removed)\n", "\n  canceled   250\n", "\nresults      0 batches pending\n",
		"\n  forbidden  0\n", "\n  unknown    0\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errs, "canceled: sent 0, failed 0, paused 0; results pending 0") {
		t.Errorf("stderr lacks the bar's description:\n%s", errs)
	}
}

func TestBroadcastCmdWaitInterrupted(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	id, done := e.startWait(ctx, 120)
	time.Sleep(100 * time.Millisecond)
	cancel()
	var r [3]any
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("broadcast --wait did not stop")
	}
	err, _ := r[2].(error)
	if err == nil || !strings.Contains(err.Error(), "stopped waiting for broadcast "+id) || !strings.Contains(err.Error(), "it goes on") {
		t.Fatalf("error %v", err)
	}
	out, _, _ := e.run("status", id)
	if !strings.Contains(out, `"status": "queued"`) {
		t.Fatalf("the broadcast did not go on: %s", out)
	}
}
