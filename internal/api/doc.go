// Package api is dingq's HTTP API: backend applications POST messages to
// /v1/messages and read their outcomes at /v1/messages/{id}; /healthz and
// /readyz answer probes. Requests carry a bearer token from api.tokens.
//
// Every error answer has one shape:
//
//	{"error":{"code":"invalid_argument","message":"…","field":"msg.text.content"}}
//
// It imports producer and dingtalk; never worker or cmd.
package api
