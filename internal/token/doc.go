// Package token caches DingTalk access tokens per app, so that a whole
// fleet of workers fetches each app's token once per lifetime instead of
// once per message or once per process.
//
// A [Cache] answers from memory in steady state. A token nearing its
// expiry (RefreshMargin, never more than a tenth of its lifetime) is
// refreshed in the background by one caller while every other caller goes
// on using it; only with half the margin left do callers wait for a new one.
//
// With Redis ([Config.Redis]) the cache is shared by every process:
//
//   - the token lives in the hash prefix:token:{app} with its expiry, the
//     app key it belongs to and a generation number;
//   - one process at a time fetches, holding prefix:token:{app}:lock (SET NX
//     with a TTL, released by compare-and-delete); the others poll Redis for
//     its token, or keep using the one they hold;
//   - a token is written only if the generation is still the one read
//     before the fetch, so a fetch that outlived its lock never replaces the
//     token of the lock's next holder;
//   - [Cache.Invalidate] drops a token DingTalk refused by compare-and-delete,
//     so a newer token another process fetched meanwhile stays;
//   - credentials DingTalk refused (40089, 40096, invalidClientIdOrSecret)
//     are recorded in prefix:token:{app}:refused for BadCredentialsTTL, with
//     a hash of the credentials (never the secret): every process fails fast,
//     and fixed credentials are not held back;
//   - when Redis cannot be reached, a process uses the token it holds while
//     DingTalk still takes it, and then fetches one on its own.
//
// It imports dingtalk, go-redis, zap and the standard library; never
// worker, producer or cmd.
package token
