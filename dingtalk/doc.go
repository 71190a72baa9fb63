// Package dingtalk is a client for DingTalk's open API (钉钉开放平台): access
// tokens, work notifications (工作通知) and the typed errors DingTalk answers
// with.
//
// A work notification is sent with [Client.SendWorkNotification]
// (asyncsend_v2). DingTalk only accepts it there and delivers it later:
// [Client.GetSendProgress] (getsendprogress) tells how far delivery has got,
// [Client.GetSendResult] (getsendresult) who got it and whom a silent limit
// dropped, and [Client.Recall] (recall) withdraws it, all within 24 hours of
// the send.
//
// It is a plain client library: it knows nothing of asynq, Redis or dingq's
// workers, and imports only the standard library. Every message type marshals
// to DingTalk's exact JSON and is validated before any call, so a bad message
// is refused locally with a [*ValidationError] that names the field.
//
// Every answer from DingTalk is sorted once, where it comes back, into an
// [*Error] (DingTalk said no) or a [*TransportError] (no answer); [Classify]
// tells a caller what the error asks of it: retry, wait, refetch the token, or
// give up. Access tokens never appear in an error's text.
//
// This package must never import asynq, go-redis or any other dingq package.
package dingtalk
