package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

	"github.com/dingq/dingq/dingtalk"
	"github.com/dingq/dingq/producer"
)

// idSlack is the bytes of JSON around one id in a list that a request is
// allowed beyond its body limit: quotes, comma and some white space.
const idSlack = 16

// budgetReader reads at most left bytes; the message decoder gives credit
// back for every id it takes from a list, so a request of a million ids is
// read as it comes, while the rest of it stays within the body limit.
type budgetReader struct {
	r     io.Reader
	left  int64
	limit int64
}

// errBodyTooLarge is returned when the part of a request outside its id
// lists is larger than the body limit.
type errBodyTooLarge struct{ limit int64 }

func (e *errBodyTooLarge) Error() string {
	return fmt.Sprintf("request body is over %d bytes, not counting its id lists", e.limit)
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// At the limit, only the end of the body may follow: a body of
		// exactly the limit is not over it.
		var one [1]byte
		if _, err := io.ReadFull(b.r, one[:]); err != nil {
			return 0, err
		}
		return 0, &errBodyTooLarge{limit: b.limit}
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

// decodeMessage reads a message from r as a stream: userid_list and
// dept_id_list are taken one id at a time (at most maxIDs in all), so a
// request with a million ids needs little more memory than the ids; the
// rest of the object, at most limit bytes, is decoded as producer.Message
// with unknown fields refused.
func decodeMessage(r io.Reader, limit int64, maxIDs int) (*producer.Message, error) {
	var m producer.Message
	ids, err := decodeStreamed(r, limit, maxIDs, &m, "userid_list", "dept_id_list")
	if err != nil {
		return nil, err
	}
	m.UserIDs, m.DeptIDs = ids[0], ids[1]
	return &m, nil
}

// decodeRobotMessage is decodeMessage for a robot's message, whose id list
// is userIds.
func decodeRobotMessage(r io.Reader, limit int64, maxIDs int) (*producer.RobotMessage, error) {
	var m producer.RobotMessage
	ids, err := decodeStreamed(r, limit, maxIDs, &m, "userIds")
	if err != nil {
		return nil, err
	}
	m.UserIDs = ids[0]
	return &m, nil
}

// decodeStreamed decodes the JSON object in r into out, a pointer to a
// struct, but for the id lists named by lists, which it reads one id at a
// time (at most maxIDs in all) and returns in their order; the rest of
// the object is at most limit bytes, and its unknown fields are refused.
func decodeStreamed(r io.Reader, limit int64, maxIDs int, out any, lists ...string) ([][]string, error) {
	br := &budgetReader{r: r, left: limit, limit: limit}
	dec := json.NewDecoder(br)
	if t, err := dec.Token(); err != nil {
		return nil, err
	} else if t != json.Delim('{') {
		return nil, &json.UnmarshalTypeError{Value: jsonValueKind(t), Type: reflect.TypeOf(out).Elem(), Offset: dec.InputOffset()}
	}
	var (
		rest bytes.Buffer
		ids  = make([][]string, len(lists))
		have int
		seen = map[string]bool{}
	)
	rest.WriteByte('{')
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := t.(string)
		// encoding/json matches keys without regard to case: so must the
		// lists, or "UserID_List" would be decoded, then dropped unseen.
		list := -1
		for i, l := range lists {
			if strings.EqualFold(key, l) {
				key, list = l, i
			}
		}
		if seen[key] {
			return nil, &dingtalk.ValidationError{Field: key, Reason: "given twice"}
		}
		seen[key] = true
		switch {
		case list >= 0:
			l, err := decodeIDs(dec, br, key, have, maxIDs)
			if err != nil {
				return nil, err
			}
			ids[list] = l
			have += len(l)
		default:
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, err
			}
			if rest.Len() > 1 {
				rest.WriteByte(',')
			}
			k, _ := json.Marshal(key)
			rest.Write(k)
			rest.WriteByte(':')
			rest.Write(raw)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooBig *errBodyTooLarge
		if errors.As(err, &tooBig) {
			return nil, err
		}
		return nil, errTrailingData
	}
	rest.WriteByte('}')
	inner := json.NewDecoder(&rest)
	inner.DisallowUnknownFields()
	if err := inner.Decode(out); err != nil {
		return nil, err
	}
	return ids, nil
}

// decodeIDs reads one JSON array of string ids; with the have ids read
// before, at most max.
func decodeIDs(dec *json.Decoder, br *budgetReader, field string, have, max int) ([]string, error) {
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, nil
	}
	if t != json.Delim('[') {
		return nil, &dingtalk.ValidationError{Field: field, Reason: "must be a JSON array of strings, got " + jsonValueKind(t)}
	}
	var ids []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		id, ok := t.(string)
		if !ok {
			return nil, &dingtalk.ValidationError{Field: field + "[" + strconv.Itoa(len(ids)) + "]",
				Reason: "must be a JSON string, got " + jsonValueKind(t)}
		}
		if have+len(ids) >= max {
			return nil, &dingtalk.ValidationError{Field: field, Reason: fmt.Sprintf(
				"too many ids: at most %d ids (api.max_recipients) in one message", max)}
		}
		ids = append(ids, id)
		br.left += int64(len(id)) + idSlack
	}
	if _, err := dec.Token(); err != nil { // ']'
		return nil, err
	}
	return ids, nil
}

func jsonValueKind(t json.Token) string {
	switch t.(type) {
	case json.Delim:
		if t == json.Delim('{') {
			return "object"
		}
		return "array"
	case string:
		return "string"
	case float64, json.Number:
		return "number"
	case bool:
		return "boolean"
	case nil:
		return "null"
	}
	return "value"
}
