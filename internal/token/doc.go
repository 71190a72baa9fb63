// Package token caches DingTalk access tokens per app, so a worker fetches
// an app's token once per lifetime instead of once per message.
//
// This is the in-process cache of the walking skeleton: one fetch at a time
// per app inside a process, refresh ahead of expiry, invalidation of a
// refused token by compare-and-delete, and a short memory of bad
// credentials so a misconfigured app fails fast instead of hammering
// gettoken. Sharing tokens across processes through Redis is built on it.
//
// It imports dingtalk and the standard library; never worker, producer or cmd.
package token
