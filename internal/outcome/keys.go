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

// Batches is the hash of broadcast id's batches: batch → state letter.
func (k Keys) Batches(id string) string { return k.prefix + ":msg:{" + id + "}:batches" }

// Tasks is the hash of broadcast id's accepted batches: batch →
// "taskid:accepted_ms".
func (k Keys) Tasks(id string) string { return k.prefix + ":msg:{" + id + "}:tasks" }

// Results is the hash of broadcast id's batches whose results are recorded.
func (k Keys) Results(id string) string { return k.prefix + ":msg:{" + id + "}:results" }

// Parked is the hash of broadcast id's batches held by a pause: batch →
// the batch task's payload.
func (k Keys) Parked(id string) string { return k.prefix + ":msg:{" + id + "}:parked" }

// ParkGen counts how often each batch of broadcast id was parked, so a
// resume never takes a batch parked again after it read it.
func (k Keys) ParkGen(id string) string { return k.prefix + ":msg:{" + id + "}:parkgen" }

// Recalled is the hash of broadcast id's batches recalled at DingTalk.
func (k Keys) Recalled(id string) string { return k.prefix + ":msg:{" + id + "}:recalled" }

// Recipients is the list of broadcast id's recipients with one result
// ("invalid", "forbidden", "read"…).
func (k Keys) Recipients(id, result string) string {
	return k.prefix + ":msg:{" + id + "}:r:" + result
}
