package api_test

import (
	"encoding/json"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dingq/dingq/internal/api"
)

// FuzzSendBody posts arbitrary bodies through the handler, and so through
// decodeMessage's streaming of the id lists: it never panics, never answers
// 5xx while Redis is up, and every 4xx is a JSON error with a code.
func FuzzSendBody(f *testing.F) {
	seeds := []string{
		messageBody(textMsg),
		messageBody(`{"msgtype":"image","image":{"media_id":"@x"}}`),
		messageBody(`{"msgtype":"voice","voice":{"media_id":"@x","duration":"59"}}`),
		messageBody(`{"msgtype":"file","file":{"media_id":"@x"}}`),
		messageBody(`{"msgtype":"link","link":{"messageUrl":"https://e.com","picUrl":"@p","title":"t","text":"x"}}`),
		messageBody(`{"msgtype":"oa","oa":{"message_url":"https://e.com","head":{"bgcolor":"FFBBBBBB","text":"h"},"body":{"form":[{"key":"k","value":"v"}]}}}`),
		messageBody(`{"msgtype":"markdown","markdown":{"title":"t","text":"# x"}}`),
		messageBody(`{"msgtype":"action_card","action_card":{"title":"t","markdown":"m","btn_orientation":"0","btn_json_list":[{"title":"a","action_url":"https://e.com"}]}}`),
		`{"app":"hr","to_all_user":true,"idempotency_key":"k-1","send_at":"2099-01-01T00:00:00+08:00","msg":` + textMsg + `}`,
		`{"app":"hr","userid_list":["u1"],"idempotency_key":"k-1","msg":{"msgtype":"text","text":{"content":"other"}}}`,
		`{"app":"nope","userid_list":["u1"],"msg":` + textMsg + `}`,
		`{"app":"hr","userid_list":"u1"}`,
		`{"app":"hr","send_at":"0000-01-01T00:00:00Z","userid_list":["u1"],"msg":` + textMsg + `}`,
		`{"app":"hr","send_at":5}`,
		`{"extra":1}`,
		`{"app" "hr"}`,
		`{}{}`,
		`null`,
		`[]`,
		`"x"`,
		`{"msg":{"msgtype":"text","text":{"content":1e999}}}`,
		``,
		"\xff\xfe",
		// The streamed id lists: decodeMessage takes them one id at a time.
		`{"app":"hr","msg":` + textMsg + `,"userid_list":["u1","u2"],"dept_id_list":["1"]}`,
		`{"userid_list":["u1"],"dept_id_list":["2"],"app":"hr","msg":` + textMsg + `}`,
		`{"app":"hr","userid_list":` + quoted("u", 150) + `,"dept_id_list":` + quoted("", 25) + `,"msg":` + textMsg + `}`,
		`{"app":"hr","userid_list":["u1","u1","u2"],"msg":` + textMsg + `}`,
		`{"app":"hr","userid_list":null,"dept_id_list":null,"to_all_user":true,"msg":` + textMsg + `}`,
		`{"app":"hr","userid_list":[],"msg":` + textMsg + `}`,
		`{"app":"hr","userid_list":[["u1"],["u2"]],"msg":` + textMsg + `}`,
		`{"app":"hr","userid_list":[[[[]]]]}`,
		`{"app":"hr","dept_id_list":[1,2,3],"msg":` + textMsg + `}`,
		`{"app":"hr","userid_list":[1e999,-0,true,null,{}],"msg":` + textMsg + `}`,
		`{"app":"hr","userid_list":["u1",null]}`,
		`{"app":"hr","userid_list":{"u1":true}}`,
		`{"app":"hr","userid_list":5}`,
		`{"app":"hr","userid_list":["u1"],"userid_list":["u2"]}`,
		`{"app":"hr","USERID_LIST":["u1"],"msg":` + textMsg + `}`,
		`{"app":"hr","userid_list":["u\u0031","\ud800"],"msg":` + textMsg + `}`,
		`{"app":"hr","userid_list":["u1"`,
		`{"app":"hr","userid_list":[,]}`,
		`{"userid_list":["u1"]}trailing`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	fx := setup(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/messages", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		fx.api.ServeHTTP(rec, req)

		if rec.Code >= 500 {
			t.Fatalf("status: got %d, want < 500 (body %q, answer %s)", rec.Code, body, rec.Body)
		}
		mt, _, _ := mime.ParseMediaType(rec.Header().Get("Content-Type"))
		if mt != "application/json" {
			t.Errorf("Content-Type: got %q, want application/json", rec.Header().Get("Content-Type"))
		}
		switch {
		case rec.Code == http.StatusAccepted:
			var sr api.SendResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &sr); err != nil {
				t.Fatalf("decoding 202 answer %s: %v", rec.Body, err)
			}
			if sr.ID == "" || sr.Status != "queued" {
				t.Errorf("202 answer: got %+v, want an id and status queued", sr)
			}
		case rec.Code >= 400:
			var eb api.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil {
				t.Fatalf("decoding %d answer %s: %v", rec.Code, rec.Body, err)
			}
			if eb.Error.Code == "" || eb.Error.Message == "" {
				t.Errorf("%d answer: got %s, want an error with a code and a message", rec.Code, rec.Body)
			}
		default:
			t.Errorf("status: got %d, want 202 or 4xx", rec.Code)
		}
	})
}
