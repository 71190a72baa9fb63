package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/dingq/dingq/dingtalk"
)

const decodeTextMsg = `{"msgtype":"text","text":{"content":"hello"}}`

// idList returns a JSON array of n ids prefix0, prefix1… and the ids.
func idList(prefix string, n int) (string, []string) {
	ids := make([]string, n)
	var b strings.Builder
	b.WriteByte('[')
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%d", prefix, i)
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + ids[i] + `"`)
	}
	b.WriteByte(']')
	return b.String(), ids
}

// countingReader counts the bytes read from r.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestDecodeMessageLists(t *testing.T) {
	users, wantUsers := idList("u", 3)
	depts, wantDepts := idList("", 2)
	tests := []struct {
		name      string
		body      string
		wantUsers []string
		wantDepts []string
	}{
		{name: "lists before msg", body: `{"app":"hr","userid_list":` + users + `,"dept_id_list":` + depts + `,"msg":` + decodeTextMsg + `}`,
			wantUsers: wantUsers, wantDepts: wantDepts},
		{name: "lists after msg", body: `{"msg":` + decodeTextMsg + `,"dept_id_list":` + depts + `,"app":"hr","userid_list":` + users + `}`,
			wantUsers: wantUsers, wantDepts: wantDepts},
		{name: "lists first", body: `{"userid_list":` + users + `,"dept_id_list":` + depts + `,"app":"hr","msg":` + decodeTextMsg + `}`,
			wantUsers: wantUsers, wantDepts: wantDepts},
		{name: "white space", body: "\n{ \"app\" : \"hr\" ,\t\"userid_list\" : [ \"u0\" ,\n \"u1\" , \"u2\" ] , \"msg\" : " + decodeTextMsg + " }\n",
			wantUsers: wantUsers},
		{name: "null userid_list", body: `{"app":"hr","userid_list":null,"dept_id_list":` + depts + `,"msg":` + decodeTextMsg + `}`,
			wantDepts: wantDepts},
		{name: "null dept_id_list", body: `{"app":"hr","userid_list":` + users + `,"dept_id_list":null,"msg":` + decodeTextMsg + `}`,
			wantUsers: wantUsers},
		{name: "empty lists", body: `{"app":"hr","userid_list":[],"dept_id_list":[],"to_all_user":true,"msg":` + decodeTextMsg + `}`},
		{name: "no lists", body: `{"app":"hr","to_all_user":true,"msg":` + decodeTextMsg + `}`},
		{name: "list keys in other case", body: `{"app":"hr","UserID_List":` + users + `,"DEPT_ID_LIST":` + depts + `,"msg":` + decodeTextMsg + `}`,
			wantUsers: wantUsers, wantDepts: wantDepts},
		{name: "escaped id", body: `{"app":"hr","userid_list":["u\u0030","\"q\""],"msg":` + decodeTextMsg + `}`,
			wantUsers: []string{"u0", `"q"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := decodeMessage(strings.NewReader(tt.body), 1<<10, 1000)
			if err != nil {
				t.Fatalf("decodeMessage: %v", err)
			}
			if !slices.Equal(m.UserIDs, tt.wantUsers) {
				t.Errorf("UserIDs: got %q, want %q", m.UserIDs, tt.wantUsers)
			}
			if !slices.Equal(m.DeptIDs, tt.wantDepts) {
				t.Errorf("DeptIDs: got %q, want %q", m.DeptIDs, tt.wantDepts)
			}
			if m.App != "hr" {
				t.Errorf("App: got %q, want hr", m.App)
			}
			if m.Msg.MsgType != dingtalk.MsgTypeText || m.Msg.Text == nil || m.Msg.Text.Content != "hello" {
				t.Errorf("Msg: got %+v, want the text message", m.Msg)
			}
		})
	}
}

func TestDecodeMessageErrors(t *testing.T) {
	big := strings.Repeat("x", 2<<10)
	tests := []struct {
		name      string
		body      string
		wantField string // of a *dingtalk.ValidationError, or named in the error
		tooLarge  bool
	}{
		{name: "unknown field", body: `{"app":"hr","userid_list":["u1"],"priority_level":1,"msg":` + decodeTextMsg + `}`,
			wantField: "priority_level"},
		{name: "unknown field after the lists", body: `{"userid_list":["u1"],"dept_id_list":["1"],"colour":"red"}`,
			wantField: "colour"},
		{name: "number in a list", body: `{"userid_list":["u1",2]}`, wantField: "userid_list[1]"},
		{name: "null in a list", body: `{"dept_id_list":["1",null]}`, wantField: "dept_id_list[1]"},
		{name: "nested array", body: `{"userid_list":[["u1"]]}`, wantField: "userid_list[0]"},
		{name: "object in a list", body: `{"userid_list":[{"id":"u1"}]}`, wantField: "userid_list[0]"},
		{name: "list a string", body: `{"userid_list":"u1"}`, wantField: "userid_list"},
		{name: "list a number", body: `{"dept_id_list":5}`, wantField: "dept_id_list"},
		{name: "list given twice", body: `{"userid_list":["a"],"userid_list":["b"]}`, wantField: "userid_list"},
		{name: "list given twice in two cases", body: `{"userid_list":["a"],"UserID_List":["b"]}`, wantField: "userid_list"},
		{name: "number in a list in other case", body: `{"Dept_Id_List":["1",2]}`, wantField: "dept_id_list[1]"},
		{name: "key given twice", body: `{"app":"a","app":"b"}`, wantField: "app"},
		{name: "too many ids", body: `{"userid_list":["a","b"],"dept_id_list":["1","2"]}`, wantField: "dept_id_list"},
		{name: "big text with few ids", body: `{"app":"hr","userid_list":["u1"],"msg":{"msgtype":"text","text":{"content":"` + big + `"}}}`,
			tooLarge: true},
		{name: "big text after many ids", body: `{"userid_list":` + func() string { l, _ := idList("u", 3); return l }() +
			`,"msg":{"msgtype":"text","text":{"content":"` + big + `"}}}`, tooLarge: true},
		{name: "padding after the object", body: `{"app":"hr"}` + strings.Repeat(" ", 2<<10), tooLarge: true},
		{name: "trailing data", body: `{"app":"hr"} {}`},
		{name: "not an object", body: `["u1"]`},
		{name: "cut short", body: `{"userid_list":["u1",`},
		{name: "empty", body: ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := decodeMessage(strings.NewReader(tt.body), 1<<10, 3)
			if err == nil {
				t.Fatalf("decodeMessage: got %+v, want an error", m)
			}
			var tooBig *errBodyTooLarge
			if got := errors.As(err, &tooBig); got != tt.tooLarge {
				t.Errorf("error %v: *errBodyTooLarge %v, want %v", err, got, tt.tooLarge)
			}
			if tt.wantField != "" {
				_, field, msg := decodeError(err)
				if field != tt.wantField {
					t.Errorf("error %v: field %q, want %q (message %q)", err, field, tt.wantField, msg)
				}
			}
		})
	}
}

// TestDecodeMessageBudget: the id lists do not count against the limit,
// everything else does.
func TestDecodeMessageBudget(t *testing.T) {
	const limit = 1 << 10
	users, want := idList("user-", 200_000)
	body := `{"app":"hr","userid_list":` + users + `,"msg":` + decodeTextMsg + `}`
	if len(body) < 1000*limit {
		t.Fatalf("body of %d bytes: want far more than the %d-byte limit", len(body), limit)
	}
	m, err := decodeMessage(strings.NewReader(body), limit, 1_000_000)
	if err != nil {
		t.Fatalf("decodeMessage of 200,000 ids: %v", err)
	}
	if !slices.Equal(m.UserIDs, want) {
		t.Errorf("UserIDs: got %d ids, want the 200,000", len(m.UserIDs))
	}

	// A 100 KB id is refused at the limit, without reading on.
	long := strings.Repeat("u", 100<<10)
	cr := &countingReader{r: strings.NewReader(`{"app":"hr","userid_list":["` + long + `","u2"],"msg":` + decodeTextMsg + `}`)}
	_, err = decodeMessage(cr, limit, 1_000_000)
	var tooBig *errBodyTooLarge
	if !errors.As(err, &tooBig) {
		t.Fatalf("decodeMessage of a 100 KB id: got %v, want *errBodyTooLarge", err)
	}
	if tooBig.limit != limit {
		t.Errorf("errBodyTooLarge.limit: got %d, want %d", tooBig.limit, limit)
	}
	if cr.n > 2*limit {
		t.Errorf("bytes read: got %d, want at most about the %d-byte limit", cr.n, limit)
	}
}

// TestDecodeMessageExactLimit: a body of exactly limit bytes is taken, one
// byte more is not.
func TestDecodeMessageExactLimit(t *testing.T) {
	base := `{"app":"hr","to_all_user":true,"msg":{"msgtype":"text","text":{"content":""}}}`
	const limit = 256
	pad := limit - len(base)
	exact := strings.Replace(base, `"content":""`, `"content":"`+strings.Repeat("x", pad)+`"`, 1)
	if len(exact) != limit {
		t.Fatalf("body of %d bytes, want %d", len(exact), limit)
	}
	if _, err := decodeMessage(strings.NewReader(exact), limit, 10); err != nil {
		t.Errorf("body of exactly the limit: got %v, want nil", err)
	}
	var tooBig *errBodyTooLarge
	if _, err := decodeMessage(strings.NewReader(exact+" "), limit, 10); !errors.As(err, &tooBig) {
		t.Errorf("body one byte over the limit: got %v, want *errBodyTooLarge", err)
	}
	// Byte at a time: the reader's EOF comes on its own call.
	if _, err := decodeMessage(&oneByteReader{r: strings.NewReader(exact)}, limit, 10); err != nil {
		t.Errorf("body of exactly the limit read a byte at a time: got %v, want nil", err)
	}
}

// oneByteReader reads one byte per call.
type oneByteReader struct{ r io.Reader }

func (o *oneByteReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

// BenchmarkDecodeMillionIDs decodes a request of 1,000,000 user ids.
func BenchmarkDecodeMillionIDs(b *testing.B) {
	const n = 1_000_000
	var buf bytes.Buffer
	buf.WriteString(`{"app":"hr","msg":` + decodeTextMsg + `,"userid_list":[`)
	for i := range n {
		if i > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `"user%07d"`, i)
	}
	buf.WriteString(`]}`)
	body := buf.Bytes()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		m, err := decodeMessage(bytes.NewReader(body), DefaultMaxBodyBytes, n)
		if err != nil {
			b.Fatal(err)
		}
		if len(m.UserIDs) != n {
			b.Fatalf("UserIDs: got %d, want %d", len(m.UserIDs), n)
		}
	}
}
