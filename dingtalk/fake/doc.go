// Package fake is a fake DingTalk for tests, demos and the
// `dingq fake-dingtalk` process: its legacy host (oapi.dingtalk.com) and,
// for the enterprise robot's batch send, its new host (api.dingtalk.com),
// both on one handler. A [*Server] is an [net/http.Handler]: serve it with
// net/http/httptest in tests, or with an http.Server in a process, and
// point a dingtalk.Client at it with dingtalk.WithBaseURL and
// dingtalk.WithAPIBaseURL. No message ever leaves the process.
//
// It answers with DingTalk's real shapes. On the legacy host: always HTTP
// 200 with {"errcode":N,"errmsg":"…"}; topapi paths add "request_id" to
// every answer and wrap token errors as errcode 88 with a sub_code. On the
// new host (paths under /v1.0/): the access token in the header
// x-acs-dingtalk-access-token (a query's access_token is ignored there),
// plain JSON without errcode on success, and errors as HTTP 4xx with
// {"code":"…","message":"…","requestid":"…"}. It implements:
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
//     recorded as a [Sent], with the recipients the silent limits (below)
//     dropped in [Sent.Dropped], each with its code.
//   - POST /topapi/message/corpconversation/getsendprogress?access_token=T
//     with {"agent_id":N,"task_id":N} answers
//     "progress":{"progress_in_percent":P,"status":S}. With
//     Options.DeliveryTime D, a task sent E ago has P = 100*E/D (whole
//     percent, at most 100) and S 2 (done) once E >= D, else 1
//     (processing), or 0 (not started) while P is 0. With no DeliveryTime
//     (the default) every task is done: P 100, S 2.
//   - POST /topapi/message/corpconversation/getsendresult?access_token=T
//     with {"agent_id":N,"task_id":N} answers send_result, its lists in
//     the call's order. A user of userid_list a silent limit dropped is in
//     forbidden_user_id_list and forbidden_list
//     ({"code":C,"count":1,"userid":ID}) with the limit's code; any other
//     user is reported as its [Fate] under the [Results] in force when the
//     task was sent: invalid_user_id_list, forbidden with code "143105" or
//     "143106", failed_user_id_list, read_user_id_list or
//     unread_user_id_list. The zero Results (the default) make every such
//     user unread. A dropped department follows, forbidden and named by its
//     dept id, then to_all_user as "@all"; departments and to_all_user are
//     otherwise not reported (the fake has no members to expand them to),
//     and invalid_dept_id_list is always empty. The answer is the final
//     one at once, whatever the DeliveryTime, and a recall changes nothing
//     in it.
//   - POST /topapi/message/corpconversation/recall?access_token=T with
//     {"agent_id":N,"msg_task_id":N} answers ok (errcode 0, errmsg "ok",
//     request_id) and marks the task recalled: [Sent.Recalled] is the time
//     of the first recall; recalling again answers ok and keeps it.
//   - These three answer, in order: token errors as asyncsend_v2 does;
//     400002 for a body that is not JSON; 40035 naming agent_id, then
//     task_id (msg_task_id for recall), if missing or 0; 40056 for an
//     agent_id other than the app's; and 400002 for a task that is not one
//     of the app's sends of the last 24 hours ([SendResultRetention]) with
//     that agent_id.
//   - The callback endpoints, one registration per app (the token's):
//     POST /call_back/register_call_back and /call_back/update_call_back
//     with a dingtalk.Callback {"call_back_tag":[…],"token","aes_key","url"};
//     GET /call_back/get_call_back (errcode 0 and the four fields at the
//     top level), /call_back/delete_call_back and
//     /call_back/get_call_back_failed_result. See "Callbacks" below.
//   - The session endpoints, which DingTalk does not publish: dingq's
//     seed contract, at the paths of Options.SessionPaths (by default
//     dingtalk.DefaultPathGetSession, DefaultPathCreateSession and
//     DefaultPathCloseSession, under /topapi/). See "Sessions" below.
//   - POST /robot/send?access_token=T[&timestamp=MS&sign=S], a custom
//     group robot's webhook, for the robots of Options.Robots
//     ([Server.AddRobot]): an unknown token answers 300001; a signing
//     robot's missing, wrong or hour-old sign 310000; an invalid
//     dingtalk.RobotMessage 400002. A robot takes
//     dingtalk.RobotMessagesPerMinute messages in any minute; the next
//     answers 410100 and blocks it for dingtalk.RobotBlock. A msgUuid taken
//     before answers ok and is not taken again. [Server.RobotSent] lists
//     what the robots took. Options.RobotWindow and Options.RobotBlock
//     shorten the minute and the block (tests and trials).
//   - POST /v1.0/oauth2/accessToken with {"appKey":K,"appSecret":S}, the
//     new host's token endpoint: HTTP 200 {"accessToken":T,"expireIn":N}
//     from the same store as gettoken (the same token, extended; it counts
//     as a fetch, and CallsPerSecond exempts it). Bad appKey or appSecret:
//     HTTP 400 invalidClientIdOrSecret; a field missing: 400
//     MissingParameter; a body that is not a JSON object: 400
//     InvalidParameter.
//   - POST /v1.0/robot/oToMessages/batchSend, the enterprise robot's
//     one-to-one batch send, with {"robotCode","userIds":[…],"msgKey",
//     "msgParam":"<a JSON object, as a string>"}. It answers, in order: a
//     missing, unknown, expired or revoked header token HTTP 400
//     InvalidAuthentication; a body that is not JSON 400 InvalidParameter;
//     a robotCode other than the token's app's ([App.RobotCode], else its
//     Key) 400 InvalidParameter.RobotCode; userIds not 1 to
//     dingtalk.MaxRobotBatchUsers (20) non-empty ids 400
//     InvalidParameter.UserIds; a msgKey or msgParam that
//     dingtalk.RobotTemplate's Validate refuses (msgParam must be a JSON
//     string) 400 InvalidParameter.MsgKey or InvalidParameter.MsgParam,
//     the message naming the problem, as in "msgParam.content: required by
//     msgKey sampleText". Then each user, in order, is invalid if its
//     [Results.Fate] under the Results in force is FateInvalid (the zero
//     Results: nobody); else flow controlled if it already got
//     Options.RobotUserLimit messages from that robot code in the last
//     Options.RobotWindow (DingTalk flow-controls users but publishes no
//     figure: 0, the default, turns this off); else messaged, and counted.
//     The answer is HTTP 200 {"processQueryKey":K,"invalidStaffIdList":[…],
//     "flowControlledStaffIdList":[…]}, both lists always present, K new
//     for every call; the call is recorded as a [RobotBatch]
//     ([Server.RobotBatches]).
//   - Any other path under /topapi/, or a topapi path called with the wrong
//     HTTP method: errcode 22 "Invalid method". Any other path under
//     /v1.0/, or a /v1.0/ path with the wrong method: HTTP 404
//     InvalidAction.NotFound. Any other unknown path, or /gettoken with a
//     method other than GET: HTTP 404 with
//     {"errcode":404,"errmsg":"not found"}.
//   - Request bodies larger than 1 MiB answer 400002 (on the new host,
//     HTTP 400 InvalidParameter).
//
// Tests can make DingTalk misbehave. [Server.Revoke] revokes an app's
// token at once: using it answers 88 with sub_code "40014" (on the new
// host, HTTP 400 InvalidAuthentication), as an expired token does, and the
// next gettoken issues a new one. A [Fault], added with
// [Server.AddFault], answers some calls (of one endpoint, or all) in place
// of the endpoint: with an errcode such as -1, 90018 or 88/60011, with a
// broken gateway's HTTP status and a text body, with a body of its own
// (malformed JSON, a proxy's HTML page), with the per-IP ban
// {"status":1111,…}, by closing the connection without an answer, or
// never (the call hangs until the client gives up); or it delays the
// answer by a latency. A fault fires on every call, on a
// random fraction of them, or on the next N; a call it answers has no other
// effect (nothing is sent, no token issued), though a faulted gettoken (or
// new-host token call) still counts as a fetch. A fault's errcode is the
// legacy host's shape on every path, /v1.0/ ones included; to answer as the
// new host does, give a Body such as {"code":"…","message":"…"} with a
// Status.
//
// The fake can enforce DingTalk's rate limits, as [Limits] set with
// [Options], [Server.SetLimits] or PUT /_fake/limits. It enforces none
// unless asked (Options.Limits nil); [DefaultLimits] are DingTalk's
// standard edition's, in parentheses below:
//
//   - CallsPerSecond per app per API (endpoint) in any sliding second
//     (20): a call over it answers errcode 90018 (on the new host, HTTP 403
//     Forbidden.AccessDenied.QpsLimitForAppkeyAndApi) and has no effect.
//     The token endpoints are exempt; every other endpoint counts on its
//     own, for the app of its token (the header's on the new host).
//   - RecipientsPerMinute per app in any sliding minute (5,000), counting
//     each user id, department id and to_all_user of accepted sends: as
//     DingTalk does, the send still answers ok with a task_id, and the
//     recipients over the limit are silently dropped, the last ones of the
//     call first; getsendresult reports them with code "143103"
//     (dingtalk.ForbiddenAppPerMinute).
//   - CallsPer20s over every call (the per-IP rule) in any sliding 20
//     seconds (10,000): the call over it and every call for the Ban that
//     follows (5 minutes unless set) answer the IP ban
//     {"status":1111,"wait":M,"punish":"deny"}, M in minutes.
//
// DingTalk's daily limits, by contrast, are always enforced, unless
// Options.NoDailyLimits turns them off. They too are silent (the send
// answers ok) and count per app and per user over a calendar day of China
// time (UTC+8, as Options.Now tells it), only for the user ids of a send
// that the limit of recipients per minute kept, in the call's order:
//
//   - a user who already got the same content from the app that day (the
//     same msg, compared by a hash of its JSON re-encoded, so spacing and
//     field order do not matter) is dropped with code "143106"
//     (dingtalk.ForbiddenSameContent);
//   - else a user who already got [DailyMessagesPerUser] (500) of the
//     app's messages that day is dropped with code "143105"
//     (dingtalk.ForbiddenDaily).
//
// Only the messages a user was delivered (not dropped) count towards its
// day, whatever its Fate. Departments and to_all_user are not subject to
// them. What they count is forgotten once a later day starts, and by
// Reset.
//
// Limits read the clock of Options.Now, so tests need no sleeping. A call
// a fault answers is not counted by them, and a call they refuse is not
// counted as accepted. [Server.Stats] tells what they did (throttled,
// ip_banned, dropped by app and dropped_by_code) and how fast each app
// went: the most accepted asyncsend_v2 calls in any second and the most
// recipients the limit of recipients per minute let through in any
// minute, limits or not.
//
// What getsendresult reports of the users a send delivered is set by
// [Results], with Options.Results, [Server.SetResults] or PUT
// /_fake/results: the fractions of users invalid, forbidden with
// "143105", forbidden with "143106" and failed, and of the rest the
// fraction read. A hash of the user id alone decides each user's fate, so
// a user has the same one in every task, and [Results.Fate] tells it.
//
// # Callbacks
//
// register_call_back and update_call_back check the body as DingTalk
// does, in order: the access token (41001 missing, 40014 unknown, expired
// or revoked: the legacy host answers these directly, not as 88), a body
// that is not JSON (400002); call_back_tag empty or with a tag not in
// [CallbackTags] (71008; check_url is not one); token not of 6 to 64
// characters, or aes_key not of 43 characters of [a-zA-Z0-9] (400002,
// naming the field); url missing (41010) or not an absolute http(s) URL
// (71011); then whether the app has a registration (registering again:
// 71006; updating none: 71007). Then, as DingTalk does, the fake POSTs the
// event {"EventType":"check_url"} to the URL, sealed as below, and waits
// at most [CallbackTimeout] (1500 ms) for the answer, without holding the
// server's lock: an answer that is the JSON of a dingtalk.CallbackResponse
// whose signature verifies and whose encrypt opens (same owner key) to the
// text "success" registers (or updates) the callback and answers ok; no
// answer (connection refused or reset, timeout) answers 71012, and any
// other answer (plain "success", another text, an HTTP status but 200)
// 71009, and leaves the registration as it was. get_call_back and
// delete_call_back answer 71007 when the app has none. The recorded call
// shows the callback's token and aes_key as "***".
//
// An event goes to a callback as DingTalk sends it: POST
// URL?signature=S&timestamp=TS&nonce=N with the body {"encrypt":"…"},
// sealed with dingtalk.NewCallbackCrypto(token, aes_key, owner key), the
// owner key being the app's CorpID if it has one, else its Key; TS is the
// fake's clock (Options.Now) in ms and N a random nonce, new for every
// post. [Server.Push] posts one event, synchronously and without the lock,
// and POST /_fake/push posts many; each is taken if the answer is an
// encrypted "success", as above. An event not taken goes to the app's
// failed list, and Push returns a *[PushError]. Events are pushed whatever
// the registration's tags. get_call_back_failed_result answers
// {"has_more":B,"failed_list":[…]}, the oldest [MaxFailedPerCall] (200)
// events at most, each as {"<tag>":EVENT,"call_back_tag":"<tag>",
// "event_time":MS} (the tag is the event's EventType; an event without
// one is under "event", with call_back_tag ""), and forgets the events it
// returned. Deleting a callback keeps its app's failed list; Reset
// forgets callbacks and failed lists.
//
// # Sessions
//
// DingTalk publishes no session API (dingtalk-api.md, "Sessions"); the
// fake implements the one dingq's seed describes, all three by POST with
// the access token, checked as topapi's (88):
//
//   - getsession {"userid":ID} answers "result":{"session":S}, S being
//     [SessionOf](ID): the same for the same user, always.
//   - create_session, a dingtalk.SessionRequest
//     {"session_id","app_key","chatid","user_id"}, opens a session of the
//     token's app and answers "result":{"session_id":ID}: the one given,
//     or a new one if none. Opening an id the app has open answers 400002
//     "会话已存在"; a closed one may be opened again.
//   - close_session, the same body, closes it and answers
//     "result":{"success":true}; a session the app does not have open
//     answers 400002 "会话不存在或已关闭".
//
// A body that is not JSON answers 400002; a missing userid (getsession)
// or user_id (create_session) 40035, as does a missing session_id
// (close_session). A user whose [Results.Fate] is FateInvalid, under the
// Results in force, is unknown: getsession and create_session answer
// 60121 "找不到该用户". Reset forgets the sessions.
//
// Every call to the DingTalk endpoints is recorded as a [Call], with the
// fault that fired on it, or the limit that refused it, if any; read them with [Server.Calls],
// [Server.Sent], [Server.TokenFetches] and [Server.Stats], or over HTTP from
// the admin endpoints, which are not recorded and never faulted themselves:
//
//	GET    /_fake/calls          every Call, as JSON
//	GET    /_fake/sent           every accepted send, as JSON, with "dropped":[{"id":ID,"code":C},...]
//	                             and "recalled":TIME if recalled
//	GET    /_fake/stats          {"calls":N,"sent":N,"pushed":N,"push_failed":N,"sessions_open":N,
//	                             "token_fetches":{"<appkey>":N,...},"faulted":N,
//	                             "throttled":N,"ip_banned":N,"max_calls_per_second":{"<appkey>":N,...},
//	                             "max_recipients_per_minute":{...},"dropped":{"<appkey>":N,...},
//	                             "dropped_by_code":{"143103":N,...},"recalled":N,"limits":{...}}
//	POST   /_fake/reset          forget calls, sends, tokens, faults, what the limits
//	                             counted (daily limits included), callbacks, failed events,
//	                             sessions and what the robots took; apps, robots, limits and
//	                             results stay
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
//	GET    /_fake/results        the Results in force, as JSON
//	PUT    /_fake/results        set the Results in the body, such as
//	                             {"invalid":0.1,"read":0.5}, for the tasks sent from then on;
//	                             a field left out is 0; 400 naming the field if invalid
//	GET    /_fake/callbacks      the registered callbacks, as [CallbackInfo]: app, call_back_tag,
//	                             url, registered, failed (events waiting); never token or aes_key
//	GET    /_fake/robots         what the robots took, as [RobotRecords]:
//	                             {"sent":[{"robot":ID,"message":{...},"time":T},...],
//	                             "batches":[{"app","robot_code","msg_key","msg_param","delivered":[...],
//	                             "invalid":[...],"flow_controlled":[...],"process_query_key","time"},...]};
//	                             a custom robot is named by [RobotID] (8 hex digits of the
//	                             SHA-256 of its token), never by its token
//	POST   /_fake/push           push events to an app's callback, as Push does:
//	                             {"app":"KEY","events":[{...},...],"times":N} pushes each event
//	                             N times in a row (default 1; DingTalk's re-pushes: the same
//	                             content, a new timestamp and nonce each time), and answers
//	                             {"errcode":0,"errmsg":"ok","pushed":N,"failed":M} (taken and not
//	                             taken); 400 for a bad body, an unknown app or one with no callback
//
// Neither the records nor the admin endpoints ever show an app secret or an
// access token, revoked ones included: the token travels in the query or
// a header, which are not recorded, and any secret or token found in a
// recorded body is replaced by "***" (so is the appSecret of a new-host
// token call, right or wrong). /_fake/robots also hides the robots' tokens
// and secrets.
//
// Each endpoint is one entry of a route table and one handler, run with the
// server's lock held; faults are chosen and limits applied under the lock,
// but a fault's latency and hanging wait without it, so other calls go on
// meanwhile, and so do the check_url of register and update_call_back and
// every push (a receiver may even call the fake while it answers).
//
// This package imports only the standard library and dingq's dingtalk
// package; it must never import asynq, go-redis or any other dingq package.
package fake
