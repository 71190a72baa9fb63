package dingtalk_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dingq/dingq/dingtalk"
)

// TestNoRedirects: a redirect is never followed, so neither the new
// host's token header nor a token request's secret reaches another host.
func TestNoRedirects(t *testing.T) {
	var reached atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		fmt.Fprint(w, `{"accessToken":"stolen","expireIn":7200,"errcode":0}`)
	}))
	defer elsewhere.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	c, err := dingtalk.NewClient(dingtalk.WithBaseURL(redirect.URL), dingtalk.WithAPIBaseURL(redirect.URL))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cred := dingtalk.Credentials{AppKey: "key", AppSecret: "the-app-secret"}
	_, err = c.GetAccessTokenV1(ctx, cred)
	var de *dingtalk.Error
	if !errors.As(err, &de) || de.HTTPStatus != http.StatusTemporaryRedirect {
		t.Errorf("GetAccessTokenV1 through a redirect: %v, want an *Error with HTTP 307", err)
	}
	_, err = c.RobotBatchSend(ctx, "the-access-token", &dingtalk.RobotBatchRequest{RobotCode: "key", UserIDs: []string{"u1"},
		Msg: dingtalk.RobotTextTemplate("hi")})
	if !errors.As(err, &de) || de.HTTPStatus != http.StatusTemporaryRedirect {
		t.Errorf("RobotBatchSend through a redirect: %v, want an *Error with HTTP 307", err)
	}
	if _, err := c.GetToken(ctx, cred); err == nil {
		t.Error("GetToken through a redirect: no error")
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("the other host got %d calls, want none", n)
	}
}

func TestRobotRedacted(t *testing.T) {
	r := dingtalk.Robot{Token: "webhook-token-123", Secret: "SECwebhook-secret"}
	for _, s := range []string{fmt.Sprint(r), fmt.Sprintf("%+v", r), fmt.Sprintf("%#v", r), fmt.Sprint([]dingtalk.Robot{r})} {
		if strings.Contains(s, r.Token) || strings.Contains(s, r.Secret) {
			t.Errorf("%q shows the robot's token or secret", s)
		}
	}
}
