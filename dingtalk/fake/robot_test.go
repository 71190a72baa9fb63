package fake_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/dingtalk/fake"
)

var (
	signing   = dingtalk.Robot{Token: "robot-alerts-token", Secret: "SECrobot-alerts-secret"}
	unsigning = dingtalk.Robot{Token: "robot-keyword-token"}
)

// robotSetup serves a fake that knows the two robots, and a client; both
// on one clock.
func robotSetup(t *testing.T) (*fake.Server, *dingtalk.Client, *clock) {
	t.Helper()
	clk := &clock{now: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	fk := fake.New(nil, &fake.Options{Now: clk.Now, Robots: []dingtalk.Robot{signing, unsigning}})
	srv := httptest.NewServer(fk)
	t.Cleanup(srv.Close)
	c, err := dingtalk.NewClient(dingtalk.WithBaseURL(srv.URL), dingtalk.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	return fk, c, clk
}

func TestRobotSign(t *testing.T) {
	fk, c, _ := robotSetup(t)
	ctx := context.Background()
	tests := []struct {
		name  string
		robot dingtalk.Robot
		want  int // errcode; 0 for ok
	}{
		{"signed", signing, 0},
		{"unsigned robot", unsigning, 0},
		{"wrong secret", dingtalk.Robot{Token: signing.Token, Secret: "SECnot-the-secret"}, 310000},
		{"no sign for a signing robot", dingtalk.Robot{Token: signing.Token}, 310000},
		{"unknown token", dingtalk.Robot{Token: "nobody", Secret: signing.Secret}, 300001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.SendRobot(ctx, tt.robot, dingtalk.RobotTextMessage("disk full on "+tt.name))
			var de *dingtalk.Error
			switch {
			case tt.want == 0 && err != nil:
				t.Fatalf("SendRobot: %v", err)
			case tt.want != 0 && (!errors.As(err, &de) || de.Code != tt.want):
				t.Fatalf("SendRobot: %v, want errcode %d", err, tt.want)
			case tt.want != 0 && dingtalk.Classify(err) != dingtalk.ClassPermanent:
				t.Errorf("errcode %d is %v, want permanent: retrying cannot fix a robot's configuration", tt.want, dingtalk.Classify(err))
			}
		})
	}
	if got := len(fk.RobotSent()); got != 2 {
		t.Errorf("the robots took %d messages, want the 2 correctly sent", got)
	}
}

// TestRobotSignTimestamp: a sign more than an hour old (or ahead) is
// refused, as DingTalk does.
func TestRobotSignTimestamp(t *testing.T) {
	clk := &clock{now: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	fk := fake.New(nil, &fake.Options{Now: clk.Now, Robots: []dingtalk.Robot{signing}})
	srv := httptest.NewServer(fk)
	t.Cleanup(srv.Close)
	for _, skew := range []time.Duration{-time.Hour - time.Millisecond, time.Hour + time.Millisecond} {
		c, err := dingtalk.NewClient(dingtalk.WithBaseURL(srv.URL), dingtalk.WithClock(func() time.Time { return clk.Now().Add(skew) }))
		if err != nil {
			t.Fatal(err)
		}
		err = c.SendRobot(context.Background(), signing, dingtalk.RobotTextMessage("x"))
		var de *dingtalk.Error
		if !errors.As(err, &de) || de.Code != 310000 {
			t.Errorf("clock %v off: %v, want 310000", skew, err)
		}
	}
}

// TestRobotRateLimit: a robot takes 20 messages in any minute; the 21st
// blocks it for ten minutes, answered "send too fast", throttled for that
// long; then it sends again.
func TestRobotRateLimit(t *testing.T) {
	fk, c, clk := robotSetup(t)
	ctx := context.Background()
	send := func(i int) error {
		return c.SendRobot(ctx, signing, dingtalk.RobotTextMessage(fmt.Sprintf("alert %d", i)))
	}
	for i := range dingtalk.RobotMessagesPerMinute {
		if err := send(i); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		clk.Advance(time.Second)
	}
	err := send(20)
	if wait, ok := dingtalk.RetryAfter(err); !ok || wait != dingtalk.RobotBlock {
		t.Fatalf("the 21st in a minute: %v (retry after %v), want throttled for %v", err, wait, dingtalk.RobotBlock)
	}
	clk.Advance(2 * time.Minute) // the minute is long over, the block is not
	if err := send(21); dingtalk.Classify(err) != dingtalk.ClassThrottled {
		t.Fatalf("during the block: %v, want throttled", err)
	}
	if err := c.SendRobot(ctx, unsigning, dingtalk.RobotTextMessage("other robot")); err != nil {
		t.Errorf("another robot during the block: %v", err)
	}
	clk.Advance(dingtalk.RobotBlock)
	if err := send(22); err != nil {
		t.Fatalf("after the block: %v", err)
	}
	if got := len(fk.RobotSent()); got != dingtalk.RobotMessagesPerMinute+2 {
		t.Errorf("%d messages taken, want %d", got, dingtalk.RobotMessagesPerMinute+2)
	}
}

// TestRobotMsgUUID: a message sent again with its msgUuid (a retry whose
// answer was lost) is answered ok and taken once.
func TestRobotMsgUUID(t *testing.T) {
	fk, c, _ := robotSetup(t)
	m := dingtalk.RobotMarkdownMessage("alert", "## disk full")
	m.MsgUUID = "alert-42"
	for range 3 {
		if err := c.SendRobot(context.Background(), signing, m); err != nil {
			t.Fatal(err)
		}
	}
	sent := fk.RobotSent()
	if len(sent) != 1 || sent[0].Message.Markdown.Text != "## disk full" || sent[0].Robot != signing.Token {
		t.Errorf("taken: %+v, want the markdown once", sent)
	}
	fk.Reset()
	if len(fk.RobotSent()) != 0 {
		t.Error("Reset kept what the robots took")
	}
	if err := c.SendRobot(context.Background(), signing, m); err != nil || len(fk.RobotSent()) != 1 {
		t.Errorf("after Reset the robot still knows the msgUuid or is gone: %v", err)
	}
}
