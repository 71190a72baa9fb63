// Package config loads and checks dingq's YAML configuration.
//
// Load reads a file; Parse does the same work on bytes already in memory.
// Both go through the same steps, in this order:
//
//  1. The text is parsed as YAML. A key that no field knows about is an
//     error that names the key path and its line, so typos show at start-up.
//  2. In every value, ${NAME} is replaced by the environment variable NAME,
//     ${NAME:-default} falls back to default when NAME is unset or empty,
//     and $$ stands for a literal $. A bare $x is left alone. Expansion
//     works on parsed values, so comments are never expanded and a secret
//     holding YAML punctuation (": ", "#", quotes) cannot change the
//     document's structure. Inside [...] or {...} YAML reads braces as
//     punctuation, so quote such a value: tokens: ["${DINGQ_API_TOKEN}"].
//     A ${NAME} whose variable is unset is an error naming the variable and
//     its line.
//  3. Variables named DINGQ_<KEY> override single keys: the key path with
//     dots and brackets turned into underscores and upper-cased, for example
//     DINGQ_REDIS_ADDR for redis.addr and DINGQ_DINGTALK_APPS_0_APP_SECRET
//     for dingtalk.apps[0].app_secret. Lists of strings take a
//     comma-separated value and an empty value resets a key to its default.
//     The overrides are found by reflection over the yaml tags, so a new
//     field gets one for free. An unknown DINGQ_ variable is an error, except
//     DINGQ_CONFIG (which names the file), any DINGQ_TEST_ variable, and any
//     variable the file mentions as ${NAME}.
//  4. Zero values are replaced by the defaults each field's comment states.
//  5. Validate checks every rule and reports every problem at once.
//
// Errors are typed: *ParseError for the file (with its line), *EnvError for
// a DINGQ_ variable and *FieldError for a rule a value breaks; find them with
// errors.As. No error message ever contains a secret: redis.password,
// api.tokens, and the app_secret and corp_secret of every app.
//
// It imports only dingtalk and internal/outcome, for the defaults they own;
// it must never import cmd, worker, producer or internal/api.
package config
