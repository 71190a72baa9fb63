package dingtalk

import (
	"encoding/json"
	"slices"
	"testing"
)

// wireTests are golden asyncsend_v2 bodies, written by hand from DingTalk's
// documentation (dingtalk-api.md), one per message type.
var wireTests = []struct {
	name string
	req  SendRequest
	want string
}{
	{
		name: "text",
		req:  SendRequest{AgentID: 123, UserIDs: []string{"u1", "u2"}, Msg: TextMessage("hi")},
		want: `{"agent_id":123,"userid_list":"u1,u2","msg":{"msgtype":"text","text":{"content":"hi"}}}`,
	},
	{
		name: "text with html characters unescaped",
		req:  SendRequest{AgentID: 123, UserIDs: []string{"u1"}, Msg: TextMessage(`<b>a & b</b> "q"`)},
		want: `{"agent_id":123,"userid_list":"u1","msg":{"msgtype":"text","text":{"content":"<b>a & b</b> \"q\""}}}`,
	},
	{
		name: "image to departments",
		req: SendRequest{AgentID: 123, DeptIDs: []string{"1", "2"},
			Msg: Message{MsgType: MsgTypeImage, Image: &Image{MediaID: "@lADOimg"}}},
		want: `{"agent_id":123,"dept_id_list":"1,2","msg":{"msgtype":"image","image":{"media_id":"@lADOimg"}}}`,
	},
	{
		name: "voice to all users",
		req: SendRequest{AgentID: 123, ToAllUser: true,
			Msg: Message{MsgType: MsgTypeVoice, Voice: &Voice{MediaID: "@lADOvoice", Duration: "10"}}},
		want: `{"agent_id":123,"to_all_user":true,"msg":{"msgtype":"voice","voice":{"media_id":"@lADOvoice","duration":"10"}}}`,
	},
	{
		name: "file to users and departments",
		req: SendRequest{AgentID: 123, UserIDs: []string{"u1"}, DeptIDs: []string{"7"},
			Msg: Message{MsgType: MsgTypeFile, File: &File{MediaID: "@lADOfile"}}},
		want: `{"agent_id":123,"userid_list":"u1","dept_id_list":"7","msg":{"msgtype":"file","file":{"media_id":"@lADOfile"}}}`,
	},
	{
		name: "link",
		req: SendRequest{AgentID: 123, UserIDs: []string{"u1"},
			Msg: LinkMessage("Title", "Text", "https://example.com/a?x=1&y=2", "@lADOpic")},
		want: `{"agent_id":123,"userid_list":"u1","msg":{"msgtype":"link","link":{"messageUrl":"https://example.com/a?x=1&y=2","picUrl":"@lADOpic","title":"Title","text":"Text"}}}`,
	},
	{
		name: "markdown",
		req:  SendRequest{AgentID: 123, UserIDs: []string{"u1"}, Msg: MarkdownMessage("Title", "# H\n> quote")},
		want: `{"agent_id":123,"userid_list":"u1","msg":{"msgtype":"markdown","markdown":{"title":"Title","text":"# H\n> quote"}}}`,
	},
	{
		name: "oa",
		req: SendRequest{AgentID: 123, UserIDs: []string{"u1"}, Msg: Message{MsgType: MsgTypeOA, OA: &OA{
			MessageURL:   "https://example.com/oa",
			PCMessageURL: "https://example.com/pc",
			Head:         OAHead{BgColor: "FFBBBBBB", Text: "Head"},
			StatusBar:    &OAStatusBar{StatusValue: "pending", StatusBg: "0xFFF65E5E"},
			Body: OABody{
				Title:     "Body",
				Form:      []OAFormItem{{Key: "Name:", Value: "Zhang"}, {Key: "Age:", Value: "32"}},
				Rich:      &OARich{Num: "15.6", Unit: "元"},
				Content:   "content",
				Image:     "@lADOimg",
				FileCount: "3",
				Author:    "Li",
			},
		}}},
		want: `{"agent_id":123,"userid_list":"u1","msg":{"msgtype":"oa","oa":{` +
			`"message_url":"https://example.com/oa","pc_message_url":"https://example.com/pc",` +
			`"head":{"bgcolor":"FFBBBBBB","text":"Head"},` +
			`"status_bar":{"status_value":"pending","status_bg":"0xFFF65E5E"},` +
			`"body":{"title":"Body","form":[{"key":"Name:","value":"Zhang"},{"key":"Age:","value":"32"}],` +
			`"rich":{"num":"15.6","unit":"元"},"content":"content","image":"@lADOimg","file_count":"3","author":"Li"}}}}`,
	},
	{
		name: "oa minimal",
		req: SendRequest{AgentID: 123, UserIDs: []string{"u1"}, Msg: Message{MsgType: MsgTypeOA, OA: &OA{
			MessageURL: "https://example.com/oa",
			Head:       OAHead{BgColor: "FFBBBBBB", Text: "Head"},
		}}},
		want: `{"agent_id":123,"userid_list":"u1","msg":{"msgtype":"oa","oa":{` +
			`"message_url":"https://example.com/oa","head":{"bgcolor":"FFBBBBBB","text":"Head"},"body":{}}}}`,
	},
	{
		name: "action_card single button",
		req: SendRequest{AgentID: 123, UserIDs: []string{"u1"}, Msg: Message{MsgType: MsgTypeActionCard, ActionCard: &ActionCard{
			Title: "Title", Markdown: "**md**", SingleTitle: "Open", SingleURL: "https://example.com/c",
		}}},
		want: `{"agent_id":123,"userid_list":"u1","msg":{"msgtype":"action_card","action_card":{` +
			`"title":"Title","markdown":"**md**","single_title":"Open","single_url":"https://example.com/c"}}}`,
	},
	{
		name: "action_card buttons",
		req: SendRequest{AgentID: 123, UserIDs: []string{"u1"}, Msg: Message{MsgType: MsgTypeActionCard, ActionCard: &ActionCard{
			Title: "Title", Markdown: "**md**", BtnOrientation: "1",
			BtnJSONList: []ActionCardBtn{{Title: "Yes", ActionURL: "https://example.com/y"}, {Title: "No", ActionURL: "https://example.com/n"}},
		}}},
		want: `{"agent_id":123,"userid_list":"u1","msg":{"msgtype":"action_card","action_card":{` +
			`"title":"Title","markdown":"**md**","btn_orientation":"1",` +
			`"btn_json_list":[{"title":"Yes","action_url":"https://example.com/y"},{"title":"No","action_url":"https://example.com/n"}]}}}`,
	},
}

func TestSendRequestWire_golden(t *testing.T) {
	seen := map[MsgType]bool{}
	for _, tt := range wireTests {
		t.Run(tt.name, func(t *testing.T) {
			seen[tt.req.Msg.MsgType] = true
			if err := tt.req.Validate(); err != nil {
				t.Fatalf("Validate: got %v, want nil", err)
			}
			b, err := marshalJSON(tt.req.Wire())
			if err != nil {
				t.Fatalf("marshalJSON: got %v, want nil", err)
			}
			if got := string(b); got != tt.want {
				t.Errorf("wire JSON:\n got %s\nwant %s", got, tt.want)
			}
			if !json.Valid(b) {
				t.Errorf("wire JSON is not valid JSON: %s", b)
			}
		})
	}
	for _, mt := range MsgTypes {
		if !seen[mt] {
			t.Errorf("no golden wire test for msgtype %q", mt)
		}
	}
}

func TestSendWire_roundTrip(t *testing.T) {
	for _, tt := range wireTests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := marshalJSON(tt.req.Wire())
			if err != nil {
				t.Fatalf("marshalJSON: got %v, want nil", err)
			}
			var w SendWire
			if err := json.Unmarshal(b, &w); err != nil {
				t.Fatalf("json.Unmarshal: got %v, want nil", err)
			}
			got := w.Request()
			if got.AgentID != tt.req.AgentID {
				t.Errorf("AgentID: got %d, want %d", got.AgentID, tt.req.AgentID)
			}
			if !slices.Equal(got.UserIDs, tt.req.UserIDs) {
				t.Errorf("UserIDs: got %q, want %q", got.UserIDs, tt.req.UserIDs)
			}
			if !slices.Equal(got.DeptIDs, tt.req.DeptIDs) {
				t.Errorf("DeptIDs: got %q, want %q", got.DeptIDs, tt.req.DeptIDs)
			}
			if got.ToAllUser != tt.req.ToAllUser {
				t.Errorf("ToAllUser: got %v, want %v", got.ToAllUser, tt.req.ToAllUser)
			}
			if got.Msg.MsgType != tt.req.Msg.MsgType {
				t.Errorf("Msg.MsgType: got %q, want %q", got.Msg.MsgType, tt.req.Msg.MsgType)
			}
			again, err := marshalJSON(got.Wire())
			if err != nil {
				t.Fatalf("marshalJSON again: got %v, want nil", err)
			}
			if string(again) != string(b) {
				t.Errorf("wire after round trip:\n got %s\nwant %s", again, b)
			}
		})
	}
}
