package dingtalk

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// validMessages holds one valid message of each of the eight types.
func validMessages() map[MsgType]Message {
	return map[MsgType]Message{
		MsgTypeText:  TextMessage("hi"),
		MsgTypeImage: {MsgType: MsgTypeImage, Image: &Image{MediaID: "@lADOimg"}},
		MsgTypeVoice: {MsgType: MsgTypeVoice, Voice: &Voice{MediaID: "@lADOvoice", Duration: "10"}},
		MsgTypeFile:  {MsgType: MsgTypeFile, File: &File{MediaID: "@lADOfile"}},
		MsgTypeLink:  LinkMessage("title", "text", "https://example.com/a", "@lADOpic"),
		MsgTypeOA: {MsgType: MsgTypeOA, OA: &OA{
			MessageURL: "https://example.com/oa",
			Head:       OAHead{BgColor: "FFBBBBBB", Text: "head"},
			Body:       OABody{Title: "body", Form: []OAFormItem{{Key: "k", Value: "v"}}},
		}},
		MsgTypeMarkdown: MarkdownMessage("title", "# md"),
		MsgTypeActionCard: {MsgType: MsgTypeActionCard, ActionCard: &ActionCard{
			Title: "t", Markdown: "md", SingleTitle: "open", SingleURL: "https://example.com/c",
		}},
	}
}

// validRequest returns a valid request carrying msg.
func validRequest(msg Message) SendRequest {
	return SendRequest{AgentID: 123, UserIDs: []string{"u1", "u2"}, Msg: msg}
}

// fieldOf returns the Field of err's *ValidationError, "" for nil, and
// fails the test when err is another kind of error.
func fieldOf(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	return ve.Field
}

func ids(prefix string, n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = prefix + strconv.Itoa(i)
	}
	return s
}

func TestMessageValidate_validTypes(t *testing.T) {
	msgs := validMessages()
	for _, mt := range MsgTypes {
		t.Run(string(mt), func(t *testing.T) {
			m, ok := msgs[mt]
			if !ok {
				t.Fatalf("no valid message of type %q in the test table", mt)
			}
			if err := m.Validate(); err != nil {
				t.Errorf("Message.Validate: got %v, want nil", err)
			}
			r := validRequest(m)
			if err := r.Validate(); err != nil {
				t.Errorf("SendRequest.Validate: got %v, want nil", err)
			}
		})
	}
	if got, want := len(msgs), len(MsgTypes); got != want {
		t.Errorf("valid messages: got %d, want %d", got, want)
	}
}

// TestMessageValidate_relativeField checks that Message.Validate names fields
// relative to the message, and SendRequest.Validate puts them under "msg".
func TestMessageValidate_relativeField(t *testing.T) {
	tests := []struct {
		name      string
		msg       Message
		wantField string
	}{
		{name: "no msgtype", msg: Message{}, wantField: "msgtype"},
		{name: "unknown msgtype", msg: Message{MsgType: "video"}, wantField: "msgtype"},
		{name: "text content", msg: TextMessage(""), wantField: "text.content"},
		{name: "oa bgcolor", msg: Message{MsgType: MsgTypeOA, OA: &OA{MessageURL: "u", Head: OAHead{Text: "h"}}}, wantField: "oa.head.bgcolor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fieldOf(t, tt.msg.Validate()); got != tt.wantField {
				t.Errorf("Message.Validate field: got %q, want %q", got, tt.wantField)
			}
			r := validRequest(tt.msg)
			if got, want := fieldOf(t, r.Validate()), "msg."+tt.wantField; got != want {
				t.Errorf("SendRequest.Validate field: got %q, want %q", got, want)
			}
		})
	}
}

func TestSendRequestValidate_message(t *testing.T) {
	// with returns the valid message of type mt changed by f.
	with := func(mt MsgType, f func(m *Message)) Message {
		m := validMessages()[mt]
		f(&m)
		return m
	}
	oa := func(f func(o *OA)) Message {
		return with(MsgTypeOA, func(m *Message) { f(m.OA) })
	}
	card := func(f func(a *ActionCard)) Message {
		return with(MsgTypeActionCard, func(m *Message) { f(m.ActionCard) })
	}
	multiCard := func(f func(a *ActionCard)) Message {
		return card(func(a *ActionCard) {
			a.SingleTitle, a.SingleURL = "", ""
			a.BtnOrientation = "1"
			a.BtnJSONList = []ActionCardBtn{
				{Title: "yes", ActionURL: "https://example.com/yes"},
				{Title: "no", ActionURL: "https://example.com/no"},
			}
			f(a)
		})
	}
	voice := func(d string) Message {
		return with(MsgTypeVoice, func(m *Message) { m.Voice.Duration = d })
	}
	tests := []struct {
		name      string
		msg       Message
		wantField string // "" means valid
	}{
		// msgtype and payload
		{name: "no msgtype", msg: Message{Text: &Text{Content: "hi"}}, wantField: "msg.msgtype"},
		{name: "unknown msgtype", msg: Message{MsgType: "video", Text: &Text{Content: "hi"}}, wantField: "msg.msgtype"},
		{name: "msgtype text without payload", msg: Message{MsgType: MsgTypeText}, wantField: "msg.text"},
		{name: "msgtype oa without payload", msg: Message{MsgType: MsgTypeOA, Text: &Text{Content: "hi"}}, wantField: "msg.oa"},
		{name: "msgtype action_card without payload", msg: Message{MsgType: MsgTypeActionCard}, wantField: "msg.action_card"},
		{name: "second payload", msg: with(MsgTypeText, func(m *Message) { m.Image = &Image{MediaID: "x"} }), wantField: "msg.image"},
		{name: "second payload markdown", msg: with(MsgTypeLink, func(m *Message) { m.Markdown = &Markdown{Title: "t", Text: "x"} }), wantField: "msg.markdown"},

		// text
		{name: "text content empty", msg: TextMessage(""), wantField: "msg.text.content"},
		{name: "text content blank", msg: TextMessage("  \n"), wantField: "msg.text.content"},

		// image, file
		{name: "image media_id", msg: Message{MsgType: MsgTypeImage, Image: &Image{}}, wantField: "msg.image.media_id"},
		{name: "file media_id", msg: Message{MsgType: MsgTypeFile, File: &File{}}, wantField: "msg.file.media_id"},

		// voice
		{name: "voice media_id", msg: with(MsgTypeVoice, func(m *Message) { m.Voice.MediaID = "" }), wantField: "msg.voice.media_id"},
		{name: "voice duration missing", msg: voice(""), wantField: "msg.voice.duration"},
		{name: "voice duration 0", msg: voice("0"), wantField: "msg.voice.duration"},
		{name: "voice duration 60", msg: voice("60"), wantField: "msg.voice.duration"},
		{name: "voice duration abc", msg: voice("abc"), wantField: "msg.voice.duration"},
		{name: "voice duration -5", msg: voice("-5"), wantField: "msg.voice.duration"},
		{name: "voice duration 59 ok", msg: voice("59")},
		{name: "voice duration 1 ok", msg: voice("1")},

		// link
		{name: "link messageUrl", msg: LinkMessage("t", "x", "", "p"), wantField: "msg.link.messageUrl"},
		{name: "link picUrl", msg: LinkMessage("t", "x", "u", ""), wantField: "msg.link.picUrl"},
		{name: "link title", msg: LinkMessage("", "x", "u", "p"), wantField: "msg.link.title"},
		{name: "link text", msg: LinkMessage("t", "", "u", "p"), wantField: "msg.link.text"},

		// markdown
		{name: "markdown title", msg: MarkdownMessage("", "x"), wantField: "msg.markdown.title"},
		{name: "markdown text", msg: MarkdownMessage("t", ""), wantField: "msg.markdown.text"},

		// oa
		{name: "oa message_url", msg: oa(func(o *OA) { o.MessageURL = "" }), wantField: "msg.oa.message_url"},
		{name: "oa bgcolor missing", msg: oa(func(o *OA) { o.Head.BgColor = "" }), wantField: "msg.oa.head.bgcolor"},
		{name: "oa bgcolor 0x", msg: oa(func(o *OA) { o.Head.BgColor = "0xFFBBBB" }), wantField: "msg.oa.head.bgcolor"},
		{name: "oa bgcolor 6 digits", msg: oa(func(o *OA) { o.Head.BgColor = "BBBBBB" }), wantField: "msg.oa.head.bgcolor"},
		{name: "oa bgcolor 9 digits", msg: oa(func(o *OA) { o.Head.BgColor = "FFBBBBBB0" }), wantField: "msg.oa.head.bgcolor"},
		{name: "oa bgcolor FFBBBBBB ok", msg: oa(func(o *OA) { o.Head.BgColor = "FFBBBBBB" })},
		{name: "oa bgcolor lower case ok", msg: oa(func(o *OA) { o.Head.BgColor = "ffbbbbbb" })},
		{name: "oa head text", msg: oa(func(o *OA) { o.Head.Text = "" }), wantField: "msg.oa.head.text"},
		{name: "oa form key", msg: oa(func(o *OA) {
			o.Body.Form = []OAFormItem{{Key: "a", Value: "1"}, {Key: " ", Value: "2"}}
		}), wantField: "msg.oa.body.form[1].key"},
		{name: "oa empty body ok", msg: oa(func(o *OA) { o.Body = OABody{} })},
		{name: "oa full ok", msg: oa(func(o *OA) {
			o.PCMessageURL = "https://example.com/pc"
			o.StatusBar = &OAStatusBar{StatusValue: "pending", StatusBg: "0xFFF65E5E"}
			o.Body.Rich = &OARich{Num: "15.6", Unit: "元"}
		})},

		// action_card
		{name: "action_card title", msg: card(func(a *ActionCard) { a.Title = "" }), wantField: "msg.action_card.title"},
		{name: "action_card markdown", msg: card(func(a *ActionCard) { a.Markdown = "" }), wantField: "msg.action_card.markdown"},
		{name: "action_card single ok", msg: card(func(a *ActionCard) {})},
		{name: "action_card single_url missing", msg: card(func(a *ActionCard) { a.SingleURL = "" }), wantField: "msg.action_card.single_url"},
		{name: "action_card single_title missing", msg: card(func(a *ActionCard) { a.SingleTitle = "" }), wantField: "msg.action_card.single_title"},
		{name: "action_card multi ok", msg: multiCard(func(a *ActionCard) {})},
		{name: "action_card multi vertical ok", msg: multiCard(func(a *ActionCard) { a.BtnOrientation = "0" })},
		{name: "action_card both forms", msg: multiCard(func(a *ActionCard) {
			a.SingleTitle, a.SingleURL = "open", "https://example.com/c"
		}), wantField: "msg.action_card.single_title"},
		{name: "action_card neither form", msg: card(func(a *ActionCard) { a.SingleTitle, a.SingleURL = "", "" }),
			wantField: "msg.action_card.single_title"},
		{name: "action_card btn_orientation 2", msg: multiCard(func(a *ActionCard) { a.BtnOrientation = "2" }),
			wantField: "msg.action_card.btn_orientation"},
		{name: "action_card btn_orientation missing", msg: multiCard(func(a *ActionCard) { a.BtnOrientation = "" }),
			wantField: "msg.action_card.btn_orientation"},
		{name: "action_card no buttons", msg: multiCard(func(a *ActionCard) { a.BtnJSONList = nil }),
			wantField: "msg.action_card.btn_json_list"},
		{name: "action_card button title", msg: multiCard(func(a *ActionCard) { a.BtnJSONList[0].Title = "" }),
			wantField: "msg.action_card.btn_json_list[0].title"},
		{name: "action_card button action_url", msg: multiCard(func(a *ActionCard) { a.BtnJSONList[1].ActionURL = "" }),
			wantField: "msg.action_card.btn_json_list[1].action_url"},

		// size
		{name: "3 KB text", msg: TextMessage(strings.Repeat("a", 3<<10)), wantField: "msg.text"},
		{name: "3 KB markdown", msg: MarkdownMessage("t", strings.Repeat("中", 1024)), wantField: "msg.markdown"},
		{name: "2048 bytes exactly ok", msg: TextMessage(strings.Repeat("a", MaxMessageBytes-len(`{"msgtype":"text","text":{"content":""}}`)))},
		{name: "2049 bytes", msg: TextMessage(strings.Repeat("a", MaxMessageBytes+1-len(`{"msgtype":"text","text":{"content":""}}`))), wantField: "msg.text"},
		{name: "many < and & under 2048 unescaped ok", msg: TextMessage(strings.Repeat("<", 1000) + strings.Repeat("&", 800) + strings.Repeat(">", 100))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validRequest(tt.msg)
			err := r.Validate()
			if got := fieldOf(t, err); got != tt.wantField {
				t.Errorf("field: got %q (%v), want %q", got, err, tt.wantField)
			}
		})
	}
}

func TestSendRequestValidate_recipients(t *testing.T) {
	tests := []struct {
		name      string
		req       SendRequest
		wantField string // "" means valid
	}{
		{name: "users ok", req: SendRequest{AgentID: 1, UserIDs: []string{"u1"}}},
		{name: "depts ok", req: SendRequest{AgentID: 1, DeptIDs: []string{"1", "2"}}},
		{name: "to_all_user alone ok", req: SendRequest{AgentID: 1, ToAllUser: true}},
		{name: "100 users ok", req: SendRequest{AgentID: 1, UserIDs: ids("u", 100)}},
		{name: "20 depts ok", req: SendRequest{AgentID: 1, DeptIDs: ids("", 20)}},
		{name: "no recipients", req: SendRequest{AgentID: 1}, wantField: "userid_list"},
		{name: "empty slices", req: SendRequest{AgentID: 1, UserIDs: []string{}, DeptIDs: []string{}}, wantField: "userid_list"},
		{name: "101 users", req: SendRequest{AgentID: 1, UserIDs: ids("u", 101)}, wantField: "userid_list"},
		{name: "21 depts", req: SendRequest{AgentID: 1, DeptIDs: ids("", 21)}, wantField: "dept_id_list"},
		{name: "empty user id", req: SendRequest{AgentID: 1, UserIDs: []string{"u0", ""}}, wantField: "userid_list[1]"},
		{name: "blank user id", req: SendRequest{AgentID: 1, UserIDs: []string{"u0", " "}}, wantField: "userid_list[1]"},
		{name: "user id with comma", req: SendRequest{AgentID: 1, UserIDs: []string{"u0,u1"}}, wantField: "userid_list[0]"},
		{name: "user id with space", req: SendRequest{AgentID: 1, UserIDs: []string{"u0", "u 1"}}, wantField: "userid_list[1]"},
		{name: "dept id with comma", req: SendRequest{AgentID: 1, DeptIDs: []string{"1", "2", "3,4"}}, wantField: "dept_id_list[2]"},
		{name: "empty dept id", req: SendRequest{AgentID: 1, DeptIDs: []string{""}}, wantField: "dept_id_list[0]"},
		{name: "user id too long", req: SendRequest{AgentID: 1, UserIDs: []string{strings.Repeat("u", 65)}}, wantField: "userid_list[0]"},
		{name: "agent_id 0", req: SendRequest{UserIDs: []string{"u1"}}, wantField: "agent_id"},
		{name: "agent_id negative", req: SendRequest{AgentID: -1, UserIDs: []string{"u1"}}, wantField: "agent_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Msg = TextMessage("hi")
			err := tt.req.Validate()
			if got := fieldOf(t, err); got != tt.wantField {
				t.Errorf("field: got %q (%v), want %q", got, err, tt.wantField)
			}
		})
	}
}

func TestMessageEncodedSize(t *testing.T) {
	const frame = `{"msgtype":"text","text":{"content":""}}`
	tests := []struct {
		name    string
		content string
		want    int
	}{
		{name: "plain", content: "hi", want: len(frame) + 2},
		{name: "html characters unescaped", content: strings.Repeat("<&>", 100), want: len(frame) + 300},
		{name: "chinese as utf-8", content: "钉钉", want: len(frame) + len("钉钉")},
		{name: "quote escaped", content: `"`, want: len(frame) + 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := TextMessage(tt.content)
			if got := m.EncodedSize(); got != tt.want {
				t.Errorf("EncodedSize: got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestValidationErrorError(t *testing.T) {
	r := validRequest(TextMessage(""))
	err := r.Validate()
	if got, want := err.Error(), "msg.text.content: required"; got != want {
		t.Errorf("Error(): got %q, want %q", got, want)
	}
	if got, want := Classify(err), ClassPermanent; got != want {
		t.Errorf("Classify: got %v, want %v", got, want)
	}
}
