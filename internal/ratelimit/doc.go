// Package ratelimit keeps every dingq worker together inside DingTalk's
// rate limits: calls per app per API (20/s on the standard edition),
// recipients of work notifications per app (5,000 a minute), and calls of
// the whole fleet (10,000 in 20 s per outbound IP).
//
// It is GCRA in Redis, written as one script rather than taken from
// go-redis/redis_rate because a call must pass up to three limits at once,
// and redis_rate checks one key per call: a call denied by the second limit
// would still have spent the first. Here a call reserves a slot of every
// limit, or of none.
//
// A slot may lie in the future: a worker that is given one within its wait
// bound sleeps until then, so slots never collide and no worker spins. Each
// limit runs slightly under its figure (N-1 calls, N-120 recipients per
// period) so that no window of the period, wherever it starts, holds more
// than N.
//
// The limits adapt: when DingTalk throttles a call the limiter allowed, the
// app's calls rate drops by 30% for the fleet (once per burst), then
// recovers by 5% a second once 5 s pass without throttling. DingTalk's IP
// ban pauses every call for the time it names.
//
// It imports go-redis and the standard library; never worker, producer or
// cmd.
package ratelimit
