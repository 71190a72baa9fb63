// Package metrics holds the Prometheus metrics that explain dingq's
// delivery: DingTalk's answers and how long they took, the token cache,
// the shared rate limiter, the final statuses of messages and their
// recipients, and the callback receiver and its sinks. Every name starts
// with dingq_.
//
// [New] registers them on a prometheus.Registerer; the code that knows a
// fact calls one small typed method ([Metrics.Call], [Metrics.Message]…).
// Every method is a no-op on a nil *Metrics, so tests and library users
// need not pass one.
//
// Labels stay bounded: app names are those of the worker's configuration
// (a producer without a list of apps takes any well-formed name, typos
// included: a record of an app the counting worker is not configured for
// is counted as app [AppUnknown], "unknown"), APIs are DingTalk's path
// constants, errcodes are DingTalk's numbers (or a few words for failures
// that are not DingTalk's answer), event types are capped. Never a user
// id, a message id, a token or a secret.
//
// Tests read the values back with package metricstest.
//
// It imports client_golang and the standard library, no dingq package; it
// may be imported by worker, internal/* and cmd.
package metrics
