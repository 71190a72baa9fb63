// Package dingtalk is a client for DingTalk's open API (钉钉开放平台): access
// tokens, work notifications (工作通知) and the typed errors DingTalk answers
// with.
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
