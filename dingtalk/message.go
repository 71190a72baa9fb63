package dingtalk

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
)

// MaxMessageBytes is the largest msg DingTalk accepts in a work
// notification, measured as its JSON encoding.
const MaxMessageBytes = 2048

// MsgType names one of the eight work-notification message types.
type MsgType string

// The message types of asyncsend_v2, spelled as DingTalk spells them.
const (
	MsgTypeText       MsgType = "text"
	MsgTypeImage      MsgType = "image"
	MsgTypeVoice      MsgType = "voice"
	MsgTypeFile       MsgType = "file"
	MsgTypeLink       MsgType = "link"
	MsgTypeOA         MsgType = "oa"
	MsgTypeMarkdown   MsgType = "markdown"
	MsgTypeActionCard MsgType = "action_card"
)

// MsgTypes lists every supported message type in DingTalk's order.
var MsgTypes = []MsgType{MsgTypeText, MsgTypeImage, MsgTypeVoice, MsgTypeFile,
	MsgTypeLink, MsgTypeOA, MsgTypeMarkdown, MsgTypeActionCard}

// Message is one work-notification message: MsgType says which one of the
// typed fields carries it. It marshals to DingTalk's exact JSON. Build one
// with [TextMessage], [MarkdownMessage] and friends, or fill the fields.
type Message struct {
	MsgType    MsgType     `json:"msgtype"`
	Text       *Text       `json:"text,omitempty"`
	Image      *Image      `json:"image,omitempty"`
	Voice      *Voice      `json:"voice,omitempty"`
	File       *File       `json:"file,omitempty"`
	Link       *Link       `json:"link,omitempty"`
	OA         *OA         `json:"oa,omitempty"`
	Markdown   *Markdown   `json:"markdown,omitempty"`
	ActionCard *ActionCard `json:"action_card,omitempty"`
}

// Text is a plain text message. DingTalk suggests at most 500 characters.
type Text struct {
	Content string `json:"content"`
}

// Image is an image uploaded beforehand; MediaID is what the upload returned.
type Image struct {
	MediaID string `json:"media_id"`
}

// Voice is a voice clip uploaded beforehand. Duration is in whole seconds,
// written as a string as DingTalk wants it, from "1" to "59".
type Voice struct {
	MediaID  string `json:"media_id"`
	Duration string `json:"duration"`
}

// File is a file uploaded beforehand.
type File struct {
	MediaID string `json:"media_id"`
}

// Link is a link card.
type Link struct {
	MessageURL string `json:"messageUrl"`
	PicURL     string `json:"picUrl"`
	Title      string `json:"title"`
	Text       string `json:"text"`
}

// Markdown is a markdown message; Title shows in the conversation list.
type Markdown struct {
	Title string `json:"title"`
	Text  string `json:"text"`
}

// OA is an OA message (a form-like card with a coloured head).
type OA struct {
	MessageURL   string       `json:"message_url"`
	PCMessageURL string       `json:"pc_message_url,omitempty"`
	Head         OAHead       `json:"head"`
	StatusBar    *OAStatusBar `json:"status_bar,omitempty"`
	Body         OABody       `json:"body"`
}

// OAHead is an OA message's head. BgColor is 8 hex digits, alpha first
// ("FFBBBBBB"), without "0x".
type OAHead struct {
	BgColor string `json:"bgcolor"`
	Text    string `json:"text"`
}

// OAStatusBar is the status shown at an OA message's top right; it can be
// changed later with status_bar/update.
type OAStatusBar struct {
	StatusValue string `json:"status_value,omitempty"`
	StatusBg    string `json:"status_bg,omitempty"`
}

// OABody is an OA message's body. Every field is optional.
type OABody struct {
	Title     string       `json:"title,omitempty"`
	Form      []OAFormItem `json:"form,omitempty"`
	Rich      *OARich      `json:"rich,omitempty"`
	Content   string       `json:"content,omitempty"`
	Image     string       `json:"image,omitempty"`
	FileCount string       `json:"file_count,omitempty"`
	Author    string       `json:"author,omitempty"`
}

// OAFormItem is one key/value line of an OA body.
type OAFormItem struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// OARich is an OA body's large number with its unit.
type OARich struct {
	Num  string `json:"num,omitempty"`
	Unit string `json:"unit,omitempty"`
}

// ActionCard is a card with either one button (SingleTitle and SingleURL) or
// several (BtnOrientation and BtnJSONList), never both.
type ActionCard struct {
	Title          string          `json:"title"`
	Markdown       string          `json:"markdown"`
	SingleTitle    string          `json:"single_title,omitempty"`
	SingleURL      string          `json:"single_url,omitempty"`
	BtnOrientation string          `json:"btn_orientation,omitempty"`
	BtnJSONList    []ActionCardBtn `json:"btn_json_list,omitempty"`
}

// ActionCardBtn is one button of a multi-button action card.
type ActionCardBtn struct {
	Title     string `json:"title"`
	ActionURL string `json:"action_url"`
}

// TextMessage returns a text message.
func TextMessage(content string) Message {
	return Message{MsgType: MsgTypeText, Text: &Text{Content: content}}
}

// MarkdownMessage returns a markdown message.
func MarkdownMessage(title, text string) Message {
	return Message{MsgType: MsgTypeMarkdown, Markdown: &Markdown{Title: title, Text: text}}
}

// LinkMessage returns a link card.
func LinkMessage(title, text, messageURL, picURL string) Message {
	return Message{MsgType: MsgTypeLink, Link: &Link{MessageURL: messageURL, PicURL: picURL, Title: title, Text: text}}
}

// EncodedSize returns the length in bytes of m's JSON as it is sent, the size
// DingTalk's 2048-byte limit applies to.
func (m *Message) EncodedSize() int {
	b, err := marshalJSON(m)
	if err != nil {
		return 0
	}
	return len(b)
}

// marshalJSON encodes v without escaping <, > and &, as DingTalk receives
// it: markdown and links are full of them, and escaping would waste the
// message's 2048 bytes.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

var hexColor = regexp.MustCompile(`^[0-9A-Fa-f]{8}$`)

// Validate reports the first thing DingTalk would refuse in m, as a
// *ValidationError whose Field is relative to the message ("text.content").
func (m *Message) Validate() error {
	if m.MsgType == "" {
		return invalid("msgtype", "required: one of %s", msgTypeList())
	}
	set := map[MsgType]bool{
		MsgTypeText: m.Text != nil, MsgTypeImage: m.Image != nil, MsgTypeVoice: m.Voice != nil,
		MsgTypeFile: m.File != nil, MsgTypeLink: m.Link != nil, MsgTypeOA: m.OA != nil,
		MsgTypeMarkdown: m.Markdown != nil, MsgTypeActionCard: m.ActionCard != nil,
	}
	present, known := set[m.MsgType]
	if !known {
		return invalid("msgtype", "unsupported message type %q: use one of %s", m.MsgType, msgTypeList())
	}
	if !present {
		return invalid(string(m.MsgType), "required when msgtype is %q", m.MsgType)
	}
	for _, t := range MsgTypes {
		if t != m.MsgType && set[t] {
			return invalid(string(t), "must be empty when msgtype is %q", m.MsgType)
		}
	}
	var err error
	switch m.MsgType {
	case MsgTypeText:
		err = required("content", m.Text.Content)
	case MsgTypeImage:
		err = required("media_id", m.Image.MediaID)
	case MsgTypeFile:
		err = required("media_id", m.File.MediaID)
	case MsgTypeVoice:
		err = m.Voice.validate()
	case MsgTypeLink:
		err = firstErr(required("messageUrl", m.Link.MessageURL), required("picUrl", m.Link.PicURL),
			required("title", m.Link.Title), required("text", m.Link.Text))
	case MsgTypeMarkdown:
		err = firstErr(required("title", m.Markdown.Title), required("text", m.Markdown.Text))
	case MsgTypeOA:
		err = m.OA.validate()
	case MsgTypeActionCard:
		err = m.ActionCard.validate()
	}
	if err != nil {
		return prefixed(string(m.MsgType), err)
	}
	if n := m.EncodedSize(); n > MaxMessageBytes {
		return invalid(string(m.MsgType), "message is %d bytes of JSON, DingTalk takes at most %d", n, MaxMessageBytes)
	}
	return nil
}

func (v *Voice) validate() error {
	if err := required("media_id", v.MediaID); err != nil {
		return err
	}
	if err := required("duration", v.Duration); err != nil {
		return err
	}
	d, err := strconv.Atoi(v.Duration)
	if err != nil || d < 1 || d > 59 {
		return invalid("duration", "must be whole seconds from 1 to 59, got %q", v.Duration)
	}
	return nil
}

func (o *OA) validate() error {
	if err := required("message_url", o.MessageURL); err != nil {
		return err
	}
	if !hexColor.MatchString(o.Head.BgColor) {
		return invalid("head.bgcolor", "must be 8 hex digits, alpha first, like FFBBBBBB; got %q", o.Head.BgColor)
	}
	if err := required("head.text", o.Head.Text); err != nil {
		return err
	}
	for i, f := range o.Body.Form {
		if strings.TrimSpace(f.Key) == "" {
			return invalid("body.form["+strconv.Itoa(i)+"].key", "required")
		}
	}
	return nil
}

func (a *ActionCard) validate() error {
	if err := firstErr(required("title", a.Title), required("markdown", a.Markdown)); err != nil {
		return err
	}
	single := a.SingleTitle != "" || a.SingleURL != ""
	multi := a.BtnOrientation != "" || len(a.BtnJSONList) > 0
	switch {
	case single && multi:
		return invalid("single_title", "give either single_title and single_url, or btn_orientation and btn_json_list, not both")
	case !single && !multi:
		return invalid("single_title", "give either single_title and single_url, or btn_orientation and btn_json_list")
	case single:
		return firstErr(required("single_title", a.SingleTitle), required("single_url", a.SingleURL))
	}
	if a.BtnOrientation != "0" && a.BtnOrientation != "1" {
		return invalid("btn_orientation", `must be "0" (vertical) or "1" (horizontal), got %q`, a.BtnOrientation)
	}
	if len(a.BtnJSONList) == 0 {
		return invalid("btn_json_list", "required: at least one button")
	}
	for i, b := range a.BtnJSONList {
		p := "btn_json_list[" + strconv.Itoa(i) + "]."
		if err := firstErr(required(p+"title", b.Title), required(p+"action_url", b.ActionURL)); err != nil {
			return err
		}
	}
	return nil
}

func required(field, value string) error {
	if strings.TrimSpace(value) == "" {
		return invalid(field, "required")
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func msgTypeList() string {
	s := make([]string, len(MsgTypes))
	for i, t := range MsgTypes {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}
