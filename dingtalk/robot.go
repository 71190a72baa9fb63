package dingtalk

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// PathRobotSend is the custom group robot's webhook (自定义机器人).
const PathRobotSend = "/robot/send"

// Limits of a custom group robot.
const (
	// MaxRobotBodyBytes is the largest message body a custom robot takes.
	MaxRobotBodyBytes = 20000
	// RobotMessagesPerMinute is how many messages a custom robot takes in
	// a minute; the next one blocks it for RobotBlock.
	RobotMessagesPerMinute = 20
	// RobotBlock is how long a custom robot that sent too fast is blocked.
	RobotBlock = 10 * time.Minute
)

// The message types of a custom robot, spelled as DingTalk spells them
// (feedCard and actionCard in camel case, unlike work notifications).
const (
	RobotText       = "text"
	RobotLink       = "link"
	RobotMarkdown   = "markdown"
	RobotActionCard = "actionCard"
	RobotFeedCard   = "feedCard"
)

// Robot is a custom group robot: the access_token of its webhook and, when
// its security setting is signing (加签), its secret. Both are secrets:
// neither appears in an error.
type Robot struct {
	Token  string
	Secret string
}

// String implements fmt.Stringer without the token or the secret.
func (r Robot) String() string { return "Robot{redacted}" }

// GoString implements fmt.GoStringer without the token or the secret.
func (r Robot) GoString() string { return r.String() }

// RobotMessage is one message to a custom group robot: MsgType says which
// of the typed fields carries it. It marshals to DingTalk's exact JSON.
type RobotMessage struct {
	MsgType    string           `json:"msgtype"`
	Text       *RobotTextBody   `json:"text,omitempty"`
	Link       *RobotLinkBody   `json:"link,omitempty"`
	Markdown   *Markdown        `json:"markdown,omitempty"`
	ActionCard *RobotActionBody `json:"actionCard,omitempty"`
	FeedCard   *RobotFeedBody   `json:"feedCard,omitempty"`
	// At mentions members of the group (text and markdown only; markdown
	// must also name them in its text as @mobile or @userId).
	At *RobotAt `json:"at,omitempty"`
	// MsgUUID makes a retried send the same message for DingTalk, not a
	// second one.
	MsgUUID string `json:"msgUuid,omitempty"`
}

// RobotTextBody is a plain text robot message.
type RobotTextBody struct {
	Content string `json:"content"`
}

// RobotLinkBody is a link card.
type RobotLinkBody struct {
	Title      string `json:"title"`
	Text       string `json:"text"`
	MessageURL string `json:"messageUrl"`
	PicURL     string `json:"picUrl,omitempty"`
}

// RobotActionBody is an action card: one button (SingleTitle and
// SingleURL) or several (Buttons); BtnOrientation "0" stacks them, "1"
// puts them side by side.
type RobotActionBody struct {
	Title          string        `json:"title"`
	Text           string        `json:"text"`
	BtnOrientation string        `json:"btnOrientation,omitempty"`
	SingleTitle    string        `json:"singleTitle,omitempty"`
	SingleURL      string        `json:"singleURL,omitempty"`
	Buttons        []RobotButton `json:"btns,omitempty"`
}

// RobotButton is one button of an action card.
type RobotButton struct {
	Title     string `json:"title"`
	ActionURL string `json:"actionURL"`
}

// RobotFeedBody is a feed card: a list of links.
type RobotFeedBody struct {
	Links []RobotFeedLink `json:"links"`
}

// RobotFeedLink is one link of a feed card.
type RobotFeedLink struct {
	Title      string `json:"title"`
	MessageURL string `json:"messageURL"`
	PicURL     string `json:"picURL"`
}

// RobotAt names who a robot message mentions.
type RobotAt struct {
	AtMobiles []string `json:"atMobiles,omitempty"`
	AtUserIDs []string `json:"atUserIds,omitempty"`
	IsAtAll   bool     `json:"isAtAll,omitempty"`
}

// RobotTextMessage returns a text robot message.
func RobotTextMessage(content string) *RobotMessage {
	return &RobotMessage{MsgType: RobotText, Text: &RobotTextBody{Content: content}}
}

// RobotMarkdownMessage returns a markdown robot message; title shows in
// the conversation list.
func RobotMarkdownMessage(title, text string) *RobotMessage {
	return &RobotMessage{MsgType: RobotMarkdown, Markdown: &Markdown{Title: title, Text: text}}
}

// Validate reports the first thing DingTalk would refuse in m, naming the
// field as DingTalk does: "text.content", "actionCard.btns[1].actionURL"…
func (m *RobotMessage) Validate() error {
	given := 0
	for _, set := range []bool{m.Text != nil, m.Link != nil, m.Markdown != nil, m.ActionCard != nil, m.FeedCard != nil} {
		if set {
			given++
		}
	}
	if given > 1 {
		return invalid("msgtype", "exactly one of text, link, markdown, actionCard and feedCard, got %d", given)
	}
	switch m.MsgType {
	case RobotText:
		if m.Text == nil || strings.TrimSpace(m.Text.Content) == "" {
			return invalid("text.content", "required")
		}
	case RobotLink:
		switch {
		case m.Link == nil || strings.TrimSpace(m.Link.Title) == "":
			return invalid("link.title", "required")
		case strings.TrimSpace(m.Link.Text) == "":
			return invalid("link.text", "required")
		}
		if err := validURL("link.messageUrl", m.Link.MessageURL, true); err != nil {
			return err
		}
		if err := validURL("link.picUrl", m.Link.PicURL, false); err != nil {
			return err
		}
	case RobotMarkdown:
		switch {
		case m.Markdown == nil || strings.TrimSpace(m.Markdown.Title) == "":
			return invalid("markdown.title", "required")
		case strings.TrimSpace(m.Markdown.Text) == "":
			return invalid("markdown.text", "required")
		}
	case RobotActionCard:
		if err := m.ActionCard.validate(); err != nil {
			return err
		}
	case RobotFeedCard:
		if m.FeedCard == nil || len(m.FeedCard.Links) == 0 {
			return invalid("feedCard.links", "at least one link")
		}
		for i, l := range m.FeedCard.Links {
			f := "feedCard.links[" + strconv.Itoa(i) + "]"
			if strings.TrimSpace(l.Title) == "" {
				return invalid(f+".title", "required")
			}
			if err := validURL(f+".messageURL", l.MessageURL, true); err != nil {
				return err
			}
			if err := validURL(f+".picURL", l.PicURL, true); err != nil {
				return err
			}
		}
	case "":
		return invalid("msgtype", "required: one of text, link, markdown, actionCard, feedCard")
	default:
		return invalid("msgtype", "unknown %q: want text, link, markdown, actionCard or feedCard", m.MsgType)
	}
	if m.At != nil && m.MsgType != RobotText && m.MsgType != RobotMarkdown {
		return invalid("at", "mentions work in text and markdown messages only, not %s", m.MsgType)
	}
	b, err := marshalJSON(m)
	if err != nil {
		return invalid("msgtype", "cannot be encoded: %v", err)
	}
	if len(b) > MaxRobotBodyBytes {
		return invalid("msgtype", "the message is %d bytes, at most %d", len(b), MaxRobotBodyBytes)
	}
	return nil
}

func (a *RobotActionBody) validate() error {
	switch {
	case a == nil || strings.TrimSpace(a.Title) == "":
		return invalid("actionCard.title", "required")
	case strings.TrimSpace(a.Text) == "":
		return invalid("actionCard.text", "required")
	case a.BtnOrientation != "" && a.BtnOrientation != "0" && a.BtnOrientation != "1":
		return invalid("actionCard.btnOrientation", `"0" (stacked) or "1" (side by side), got %q`, a.BtnOrientation)
	case a.SingleTitle != "" && len(a.Buttons) > 0:
		return invalid("actionCard.btns", "either singleTitle and singleURL or btns, not both")
	case a.SingleTitle != "":
		return validURL("actionCard.singleURL", a.SingleURL, true)
	case len(a.Buttons) == 0:
		return invalid("actionCard.singleTitle", "required, or btns")
	}
	for i, b := range a.Buttons {
		f := "actionCard.btns[" + strconv.Itoa(i) + "]"
		if strings.TrimSpace(b.Title) == "" {
			return invalid(f+".title", "required")
		}
		if err := validURL(f+".actionURL", b.ActionURL, true); err != nil {
			return err
		}
	}
	return nil
}

// validURL checks that s, if given (or required), is an absolute URL: one
// with a scheme, such as https:// or dingtalk://.
func validURL(field, s string, required bool) error {
	if s == "" {
		if required {
			return invalid(field, "required")
		}
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return invalid(field, "want an absolute URL, got %q", s)
	}
	return nil
}

// RobotSign is a signing robot's sign for timestamp (Unix milliseconds):
// base64(HMAC-SHA256(secret, timestamp + "\n" + secret)). It goes in the
// webhook's query, URL-encoded, beside the timestamp; DingTalk refuses it
// an hour on.
func RobotSign(secret string, timestamp int64) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(timestamp, 10) + "\n" + secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// SendRobot sends m through custom group robot r, signed when r has a
// secret. A robot that sent more than RobotMessagesPerMinute in a minute
// is blocked for RobotBlock: its answer is an *Error that is Throttled
// for that long.
func (c *Client) SendRobot(ctx context.Context, r Robot, m *RobotMessage) error {
	if r.Token == "" {
		return invalid("access_token", "required: the robot webhook's access_token")
	}
	if err := m.Validate(); err != nil {
		return err
	}
	q := url.Values{"access_token": {r.Token}}
	if r.Secret != "" {
		ts := c.now().UnixMilli()
		q.Set("timestamp", strconv.FormatInt(ts, 10))
		q.Set("sign", RobotSign(r.Secret, ts))
	}
	return c.call(ctx, http.MethodPost, PathRobotSend, q, m, nil)
}
