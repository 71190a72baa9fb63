package producer_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/producer"
)

// FuzzMessageValidate decodes arbitrary JSON into a Message and validates
// it: Validate never panics, every refusal is a *dingtalk.ValidationError
// naming a field the body has a name for, and a message it accepts encodes
// for DingTalk.
func FuzzMessageValidate(f *testing.F) {
	for _, s := range []string{
		`{"app":"hr","userid_list":["u1"],"msg":{"msgtype":"text","text":{"content":"hi"}}}`,
		`{"app":"hr","dept_id_list":["1","2"],"msg":{"msgtype":"markdown","markdown":{"title":"t","text":"# x"}}}`,
		`{"app":"hr","to_all_user":true,"msg":{"msgtype":"link","link":{"messageUrl":"https://e.com","picUrl":"@p","title":"t","text":"x"}}}`,
		`{"app":"hr","userid_list":["u1"],"msg":{"msgtype":"oa","oa":{"message_url":"https://e.com","head":{"bgcolor":"FFBBBBBB","text":"h"},"body":{"form":[{"key":"k","value":"v"}]}}}}`,
		`{"app":"hr","userid_list":["u1"],"msg":{"msgtype":"action_card","action_card":{"title":"t","markdown":"m","btn_orientation":"0","btn_json_list":[{"title":"a","action_url":"https://e.com"}]}}}`,
		`{"app":"hr","userid_list":["u1"],"msg":{"msgtype":"voice","voice":{"media_id":"@x","duration":"61"}}}`,
		`{"app":"hr","userid_list":["u1",""],"priority":"urgent","idempotency_key":"a b"}`,
		`{"app":"HR","userid_list":[],"msg":{}}`,
		`{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var m producer.Message
		if json.Unmarshal(body, &m) != nil {
			return
		}
		err := m.Validate()
		if err == nil {
			if _, err := json.Marshal(&m.Msg); err != nil {
				t.Fatalf("an accepted message does not encode: %v", err)
			}
			if m.Msg.EncodedSize() <= 0 {
				t.Fatalf("an accepted message encodes to nothing")
			}
			return
		}
		var ve *dingtalk.ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("Validate() = %T %v, want a *dingtalk.ValidationError", err, err)
		}
		top, _, _ := strings.Cut(ve.Field, ".")
		top, _, _ = strings.Cut(top, "[")
		switch top {
		case "app", "userid_list", "dept_id_list", "to_all_user", "msg", "priority", "idempotency_key":
		default:
			t.Fatalf("error names %q, not a field of the message: %v", ve.Field, err)
		}
		if ve.Reason == "" {
			t.Fatalf("error %q has no reason", ve.Field)
		}
	})
}
