package dingtalk_test

import (
	"encoding/json"
	"fmt"

	"github.com/dingq/dingq/dingtalk"
)

// A receiver checks and decrypts what DingTalk POSTs (signature, timestamp
// and nonce in the query, {"encrypt":"…"} in the body) and answers with the
// encrypted "success" within 1500 ms. The values are DingTalk's official
// sample; its owner key is an ISV suiteKey.
func ExampleCallbackCrypto() {
	c, err := dingtalk.NewCallbackCrypto("123456", "4g5j64qlyl3zvetqxz5jiocdr586fn2zvjpa8zls3ij", "suite4xxxxxxxxxxxxxxx")
	if err != nil {
		panic(err)
	}
	const (
		signature = "5a65ceeef9aab2d149439f82dc191dd6c5cbe2c0"
		timestamp = "1445827045067"
		nonce     = "nEXhMP4r"
		encrypt   = "1a3NBxmCFwkCJvfoQ7WhJHB+iX3qHPsc9JbaDznE1i03peOk1LaOQoRz3+nlyGNhwmwJ3vDMG+OzrHMeiZI7gTRWVdUBmfxjZ8Ej23JVYa9VrYeJ5as7XM/ZpulX8NEQis44w53h1qAgnC3PRzM7Zc/D6Ibr0rgUathB6zRHP8PYrfgnNOS9PhSBdHlegK+AGGanfwjXuQ9+0pZcy0w9lQ=="
	)
	event, err := c.Open(signature, timestamp, nonce, encrypt)
	if err != nil {
		fmt.Println("refused:", err) // answer 4xx; DingTalk will push it again
		return
	}
	var ev struct{ EventType string }
	_ = json.Unmarshal(event, &ev)
	fmt.Println(ev.EventType)

	answer, err := c.Success(timestamp, nonce) // JSON-encode it as the response body
	if err != nil {
		panic(err)
	}
	back, _ := c.Open(answer.MsgSignature, answer.TimeStamp, answer.Nonce, answer.Encrypt)
	fmt.Println(string(back))
	// Output:
	// check_create_suite_url
	// success
}
