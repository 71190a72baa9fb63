package dingtalk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
)

// taskCall is one of the three task calls, run against a client, for the
// tests every one of them shares.
type taskCall struct {
	name      string
	path      string
	taskField string // the task id's name in the body and in validation errors
	call      func(c *Client, ctx context.Context, token string, agentID, taskID int64) error
}

var taskCalls = []taskCall{
	{name: "GetSendProgress", path: PathGetSendProgress, taskField: "task_id",
		call: func(c *Client, ctx context.Context, token string, agentID, taskID int64) error {
			p, err := c.GetSendProgress(ctx, token, agentID, taskID)
			if err != nil && p != nil {
				return fmt.Errorf("got progress %+v with error %w", p, err)
			}
			return err
		}},
	{name: "GetSendResult", path: PathGetSendResult, taskField: "task_id",
		call: func(c *Client, ctx context.Context, token string, agentID, taskID int64) error {
			d, err := c.GetSendResult(ctx, token, agentID, taskID)
			if err != nil && d != nil {
				return fmt.Errorf("got result %+v with error %w", d, err)
			}
			return err
		}},
	{name: "Recall", path: PathRecall, taskField: "msg_task_id",
		call: func(c *Client, ctx context.Context, token string, agentID, taskID int64) error {
			return c.Recall(ctx, token, agentID, taskID)
		}},
}

func TestTaskCalls_request(t *testing.T) {
	for _, tc := range taskCalls {
		t.Run(tc.name, func(t *testing.T) {
			client, mux := setup(t)
			var hits atomic.Int32
			mux.HandleFunc(tc.path, func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				testMethod(t, r, http.MethodPost)
				testQuery(t, r, map[string]string{"access_token": testToken})
				testHeader(t, r, "Content-Type", "application/json; charset=utf-8")
				testBody(t, r, `{"agent_id":123,"`+tc.taskField+`":256271667526}`)
				fmt.Fprint(w, `{"errcode":0,"errmsg":"ok","request_id":"r1"}`)
			})
			if err := tc.call(client, context.Background(), testToken, 123, 256271667526); err != nil {
				t.Fatalf("%s: got %v, want nil", tc.name, err)
			}
			if got, want := hits.Load(), int32(1); got != want {
				t.Errorf("calls: got %d, want %d", got, want)
			}
		})
	}
}

func TestTaskCalls_invalid(t *testing.T) {
	for _, tc := range taskCalls {
		tests := []struct {
			name      string
			token     string
			agentID   int64
			taskID    int64
			wantField string
		}{
			{name: "agent_id 0", token: testToken, agentID: 0, taskID: 1, wantField: "agent_id"},
			{name: "agent_id negative", token: testToken, agentID: -5, taskID: 1, wantField: "agent_id"},
			{name: "task id 0", token: testToken, agentID: 1, taskID: 0, wantField: tc.taskField},
			{name: "task id negative", token: testToken, agentID: 1, taskID: -1, wantField: tc.taskField},
			{name: "no token", token: "", agentID: 1, taskID: 1, wantField: "access_token"},
			{name: "all missing reports agent_id first", token: "", agentID: 0, taskID: 0, wantField: "agent_id"},
		}
		for _, tt := range tests {
			t.Run(tc.name+"/"+tt.name, func(t *testing.T) {
				client, mux := setup(t)
				var hits atomic.Int32
				mux.HandleFunc("/", counted(&hits, `{"errcode":0}`))
				err := tc.call(client, context.Background(), tt.token, tt.agentID, tt.taskID)
				var ve *ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("error: got %v (%T), want *ValidationError", err, err)
				}
				if got := ve.Field; got != tt.wantField {
					t.Errorf("Field: got %q, want %q", got, tt.wantField)
				}
				if got, want := Classify(err), ClassPermanent; got != want {
					t.Errorf("Classify: got %v, want %v", got, want)
				}
				if got, want := hits.Load(), int32(0); got != want {
					t.Errorf("calls reaching the server: got %d, want %d", got, want)
				}
			})
		}
	}
}

func TestTaskCalls_errors(t *testing.T) {
	tests := []struct {
		name         string
		body         string
		wantCode     int
		wantSubCode  string
		wantReqID    string
		wantClass    Class
		tokenInvalid bool
	}{
		{name: "88 sub_code 40014", body: `{"errcode":88,"sub_code":"40014","sub_msg":"不合法的access_token","errmsg":"ilegal request","request_id":"req88"}`,
			wantCode: 88, wantSubCode: "40014", wantReqID: "req88", wantClass: ClassTokenInvalid, tokenInvalid: true},
		{name: "40056 bad agent_id", body: `{"errcode":40056,"errmsg":"不合法的agentid"}`,
			wantCode: 40056, wantClass: ClassPermanent},
		{name: "90018 throttled", body: `{"errcode":90018,"errmsg":"请求被暂时禁用"}`,
			wantCode: 90018, wantClass: ClassThrottled},
		{name: "-1 busy", body: `{"errcode":-1,"errmsg":"系统繁忙"}`,
			wantCode: -1, wantClass: ClassTransient},
	}
	for _, tc := range taskCalls {
		for _, tt := range tests {
			t.Run(tc.name+"/"+tt.name, func(t *testing.T) {
				client, mux := setup(t)
				mux.HandleFunc(tc.path, func(w http.ResponseWriter, r *http.Request) {
					fmt.Fprint(w, tt.body)
				})
				err := tc.call(client, context.Background(), testToken, 1, 2)
				var de *Error
				if !errors.As(err, &de) {
					t.Fatalf("error: got %v (%T), want *Error", err, err)
				}
				if got := de.Code; got != tt.wantCode {
					t.Errorf("Code: got %d, want %d", got, tt.wantCode)
				}
				if got := de.SubCode; got != tt.wantSubCode {
					t.Errorf("SubCode: got %q, want %q", got, tt.wantSubCode)
				}
				if got := de.RequestID; got != tt.wantReqID {
					t.Errorf("RequestID: got %q, want %q", got, tt.wantReqID)
				}
				if got, want := de.Path, tc.path; got != want {
					t.Errorf("Path: got %q, want %q", got, want)
				}
				if got := Classify(err); got != tt.wantClass {
					t.Errorf("Classify: got %v, want %v", got, tt.wantClass)
				}
				if got := de.TokenInvalid(); got != tt.tokenInvalid {
					t.Errorf("TokenInvalid: got %v, want %v", got, tt.tokenInvalid)
				}
				if got := err.Error(); strings.Contains(got, testToken) {
					t.Errorf("Error(): got %q, want no token", got)
				}
			})
		}
	}
}

func TestTaskCalls_malformedAnswer(t *testing.T) {
	for _, tc := range taskCalls {
		t.Run(tc.name, func(t *testing.T) {
			client, mux := setup(t)
			mux.HandleFunc(tc.path, func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, `{"errmsg":"ok"}`)
			})
			err := tc.call(client, context.Background(), testToken, 1, 2)
			var te *TransportError
			if !errors.As(err, &te) {
				t.Fatalf("error: got %v (%T), want *TransportError", err, err)
			}
			if got, want := Classify(err), ClassTransient; got != want {
				t.Errorf("Classify: got %v, want %v", got, want)
			}
		})
	}
}

// --- GetSendProgress -----------------------------------------------------

func TestGetSendProgress(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		want     SendProgress
		wantDone bool
	}{
		{name: "done", body: `{"errcode":0,"errmsg":"ok","progress":{"progress_in_percent":100,"status":2},"request_id":"r"}`,
			want: SendProgress{Percent: 100, Status: SendDone}, wantDone: true},
		{name: "processing", body: `{"errcode":0,"errmsg":"ok","progress":{"progress_in_percent":40,"status":1},"request_id":"r"}`,
			want: SendProgress{Percent: 40, Status: SendProcessing}},
		{name: "not started", body: `{"errcode":0,"errmsg":"ok","progress":{"progress_in_percent":0,"status":0}}`,
			want: SendProgress{Status: SendNotStarted}},
		{name: "no progress", body: `{"errcode":0,"errmsg":"ok"}`,
			want: SendProgress{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, mux := setup(t)
			mux.HandleFunc(PathGetSendProgress, func(w http.ResponseWriter, r *http.Request) {
				testBody(t, r, `{"agent_id":7,"task_id":9}`)
				fmt.Fprint(w, tt.body)
			})
			p, err := client.GetSendProgress(context.Background(), testToken, 7, 9)
			if err != nil {
				t.Fatalf("GetSendProgress: got %v, want nil", err)
			}
			if got := *p; got != tt.want {
				t.Errorf("progress: got %+v, want %+v", got, tt.want)
			}
			if got := p.Done(); got != tt.wantDone {
				t.Errorf("Done: got %v, want %v", got, tt.wantDone)
			}
		})
	}
}

func TestSendProgress_Done_nil(t *testing.T) {
	var p *SendProgress
	if p.Done() {
		t.Errorf("nil Done: got true, want false")
	}
}

// --- GetSendResult -------------------------------------------------------

func TestGetSendResult(t *testing.T) {
	client, mux := setup(t)
	mux.HandleFunc(PathGetSendResult, func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, http.MethodPost)
		testQuery(t, r, map[string]string{"access_token": testToken})
		testBody(t, r, `{"agent_id":123,"task_id":456}`)
		fmt.Fprint(w, `{"errcode":0,"errmsg":"ok","send_result":{
			"invalid_user_id_list":["bad1","bad2"],
			"forbidden_user_id_list":["f1","f2","f3","f4"],
			"failed_user_id_list":["x1"],
			"read_user_id_list":["r1","r2"],
			"unread_user_id_list":["n1"],
			"invalid_dept_id_list":["d9"],
			"forbidden_list":[
				{"code":"143105","count":500,"userid":"f1"},
				{"code":143106,"count":1,"userid":"f2"},
				{"code":"143103","count":5000,"userid":"f3"}
			]},"request_id":"req1"}`)
	})
	got, err := client.GetSendResult(context.Background(), testToken, 123, 456)
	if err != nil {
		t.Fatalf("GetSendResult: got %v, want nil", err)
	}
	want := &SendResultDetail{
		InvalidUserIDs:   []string{"bad1", "bad2"},
		ForbiddenUserIDs: []string{"f1", "f2", "f3", "f4"},
		FailedUserIDs:    []string{"x1"},
		ReadUserIDs:      []string{"r1", "r2"},
		UnreadUserIDs:    []string{"n1"},
		InvalidDeptIDs:   []string{"d9"},
		Forbidden: []ForbiddenRecipient{
			{Code: ForbiddenDaily, Count: 500, UserID: "f1"},
			{Code: ForbiddenSameContent, Count: 1, UserID: "f2"},
			{Code: ForbiddenAppPerMinute, Count: 5000, UserID: "f3"},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GetSendResult:\n got %+v\nwant %+v", got, want)
	}
	wantCodes := map[string]string{"f1": ForbiddenDaily, "f2": ForbiddenSameContent, "f3": ForbiddenAppPerMinute, "f4": ""}
	if codes := got.ForbiddenCodes(); !reflect.DeepEqual(codes, wantCodes) {
		t.Errorf("ForbiddenCodes: got %v, want %v", codes, wantCodes)
	}
}

func TestGetSendResult_emptyLists(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{name: "no send_result", body: `{"errcode":0,"errmsg":"ok"}`},
		{name: "null send_result", body: `{"errcode":0,"errmsg":"ok","send_result":null}`},
		{name: "empty send_result", body: `{"errcode":0,"errmsg":"ok","send_result":{}}`},
		{name: "null lists", body: `{"errcode":0,"errmsg":"ok","send_result":{"invalid_user_id_list":null,"forbidden_user_id_list":null,
			"failed_user_id_list":null,"read_user_id_list":null,"unread_user_id_list":null,"invalid_dept_id_list":null,"forbidden_list":null}}`},
		{name: "empty lists", body: `{"errcode":0,"errmsg":"ok","send_result":{"invalid_user_id_list":[],"forbidden_user_id_list":[],
			"failed_user_id_list":[],"read_user_id_list":[],"unread_user_id_list":[],"invalid_dept_id_list":[],"forbidden_list":[]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, mux := setup(t)
			mux.HandleFunc(PathGetSendResult, func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, tt.body)
			})
			d, err := client.GetSendResult(context.Background(), testToken, 1, 2)
			if err != nil {
				t.Fatalf("GetSendResult: got %v, want nil", err)
			}
			if d == nil {
				t.Fatal("result: got nil, want a result")
			}
			for name, l := range map[string]int{"InvalidUserIDs": len(d.InvalidUserIDs), "ForbiddenUserIDs": len(d.ForbiddenUserIDs),
				"FailedUserIDs": len(d.FailedUserIDs), "ReadUserIDs": len(d.ReadUserIDs), "UnreadUserIDs": len(d.UnreadUserIDs),
				"InvalidDeptIDs": len(d.InvalidDeptIDs), "Forbidden": len(d.Forbidden)} {
				if l != 0 {
					t.Errorf("%s: got %d entries, want 0", name, l)
				}
			}
			codes := d.ForbiddenCodes()
			if codes == nil || len(codes) != 0 {
				t.Errorf("ForbiddenCodes: got %#v, want an empty map", codes)
			}
		})
	}
}

func TestGetSendResult_badForbiddenCode(t *testing.T) {
	client, mux := setup(t)
	mux.HandleFunc(PathGetSendResult, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"errcode":0,"send_result":{"forbidden_list":[{"code":true,"count":1,"userid":"u"}]}}`)
	})
	d, err := client.GetSendResult(context.Background(), testToken, 1, 2)
	if d != nil {
		t.Errorf("result: got %+v, want nil", d)
	}
	var te *TransportError
	if !errors.As(err, &te) {
		t.Fatalf("error: got %v (%T), want *TransportError", err, err)
	}
}

func TestSendResultDetail_ForbiddenCodes_nil(t *testing.T) {
	var d *SendResultDetail
	if codes := d.ForbiddenCodes(); codes == nil || len(codes) != 0 {
		t.Errorf("nil ForbiddenCodes: got %#v, want an empty map", codes)
	}
}

// --- ForbiddenRecipient --------------------------------------------------

func TestForbiddenRecipient_UnmarshalJSON(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    ForbiddenRecipient
		wantErr bool
	}{
		{name: "code as string", in: `{"code":"143105","count":500,"userid":"u1"}`,
			want: ForbiddenRecipient{Code: "143105", Count: 500, UserID: "u1"}},
		{name: "code as number", in: `{"code":143105,"count":500,"userid":"u1"}`,
			want: ForbiddenRecipient{Code: "143105", Count: 500, UserID: "u1"}},
		{name: "code missing", in: `{"count":1,"userid":"u1"}`,
			want: ForbiddenRecipient{Count: 1, UserID: "u1"}},
		{name: "code null", in: `{"code":null,"userid":"u1"}`,
			want: ForbiddenRecipient{UserID: "u1"}},
		{name: "code as bool", in: `{"code":false,"userid":"u1"}`, wantErr: true},
		{name: "code as object", in: `{"code":{},"userid":"u1"}`, wantErr: true},
		{name: "not an object", in: `"x"`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got ForbiddenRecipient
			err := json.Unmarshal([]byte(tt.in), &got)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("Unmarshal error: got %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("Unmarshal: got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestForbiddenRecipient_roundTrip(t *testing.T) {
	in := ForbiddenRecipient{Code: ForbiddenCorpPerMinute, Count: 5000, UserID: "u1"}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatalf("Marshal: got %v, want nil", err)
	}
	if got, want := string(b), `{"code":"143104","count":5000,"userid":"u1"}`; got != want {
		t.Errorf("Marshal: got %s, want %s", got, want)
	}
	var out ForbiddenRecipient
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("Unmarshal: got %v, want nil", err)
	}
	if out != in {
		t.Errorf("round trip: got %+v, want %+v", out, in)
	}
}
