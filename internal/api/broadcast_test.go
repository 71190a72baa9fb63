package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/dingq/dingq/internal/api"
	"github.com/dingq/dingq/internal/outcome"
	"github.com/dingq/dingq/producer"
	"github.com/hibiken/asynq"
)

// broadcastBody is a message to 250 distinct users, 5 of them given twice.
func broadcastBody() string {
	users := strings.TrimSuffix(quoted("u", 250), "]") + `,"u0","u1","u2","u3","u4"]`
	return `{"app":"hr","userid_list":` + users + `,"msg":` + textMsg + `}`
}

// action sends method path with the test token and no body.
func (f *fixture) action(t testing.TB, method, path string) (*http.Response, []byte) {
	t.Helper()
	return f.request(t, method, path, "", map[string]string{"Authorization": "Bearer " + testToken})
}

// batchRecipients reads the recipients of batch of broadcast id from its
// task.
func (f *fixture) batchRecipients(t testing.TB, id, batch string) []string {
	t.Helper()
	ti, err := f.insp.GetTaskInfo(producer.QueueBulk, producer.BatchTaskID(id, batch))
	if err != nil {
		t.Fatalf("task of batch %s: %v", batch, err)
	}
	bp, err := producer.DecodeBatch(asynq.NewTask(ti.Type, ti.Payload))
	if err != nil {
		t.Fatalf("payload of batch %s: %v", batch, err)
	}
	return bp.Recipients()
}

// outcomeOf checks an answer's status and decodes its outcome.
func outcomeOf(t testing.TB, resp *http.Response, body []byte, want int) *producer.Outcome {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("status: got %d, want %d (body %s)", resp.StatusCode, want, body)
	}
	if !isJSON(resp) {
		t.Errorf("Content-Type: got %q, want application/json", resp.Header.Get("Content-Type"))
	}
	var o producer.Outcome
	if err := json.Unmarshal(body, &o); err != nil {
		t.Fatalf("decoding outcome %s: %v", body, err)
	}
	return &o
}

// wantError checks an error answer's status, code and field.
func wantError(t testing.TB, resp *http.Response, body []byte, status int, code, field string) api.ErrorDetail {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status: got %d, want %d (body %s)", resp.StatusCode, status, body)
	}
	e := apiError(t, resp, body)
	if e.Code != code {
		t.Errorf("error.code: got %q, want %q", e.Code, code)
	}
	if e.Field != field {
		t.Errorf("error.field: got %q, want %q (message %q)", e.Field, field, e.Message)
	}
	if e.Message == "" {
		t.Errorf("error.message: got empty, want one")
	}
	return e
}

func TestBroadcastLifeCycle(t *testing.T) {
	f := setup(t)
	resp, body := f.post(t, broadcastBody())
	id := accepted(t, resp, body)
	var acc api.SendResponse
	if err := json.Unmarshal(body, &acc); err != nil {
		t.Fatal(err)
	}
	if acc.Batches != 3 || acc.Recipients != 250 || acc.Duplicates != 5 {
		t.Errorf("answer: got batches %d recipients %d duplicates %d, want 3 250 5", acc.Batches, acc.Recipients, acc.Duplicates)
	}
	for i, want := range []int{100, 100, 50} {
		if got := len(f.batchRecipients(t, id, strconv.Itoa(i))); got != want {
			t.Errorf("batch %d: got %d recipients, want %d", i, got, want)
		}
	}

	path := "/v1/messages/" + id
	resp, body = f.get(t, path)
	o := outcomeOf(t, resp, body, http.StatusOK)
	if o.Status != producer.StatusQueued || o.Recipients != 250 || o.Broadcast == nil {
		t.Fatalf("GET: got status %v recipients %d broadcast %v, want queued 250 and a broadcast", o.Status, o.Recipients, o.Broadcast)
	}
	if want := (outcome.BatchCounts{Total: 3, Queued: 3}); o.Broadcast.Batches != want {
		t.Errorf("GET batches: got %+v, want %+v", o.Broadcast.Batches, want)
	}
	if r := o.Broadcast.Recipients; r.Total != 250 || r.Duplicates != 5 {
		t.Errorf("GET recipients: got %+v, want total 250 duplicates 5", r)
	}

	steps := []struct {
		name       string
		method     string
		path       string
		wantStatus int
		// wantOutcome is the outcome's status of a 200, or a word the
		// message of a 409 names.
		want string
	}{
		{"pause", http.MethodPost, path + "/pause", 200, "paused"},
		{"pause again", http.MethodPost, path + "/pause", 200, "paused"},
		{"resume", http.MethodPost, path + "/resume", 200, ""},
		{"resume again", http.MethodPost, path + "/resume", 200, ""},
		{"cancel with DELETE", http.MethodDelete, path, 200, "canceled"},
		{"cancel again with POST", http.MethodPost, path + "/cancel", 200, "canceled"},
		{"cancel again with DELETE", http.MethodDelete, path, 200, "canceled"},
		{"pause after cancel", http.MethodPost, path + "/pause", 409, "canceled"},
		{"resume after cancel", http.MethodPost, path + "/resume", 409, "canceled"},
		{"recall with nothing accepted", http.MethodPost, path + "/recall", 409, "accepted none"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			resp, body := f.action(t, st.method, st.path)
			if st.wantStatus != http.StatusOK {
				e := wantError(t, resp, body, st.wantStatus, api.CodeConflict, "")
				if !strings.Contains(e.Message, st.want) {
					t.Errorf("error.message: got %q, want it to name %q", e.Message, st.want)
				}
				return
			}
			o := outcomeOf(t, resp, body, st.wantStatus)
			if o.ID != id || o.Broadcast == nil {
				t.Errorf("outcome: got id %q broadcast %v, want %q with a broadcast", o.ID, o.Broadcast, id)
			}
			switch {
			case st.want != "" && string(o.Status) != st.want:
				t.Errorf("status: got %q, want %q", o.Status, st.want)
			case st.want == "" && o.Status != producer.StatusQueued && o.Status != producer.StatusSending:
				t.Errorf("status after resume: got %q, want queued or sending", o.Status)
			}
			if o.Status == producer.StatusCanceled && o.Broadcast.CanceledAt.IsZero() {
				t.Errorf("canceled_at: got zero, want set")
			}
			if b := o.Broadcast.Batches; b.Total != 3 || b.Queued != 3 {
				t.Errorf("batches: got %+v, want 3 still queued (no worker ran)", b)
			}
		})
	}

	// A worker takes batch 0 of the canceled broadcast: it is canceled and
	// its recipients are listed.
	store := outcome.NewStore(f.rdb, "", 0)
	batch0 := f.batchRecipients(t, id, "0")
	v, err := store.BeginBatch(context.Background(), id, "0", batch0, nil)
	if err != nil || v != outcome.BatchCanceled {
		t.Fatalf("BeginBatch: got %v, %v; want %v", v, err, outcome.BatchCanceled)
	}
	resp, body = f.get(t, path)
	o = outcomeOf(t, resp, body, http.StatusOK)
	if want := (outcome.BatchCounts{Total: 3, Queued: 2, Canceled: 1}); o.Broadcast.Batches != want {
		t.Errorf("GET batches: got %+v, want %+v", o.Broadcast.Batches, want)
	}
	if got := o.Broadcast.Recipients.Canceled; got != 100 {
		t.Errorf("GET recipients.canceled: got %d, want 100", got)
	}

	pages := []struct {
		query     string
		wantItems []string
		wantNext  int64
	}{
		{"status=canceled&limit=30", batch0[:30], 30},
		{"status=canceled&offset=30&limit=30", batch0[30:60], 60},
		{"status=canceled&offset=90&limit=30", batch0[90:], 0},
		{"status=canceled", batch0, 0},
		{"status=canceled&offset=100", nil, 0},
	}
	for _, p := range pages {
		t.Run("recipients "+p.query, func(t *testing.T) {
			resp, body := f.get(t, path+"/recipients?"+p.query)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status: got %d, want 200 (body %s)", resp.StatusCode, body)
			}
			var page producer.RecipientsPage
			if err := json.Unmarshal(body, &page); err != nil {
				t.Fatalf("decoding %s: %v", body, err)
			}
			if page.Result != "canceled" || page.Total != 100 || page.Next != p.wantNext {
				t.Errorf("page: got result %q total %d next %d, want canceled 100 %d", page.Result, page.Total, page.Next, p.wantNext)
			}
			got := make([]string, len(page.Items))
			for i, it := range page.Items {
				got[i] = it.UserID
			}
			if strings.Join(got, ",") != strings.Join(p.wantItems, ",") {
				t.Errorf("items: got %v, want %v", got, p.wantItems)
			}
			if !strings.Contains(string(body), `"items":[`) {
				t.Errorf("body %s: want an items array, even empty", body)
			}
		})
	}
}

func TestMessageActionsRefused(t *testing.T) {
	f := setup(t)
	single := f.send(t, messageBody(textMsg))
	unknown := "0190f0b8-7c2e-7d1a-9e3f-2b4c6d8e0f12"
	tests := []struct {
		name       string
		method     string
		path       string
		wantStatus int
		wantCode   string
		wantField  string
	}{
		{"pause a single message", http.MethodPost, "/v1/messages/" + single + "/pause", 409, api.CodeConflict, ""},
		{"resume a single message", http.MethodPost, "/v1/messages/" + single + "/resume", 409, api.CodeConflict, ""},
		{"recall a single message not sent", http.MethodPost, "/v1/messages/" + single + "/recall", 409, api.CodeConflict, ""},
		{"cancel an unknown id", http.MethodPost, "/v1/messages/" + unknown + "/cancel", 404, api.CodeNotFound, "id"},
		{"DELETE an unknown id", http.MethodDelete, "/v1/messages/" + unknown, 404, api.CodeNotFound, "id"},
		{"pause an unknown id", http.MethodPost, "/v1/messages/" + unknown + "/pause", 404, api.CodeNotFound, "id"},
		{"resume an unknown id", http.MethodPost, "/v1/messages/" + unknown + "/resume", 404, api.CodeNotFound, "id"},
		{"recall an unknown id", http.MethodPost, "/v1/messages/" + unknown + "/recall", 404, api.CodeNotFound, "id"},
		{"cancel a malformed id", http.MethodPost, "/v1/messages/" + strings.Repeat("a", 65) + "/cancel", 404, api.CodeNotFound, "id"},
		{"recipients of an unknown id", http.MethodGet, "/v1/messages/" + unknown + "/recipients?status=read", 404, api.CodeNotFound, "id"},
		{"recipients of a malformed id", http.MethodGet, "/v1/messages/a.b/recipients?status=read", 404, api.CodeNotFound, "id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.action(t, tt.method, tt.path)
			wantError(t, resp, body, tt.wantStatus, tt.wantCode, tt.wantField)
		})
	}
	// The single message is still queued: it can be canceled once.
	resp, body := f.action(t, http.MethodDelete, "/v1/messages/"+single)
	if o := outcomeOf(t, resp, body, http.StatusOK); o.Status != producer.StatusCanceled || o.Broadcast != nil {
		t.Errorf("cancel of a queued single message: got %v (broadcast %v), want canceled", o.Status, o.Broadcast)
	}
	resp, body = f.action(t, http.MethodPost, "/v1/messages/"+single+"/cancel")
	if e := wantError(t, resp, body, http.StatusConflict, api.CodeConflict, ""); !strings.Contains(e.Message, "canceled") {
		t.Errorf("second cancel of a single message: got %q, want it to say it is canceled", e.Message)
	}
}

func TestRecipientsQuery(t *testing.T) {
	f := setup(t)
	id := f.send(t, broadcastBody())
	path := "/v1/messages/" + id + "/recipients"
	tests := []struct {
		name       string
		query      string
		wantStatus int
		wantField  string
	}{
		{"missing status", "", 400, "status"},
		{"empty status", "?status=", 400, "status"},
		{"unknown status", "?status=received", 400, "status"},
		{"limit 0", "?status=read&limit=0", 400, "limit"},
		{"limit over the max", "?status=read&limit=10001", 400, "limit"},
		{"limit not a number", "?status=read&limit=x", 400, "limit"},
		{"limit negative", "?status=read&limit=-5", 400, "limit"},
		{"offset negative", "?status=read&offset=-1", 400, "offset"},
		{"offset not a number", "?status=read&offset=1.5", 400, "offset"},
		{"every result", "", 200, ""},
		{"limit at the max", "?status=read&limit=10000", 200, ""},
		{"limit 1", "?status=forbidden&limit=1&offset=7", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			queries := []string{tt.query}
			if tt.name == "every result" {
				queries = nil
				for _, r := range producer.RecipientResults {
					queries = append(queries, "?status="+r)
				}
			}
			for _, q := range queries {
				resp, body := f.get(t, path+q)
				if tt.wantStatus != http.StatusOK {
					wantError(t, resp, body, tt.wantStatus, api.CodeInvalidArgument, tt.wantField)
					continue
				}
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%s: status got %d, want 200 (body %s)", q, resp.StatusCode, body)
				}
				var page producer.RecipientsPage
				if err := json.Unmarshal(body, &page); err != nil {
					t.Fatalf("decoding %s: %v", body, err)
				}
				if page.Total != 0 || len(page.Items) != 0 || page.Next != 0 {
					t.Errorf("%s: got %+v, want an empty page", q, page)
				}
			}
		})
	}
}

func TestBroadcastMethodNotAllowed(t *testing.T) {
	f := setup(t)
	id := f.send(t, broadcastBody())
	tests := []struct {
		method    string
		path      string
		wantAllow string
	}{
		{http.MethodGet, "/v1/messages/" + id + "/cancel", "POST"},
		{http.MethodDelete, "/v1/messages/" + id + "/cancel", "POST"},
		{http.MethodGet, "/v1/messages/" + id + "/pause", "POST"},
		{http.MethodPut, "/v1/messages/" + id + "/resume", "POST"},
		{http.MethodGet, "/v1/messages/" + id + "/recall", "POST"},
		{http.MethodPost, "/v1/messages/" + id + "/recipients", "GET"},
		{http.MethodDelete, "/v1/messages/" + id + "/recipients", "GET"},
		{http.MethodPost, "/v1/messages/" + id, "GET, DELETE"},
		{http.MethodPatch, "/v1/messages/" + id, "GET, DELETE"},
		{http.MethodGet, "/v1/messages", "POST"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+strings.Replace(tt.path, id, "{id}", 1), func(t *testing.T) {
			resp, body := f.action(t, tt.method, tt.path)
			wantError(t, resp, body, http.StatusMethodNotAllowed, api.CodeMethod, "")
			if got := resp.Header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow: got %q, want %q", got, tt.wantAllow)
			}
		})
	}
	// Nothing of those changed the broadcast.
	resp, body := f.get(t, "/v1/messages/"+id)
	if o := outcomeOf(t, resp, body, http.StatusOK); o.Status != producer.StatusQueued {
		t.Errorf("status after refused methods: got %v, want queued", o.Status)
	}
}
