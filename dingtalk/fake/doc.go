// Package fake is a fake DingTalk legacy host (oapi.dingtalk.com) for tests,
// demos and the `dingq fake-dingtalk` process. A [*Server] is an
// [net/http.Handler]: serve it with net/http/httptest in tests, or with an
// http.Server in a process, and point a dingtalk.Client at it with
// dingtalk.WithBaseURL. No message ever leaves the process.
//
// It answers with DingTalk's real shapes: always HTTP 200 with
// {"errcode":N,"errmsg":"…"}; topapi paths add "request_id" to every answer
// and wrap token errors as errcode 88 with a sub_code. It implements:
//
//   - GET /gettoken?appkey=K&appsecret=S, and the legacy
//     ?corpid=C&corpsecret=S form. One token per app: asking again while it
//     is valid answers the same token and extends it by the lifetime
//     (7200 s unless [Options] say otherwise). Missing parameter: 40035;
//     bad appkey/appsecret: 40096; bad corpid/corpsecret: 40089.
//   - POST /topapi/message/corpconversation/asyncsend_v2?access_token=T.
//     Missing token: 88 with sub_code "40000"; unknown, expired or revoked
//     token: 88 with sub_code "40014". The body is decoded into dingtalk.SendWire
//     (unknown fields ignored; malformed JSON: 400002) and checked with the
//     dingtalk package's own Validate: a missing field answers 40035, any
//     other fault 400002. An agent_id other than the app's [App.AgentID]
//     answers 40056. An accepted send answers an increasing task_id and is
//     recorded as a [Sent].
//   - POST /topapi/message/corpconversation/getsendresult?access_token=T
//     with {"agent_id":N,"task_id":N}, token errors as above. It answers
//     send_result with the delivered users in unread_user_id_list (nobody
//     reads in the fake) and the recipients dropped by the limit of
//     recipients per minute in forbidden_user_id_list and forbidden_list
//     ({"code":"143103","count":1,"userid":ID}; a dropped department is
//     named by its dept id, to_all_user by "@all"); the other lists are
//     empty. A task that is not one of the app's sends of the last 24 hours
//     with that agent_id answers 400002, a missing field 40035, an agent_id
//     other than the app's 40056.
//   - Any other path under /topapi/, or a topapi path called with the wrong
//     HTTP method: errcode 22 "Invalid method". Any other unknown path, or
//     /gettoken with a method other than GET: HTTP 404 with
//     {"errcode":404,"errmsg":"not found"}.
//   - Request bodies larger than 1 MiB answer 400002.
//
// Tests can make DingTalk misbehave. [Server.Revoke] revokes an app's
// token at once: using it answers 88 with sub_code "40014", as an expired
// token does, and the next gettoken issues a new one. A [Fault], added with
// [Server.AddFault], answers some calls (of one endpoint, or all) in place
// of the endpoint: with an errcode such as -1, 90018 or 88/60011, with a
// broken gateway's HTTP status and a text body, with the per-IP ban
// {"status":1111,…}, or never (the call hangs until the client gives up);
// or it delays the answer by a latency. A fault fires on every call, on a
// random fraction of them, or on the next N; a call it answers has no other
// effect (nothing is sent, no token issued), though a faulted gettoken
// still counts as a fetch.
//
// The fake can enforce DingTalk's rate limits, as [Limits] set with
// [Options], [Server.SetLimits] or PUT /_fake/limits. It enforces none
// unless asked (Options.Limits nil); [DefaultLimits] are DingTalk's
// standard edition's, in parentheses below:
//
//   - CallsPerSecond per app per API (endpoint) in any sliding second
//     (20): a call over it answers errcode 90018 and has no effect.
//     gettoken is exempt.
//   - RecipientsPerMinute per app in any sliding minute (5,000), counting
//     each user id, department id and to_all_user of accepted sends: as
//     DingTalk does, the send still answers ok with a task_id, and the
//     recipients over the limit are silently dropped, the last ones of the
//     call first; getsendresult reports them with code "143103".
//   - CallsPer20s over every call (the per-IP rule) in any sliding 20
//     seconds (10,000): the call over it and every call for the Ban that
//     follows (5 minutes unless set) answer the IP ban
//     {"status":1111,"wait":M,"punish":"deny"}, M in minutes.
//
// Limits read the clock of Options.Now, so tests need no sleeping. A call
// a fault answers is not counted by them, and a call they refuse is not
// counted as accepted. [Server.Stats] tells what they did (throttled,
// ip_banned, dropped) and how fast each app went: the most accepted
// asyncsend_v2 calls in any second and the most delivered recipients in
// any minute, limits or not.
//
// Every call to the DingTalk endpoints is recorded as a [Call], with the
// fault that fired on it, or the limit that refused it, if any; read them with [Server.Calls],
// [Server.Sent], [Server.TokenFetches] and [Server.Stats], or over HTTP from
// the admin endpoints, which are not recorded and never faulted themselves:
//
//	GET    /_fake/calls          every Call, as JSON
//	GET    /_fake/sent           every accepted send, as JSON
//	GET    /_fake/stats          {"calls":N,"sent":N,"token_fetches":{"<appkey>":N,...},"faulted":N,
//	                             "throttled":N,"ip_banned":N,"max_calls_per_second":{"<appkey>":N,...},
//	                             "max_recipients_per_minute":{...},"dropped":{...},"limits":{...}}
//	POST   /_fake/reset          forget calls, sends, tokens, faults and what the limits
//	                             counted; apps and limits stay
//	POST   /_fake/revoke?app=ID  revoke the token of the app with that appkey or corpid:
//	                             {"errcode":0,"errmsg":"ok","revoked":true|false}
//	GET    /_fake/faults         the active faults, as JSON
//	POST   /_fake/faults         add the Fault in the body, such as
//	                             {"path":"/gettoken","code":-1,"times":2}; 400 if invalid
//	DELETE /_fake/faults         clear every fault
//	GET    /_fake/limits         the Limits in force, as JSON
//	PUT    /_fake/limits         set the Limits in the body, such as
//	                             {"calls_per_second":20,"ban":"1m"}; a field left out
//	                             is 0, which turns that limit off; 400 if invalid
//
// Neither the records nor the admin endpoints ever show an app secret or an
// access token, revoked ones included: the token travels in the query,
// which is not recorded, and any secret or token found in a recorded body
// is replaced by "***".
//
// Each endpoint is one entry of a route table and one handler, run with the
// server's lock held; faults are chosen and limits applied under the lock,
// but a fault's latency and hanging wait without it, so other calls go on
// meanwhile.
//
// This package imports only the standard library and dingq's dingtalk
// package; it must never import asynq, go-redis or any other dingq package.
package fake
