package producer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/dingq/dingq/dingtalk"
)

// Coalescing: a message that opts in (Message.Coalesce, or its app in
// Config.CoalesceApps) and fits one call on its own is enqueued as usual,
// with its own id, record and TypeMessageSend task, but in an asynq group
// named after its app and content. Workers wait a short window for more
// tasks of the group and merge them into one TypeCoalescedSend task, which
// sends them in as few asyncsend_v2 calls of at most 100 users as it can;
// each message keeps its own outcome.

// coalesceGroup returns the asynq group of m's task, or "" when m is sent
// on its own: it does not opt in, or it is not a plain message to at most
// 100 users due now (departments, the whole company and a future send_at
// are never merged).
func (p *Producer) coalesceGroup(m *Message, payload *MessageSendPayload) (string, error) {
	if !m.Coalesce && !slices.Contains(p.coalesceApps, m.App) {
		return "", nil
	}
	if len(payload.UserIDs) == 0 || len(payload.UserIDs) > dingtalk.MaxUserIDs ||
		len(payload.DeptIDs) > 0 || payload.ToAllUser {
		return "", nil
	}
	if _, later := p.processAt(m.SendAt); later {
		return "", nil
	}
	return coalesceKey(payload.App, &payload.Msg)
}

// coalesceKey names the group of app's messages with content msg: the app
// (which fixes the agent) and a hash of the message's JSON. Group names are
// per queue in asynq, so each priority coalesces apart.
func coalesceKey(app string, msg *dingtalk.Message) (string, error) {
	b, err := json.Marshal(msg)
	if err != nil {
		return "", fmt.Errorf("producer: encoding message: %w", err)
	}
	sum := sha256.Sum256(b)
	return app + ":" + hex.EncodeToString(sum[:])[:32], nil
}
