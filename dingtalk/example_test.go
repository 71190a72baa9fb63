package dingtalk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/dingq/dingq/dingtalk"
)

func ExampleClient_SendWorkNotification() {
	// A stand-in for oapi.dingtalk.com that answers like DingTalk.
	mux := http.NewServeMux()
	mux.HandleFunc(dingtalk.PathGetToken, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"errcode":0,"errmsg":"ok","access_token":"fake-token","expires_in":7200}`)
	})
	mux.HandleFunc(dingtalk.PathAsyncSendV2, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"errcode":0,"errmsg":"ok","task_id":256271667526,"request_id":"4jzllmte0wau"}`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	client, err := dingtalk.NewClient(dingtalk.WithBaseURL(srv.URL))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	// Fetch the token once and cache it: DingTalk throttles apps that ask often.
	tok, err := client.GetToken(ctx, dingtalk.Credentials{AppKey: "dingkey", AppSecret: "secret"})
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := client.SendWorkNotification(ctx, tok.AccessToken, &dingtalk.SendRequest{
		AgentID: 123456,
		UserIDs: []string{"manager1", "manager2"},
		Msg:     dingtalk.TextMessage("The build is green."),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Accepted, not yet delivered: the task id tracks the delivery.
	fmt.Println("task_id:", res.TaskID)
	// Output: task_id: 256271667526
}

func ExampleClient_GetSendResult() {
	// A stand-in for oapi.dingtalk.com that answers like DingTalk.
	mux := http.NewServeMux()
	mux.HandleFunc(dingtalk.PathGetSendProgress, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"errcode":0,"errmsg":"ok","progress":{"progress_in_percent":100,"status":2},"request_id":"r1"}`)
	})
	mux.HandleFunc(dingtalk.PathGetSendResult, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"errcode":0,"errmsg":"ok","send_result":{"read_user_id_list":["manager1"],`+
			`"forbidden_user_id_list":["manager2"],"forbidden_list":[{"code":143106,"count":1,"userid":"manager2"}]},"request_id":"r2"}`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	client, err := dingtalk.NewClient(dingtalk.WithBaseURL(srv.URL))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	const token, agentID, taskID = "fake-token", 123456, 256271667526
	// The send was only accepted: wait until DingTalk has delivered it.
	progress, err := client.GetSendProgress(ctx, token, agentID, taskID)
	if err != nil {
		fmt.Println(err)
		return
	}
	if !progress.Done() {
		fmt.Println("still sending:", progress.Percent, "%")
		return
	}
	// Silent limits show only here: the send itself said ok.
	res, err := client.GetSendResult(ctx, token, agentID, taskID)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("read:", res.ReadUserIDs)
	for user, code := range res.ForbiddenCodes() {
		if code == dingtalk.ForbiddenSameContent {
			fmt.Println("dropped as a repeat:", user)
		}
	}
	// Output:
	// read: [manager1]
	// dropped as a repeat: manager2
}

func ExampleTextMessage() {
	msg := dingtalk.TextMessage("Deploy of v1.2 done.")
	if err := msg.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	b, err := json.Marshal(msg)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(b))
	fmt.Println("bytes sent:", msg.EncodedSize())
	// Output:
	// {"msgtype":"text","text":{"content":"Deploy of v1.2 done."}}
	// bytes sent: 60
}

func ExampleSendRequest_Validate() {
	req := &dingtalk.SendRequest{
		AgentID: 123456,
		UserIDs: []string{"manager1"},
		Msg:     dingtalk.LinkMessage("Report", "Weekly report", "https://example.com/r", ""),
	}
	err := req.Validate()
	fmt.Println(err)

	var ve *dingtalk.ValidationError
	if errors.As(err, &ve) {
		fmt.Println("field:", ve.Field)
	}
	// Output:
	// msg.link.picUrl: required
	// field: msg.link.picUrl
}

func ExampleClassify() {
	errs := []error{
		&dingtalk.Error{Code: 90018, Message: "rate limited"},
		&dingtalk.Error{Code: 88, SubCode: "40014", Path: dingtalk.PathAsyncSendV2},
		&dingtalk.Error{Code: 33012, Message: "无效的USERID"},
		&dingtalk.Error{Code: -1, Message: "系统繁忙"},
		fmt.Errorf("send: %w", context.Canceled),
	}
	for _, err := range errs {
		class := dingtalk.Classify(err)
		if wait, ok := dingtalk.RetryAfter(err); ok {
			fmt.Printf("%s, retry after %s\n", class, wait)
			continue
		}
		fmt.Println(class)
	}
	// Output:
	// throttled, retry after 1s
	// token_invalid
	// permanent
	// transient
	// canceled
}
