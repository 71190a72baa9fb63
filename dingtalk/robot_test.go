package dingtalk

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRobotMessageValidate(t *testing.T) {
	long := strings.Repeat("x", MaxRobotBodyBytes)
	tests := []struct {
		name      string
		msg       *RobotMessage
		wantField string // "" for valid
	}{
		{name: "text", msg: RobotTextMessage("disk full on db-1")},
		{name: "text with mentions", msg: &RobotMessage{MsgType: RobotText, Text: &RobotTextBody{Content: "@u1 look"},
			At: &RobotAt{AtUserIDs: []string{"u1"}, AtMobiles: []string{"13800000000"}}}},
		{name: "markdown", msg: RobotMarkdownMessage("alert", "## disk full")},
		{name: "link", msg: &RobotMessage{MsgType: RobotLink, Link: &RobotLinkBody{Title: "t", Text: "x", MessageURL: "https://example.com"}}},
		{name: "action card, one button", msg: &RobotMessage{MsgType: RobotActionCard, ActionCard: &RobotActionBody{
			Title: "t", Text: "x", SingleTitle: "open", SingleURL: "dingtalk://dingtalkclient/page/link?url=x"}}},
		{name: "action card, buttons", msg: &RobotMessage{MsgType: RobotActionCard, ActionCard: &RobotActionBody{
			Title: "t", Text: "x", BtnOrientation: "1", Buttons: []RobotButton{{"a", "https://a"}, {"b", "https://b"}}}}},
		{name: "feed card", msg: &RobotMessage{MsgType: RobotFeedCard, FeedCard: &RobotFeedBody{Links: []RobotFeedLink{
			{Title: "t", MessageURL: "https://m", PicURL: "https://p"}}}}},

		{name: "no msgtype", msg: &RobotMessage{Text: &RobotTextBody{Content: "x"}}, wantField: "msgtype"},
		{name: "unknown msgtype", msg: &RobotMessage{MsgType: "action_card"}, wantField: "msgtype"},
		{name: "empty text", msg: RobotTextMessage("  "), wantField: "text.content"},
		{name: "text without its body", msg: &RobotMessage{MsgType: RobotText}, wantField: "text.content"},
		{name: "two bodies", msg: &RobotMessage{MsgType: RobotText, Text: &RobotTextBody{Content: "x"},
			Markdown: &Markdown{Title: "t", Text: "x"}}, wantField: "msgtype"},
		{name: "link without a URL", msg: &RobotMessage{MsgType: RobotLink, Link: &RobotLinkBody{Title: "t", Text: "x"}},
			wantField: "link.messageUrl"},
		{name: "link with a relative picture", msg: &RobotMessage{MsgType: RobotLink, Link: &RobotLinkBody{Title: "t", Text: "x",
			MessageURL: "https://m", PicURL: "/p.png"}}, wantField: "link.picUrl"},
		{name: "markdown without a title", msg: RobotMarkdownMessage("", "x"), wantField: "markdown.title"},
		{name: "action card without a button", msg: &RobotMessage{MsgType: RobotActionCard, ActionCard: &RobotActionBody{
			Title: "t", Text: "x"}}, wantField: "actionCard.singleTitle"},
		{name: "action card with both kinds of buttons", msg: &RobotMessage{MsgType: RobotActionCard, ActionCard: &RobotActionBody{
			Title: "t", Text: "x", SingleTitle: "a", SingleURL: "https://a", Buttons: []RobotButton{{"b", "https://b"}}}},
			wantField: "actionCard.btns"},
		{name: "action card button without a URL", msg: &RobotMessage{MsgType: RobotActionCard, ActionCard: &RobotActionBody{
			Title: "t", Text: "x", Buttons: []RobotButton{{"a", "https://a"}, {"b", ""}}}}, wantField: "actionCard.btns[1].actionURL"},
		{name: "action card orientation", msg: &RobotMessage{MsgType: RobotActionCard, ActionCard: &RobotActionBody{
			Title: "t", Text: "x", BtnOrientation: "2", SingleTitle: "a", SingleURL: "https://a"}}, wantField: "actionCard.btnOrientation"},
		{name: "empty feed card", msg: &RobotMessage{MsgType: RobotFeedCard, FeedCard: &RobotFeedBody{}}, wantField: "feedCard.links"},
		{name: "feed link without a picture", msg: &RobotMessage{MsgType: RobotFeedCard, FeedCard: &RobotFeedBody{Links: []RobotFeedLink{
			{Title: "t", MessageURL: "https://m", PicURL: "https://p"}, {Title: "u", MessageURL: "https://m"}}}},
			wantField: "feedCard.links[1].picURL"},
		{name: "mentions in a link", msg: &RobotMessage{MsgType: RobotLink, Link: &RobotLinkBody{Title: "t", Text: "x",
			MessageURL: "https://m"}, At: &RobotAt{IsAtAll: true}}, wantField: "at"},
		{name: "too long", msg: RobotTextMessage(long), wantField: "msgtype"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.msg.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.wantField {
				t.Fatalf("Validate: %v, want a ValidationError on %q", err, tt.wantField)
			}
		})
	}
}

// TestSendRobot: a signing robot's send carries its token, the client's
// time and the sign DingTalk computes, and DingTalk's exact JSON.
func TestSendRobot(t *testing.T) {
	now := time.UnixMilli(1700000000123)
	client, mux := setup(t, WithClock(func() time.Time { return now }))
	const token, secret = "robot-token-0123", "SECrobot-secret-abc"
	mux.HandleFunc(PathRobotSend, func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, http.MethodPost)
		q := r.URL.Query()
		if q.Get("access_token") != token || q.Get("timestamp") != "1700000000123" {
			t.Errorf("query %q", r.URL.RawQuery)
		}
		// DingTalk's check, written out: HMAC-SHA256 keyed by the secret
		// over "timestamp\nsecret", base64, URL-encoded in the query.
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(q.Get("timestamp") + "\n" + secret))
		if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); q.Get("sign") != want {
			t.Errorf("sign %q, want %q", q.Get("sign"), want)
		}
		if !strings.Contains(r.URL.RawQuery, "sign="+strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(q.Get("sign"))) {
			t.Errorf("the sign is not URL-encoded in %q", r.URL.RawQuery)
		}
		b, _ := io.ReadAll(r.Body)
		want := `{"msgtype":"text","text":{"content":"disk full"},"at":{"atUserIds":["u1"]},"msgUuid":"alert-7"}`
		if string(b) != want {
			t.Errorf("body:\n got %s\nwant %s", b, want)
		}
		io.WriteString(w, `{"errcode":0,"errmsg":"ok"}`)
	})
	m := RobotTextMessage("disk full")
	m.At, m.MsgUUID = &RobotAt{AtUserIDs: []string{"u1"}}, "alert-7"
	if err := client.SendRobot(context.Background(), Robot{Token: token, Secret: secret}, m); err != nil {
		t.Fatalf("SendRobot: %v", err)
	}
}

// TestSendRobotUnsigned: a robot without a secret (keyword or IP security)
// sends no timestamp and no sign.
func TestSendRobotUnsigned(t *testing.T) {
	client, mux := setup(t)
	mux.HandleFunc(PathRobotSend, func(w http.ResponseWriter, r *http.Request) {
		testQuery(t, r, map[string]string{"access_token": "tok"})
		io.WriteString(w, `{"errcode":0,"errmsg":"ok"}`)
	})
	if err := client.SendRobot(context.Background(), Robot{Token: "tok"}, RobotTextMessage("x")); err != nil {
		t.Fatalf("SendRobot: %v", err)
	}
}

// TestSendRobotTooFast: a robot DingTalk blocked for sending too fast is
// throttled for ten minutes, and the error shows none of its secrets.
func TestSendRobotTooFast(t *testing.T) {
	for _, code := range []int{410100, 660026, 130101} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			client, mux := setup(t)
			mux.HandleFunc(PathRobotSend, func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, `{"errcode":`+strconv.Itoa(code)+`,"errmsg":"send too fast"}`)
			})
			err := client.SendRobot(context.Background(), Robot{Token: "robot-token-0123", Secret: "SECrobot-secret-abc"},
				RobotTextMessage("x"))
			if Classify(err) != ClassThrottled {
				t.Errorf("class %v of %v, want throttled", Classify(err), err)
			}
			if wait, ok := RetryAfter(err); !ok || wait != RobotBlock {
				t.Errorf("RetryAfter = %v, %v; want %v", wait, ok, RobotBlock)
			}
			for _, secret := range []string{"robot-token-0123", "SECrobot-secret-abc", "sign="} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows %q", err, secret)
				}
			}
		})
	}
}

func TestSendRobotRefusesBadInput(t *testing.T) {
	client, mux := setup(t)
	calls := 0
	mux.HandleFunc(PathRobotSend, func(http.ResponseWriter, *http.Request) { calls++ })
	var ve *ValidationError
	if err := client.SendRobot(context.Background(), Robot{}, RobotTextMessage("x")); !errors.As(err, &ve) || ve.Field != "access_token" {
		t.Errorf("no token: %v", err)
	}
	if err := client.SendRobot(context.Background(), Robot{Token: "t"}, RobotTextMessage("")); !errors.As(err, &ve) || ve.Field != "text.content" {
		t.Errorf("empty text: %v", err)
	}
	if calls != 0 {
		t.Errorf("%d calls reached DingTalk", calls)
	}
}

// TestSendRobotTransportFailure: no answer is a TransportError that does
// not show the webhook's token.
func TestSendRobotTransportFailure(t *testing.T) {
	client, _, srv := setupServer(t)
	srv.Close()
	err := client.SendRobot(context.Background(), Robot{Token: "robot-token-0123"}, RobotTextMessage("x"))
	var te *TransportError
	if !errors.As(err, &te) || strings.Contains(err.Error(), "robot-token-0123") {
		t.Errorf("err = %v, want a TransportError without the token", err)
	}
}

func TestRobotSign(t *testing.T) {
	// The same secret and time sign the same; another time, another sign.
	a, b := RobotSign("SEC1", 1700000000000), RobotSign("SEC1", 1700000000001)
	if a == b || a != RobotSign("SEC1", 1700000000000) {
		t.Errorf("signs %q %q", a, b)
	}
	if raw, err := base64.StdEncoding.DecodeString(a); err != nil || len(raw) != sha256.Size {
		t.Errorf("sign %q is not a base64 SHA-256 MAC: %v", a, err)
	}
}
