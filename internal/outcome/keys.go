package outcome

// DefaultPrefix starts every key dingq writes when no prefix is configured.
const DefaultPrefix = "dingq"

// Keys names dingq's Redis keys for messages. The message id is the hash tag,
// so a record and its history sit in one Redis Cluster slot.
type Keys struct{ prefix string }

// NewKeys returns the key names under prefix ("dingq" if empty).
func NewKeys(prefix string) Keys {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return Keys{prefix: prefix}
}

// Outcome is the hash holding message id's record.
func (k Keys) Outcome(id string) string { return k.prefix + ":msg:{" + id + "}" }

// History is the list of message id's attempts.
func (k Keys) History(id string) string { return k.prefix + ":msg:{" + id + "}:history" }

// Idempotency binds app's idempotency key to a message id.
func (k Keys) Idempotency(app, key string) string { return k.prefix + ":idem:" + app + ":" + key }
