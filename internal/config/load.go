package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxParseErrors bounds how many problems with the text are reported.
const maxParseErrors = 20

// Load reads the YAML file at path and returns its configuration: ${NAME}
// expanded and DINGQ_ overrides applied from os.Environ, defaults set, and
// validated. An error reading the file is returned as it is (an
// *fs.PathError); others are a *ParseError (whose message starts with
// path), *EnvError or *FieldError, or several of them joined with
// errors.Join.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parse(path, data, os.Environ())
}

// Parse does what Load does with data in memory and environ, a list of
// "KEY=value" strings like os.Environ's, in place of the process
// environment. When a key is given twice in environ the later one wins.
func Parse(data []byte, environ []string) (*Config, error) {
	return parse("", data, environ)
}

func parse(file string, data []byte, environ []string) (*Config, error) {
	env := envMap(environ)
	l := &loader{
		file:     file,
		env:      env,
		done:     make(map[walkKey]bool),
		expanded: make(map[*yaml.Node]bool),
	}
	var c Config
	doc, err := l.document(data)
	if err != nil {
		return nil, err
	}
	if doc != nil {
		for _, n := range doc.Content {
			l.walk(n, reflect.TypeFor[Config](), "")
		}
		if len(l.errs) > 0 {
			if l.truncated {
				l.errs = append(l.errs, &ParseError{File: file, Message: fmt.Sprintf("stopped after %d errors", maxParseErrors)})
			}
			return nil, errors.Join(l.errs...)
		}
		if err := doc.Decode(&c); err != nil {
			return nil, l.yamlError(err)
		}
	}
	if err := applyEnv(&c, env, referencedVars(data)); err != nil {
		return nil, err
	}
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// loader checks a YAML node tree against Config's fields, expanding ${NAME}
// in the values on the way.
type loader struct {
	file      string
	env       map[string]string
	errs      []error
	truncated bool
	done      map[walkKey]bool    // nodes checked, by the type checked against
	expanded  map[*yaml.Node]bool // scalars expanded; an alias must not expand twice
}

type walkKey struct {
	n *yaml.Node
	t reflect.Type
}

// document parses data as a single YAML document. It returns nil for a
// text with no document at all.
func (l *loader) document(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, l.yamlError(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
		return &doc, nil
	case err != nil:
		return nil, l.yamlError(err)
	default:
		return nil, &ParseError{File: l.file, Line: extra.Line, Message: "only one YAML document is allowed"}
	}
}

func (l *loader) fail(line int, format string, args ...any) {
	if len(l.errs) >= maxParseErrors {
		l.truncated = true
		return
	}
	l.errs = append(l.errs, &ParseError{File: l.file, Line: line, Message: fmt.Sprintf(format, args...)})
}

// walk checks node n against type t; key is n's key path as written in
// YAML. No message shows a value, so secrets need no special care.
func (l *loader) walk(n *yaml.Node, t reflect.Type, key string) {
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			l.fail(n.Line, "%s: alias to nothing", describeKey(key))
			return
		}
		n = n.Alias
	}
	k := walkKey{n, t}
	if l.done[k] {
		return
	}
	l.done[k] = true
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // an empty value leaves the zero value, the default
	}
	switch {
	case t.Kind() == reflect.Struct:
		l.mapping(n, t, key)
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			l.fail(n.Line, "%s: want a list, got %s", describeKey(key), describeNode(n))
			return
		}
		for i, item := range n.Content {
			l.walk(item, t.Elem(), key+"["+strconv.Itoa(i)+"]")
		}
	default:
		l.scalar(n, t, key)
	}
}

// mapping checks that n is a mapping whose keys are all fields of struct t.
func (l *loader) mapping(n *yaml.Node, t reflect.Type, key string) {
	if n.Kind != yaml.MappingNode {
		l.fail(n.Line, "%s: want a mapping, got %s", describeKey(key), describeNode(n))
		return
	}
	fields := make(map[string]reflect.StructField, t.NumField())
	for i := range t.NumField() {
		if name := yamlName(t.Field(i)); name != "" {
			fields[name] = t.Field(i)
		}
	}
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		if kn.Kind == yaml.AliasNode && kn.Alias != nil {
			kn = kn.Alias
		}
		if kn.Kind != yaml.ScalarNode {
			l.fail(kn.Line, "%s: want a plain key, got %s", describeKey(key), describeNode(kn))
			continue
		}
		if kn.ShortTag() == "!!merge" {
			l.merge(vn, t, key)
			continue
		}
		full := kn.Value
		if key != "" {
			full = key + "." + kn.Value
		}
		if first, dup := seen[kn.Value]; dup {
			l.fail(kn.Line, "key %q is given twice (first on line %d)", full, first)
			continue
		}
		seen[kn.Value] = kn.Line
		f, ok := fields[kn.Value]
		switch {
		case !ok && keyLikeRE.MatchString(kn.Value):
			l.fail(kn.Line, "unknown key %q", full)
			continue
		case !ok:
			// A value written where a key goes (a secret, say, in
			// "webhooks: [{SEC…}]") is not repeated in the error.
			l.fail(kn.Line, "%s: unknown key (not shown: it does not look like a key and may be a value)", describeKey(key))
			continue
		}
		l.walk(vn, f.Type, full)
	}
}

// merge checks the value of a "<<" merge key: a mapping or a list of them.
func (l *loader) merge(n *yaml.Node, t reflect.Type, key string) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		l.walk(n, t, key)
	case yaml.SequenceNode:
		for _, item := range n.Content {
			if item.Kind == yaml.AliasNode && item.Alias != nil {
				item = item.Alias
			}
			if item.Kind != yaml.MappingNode {
				l.fail(item.Line, "%s: << wants a mapping or a list of mappings", describeKey(key))
				continue
			}
			l.walk(item, t, key)
		}
	default:
		l.fail(n.Line, "%s: << wants a mapping or a list of mappings", describeKey(key))
	}
}

// scalar expands ${NAME} in n and checks that the result fits type t. Its
// messages never show the value.
func (l *loader) scalar(n *yaml.Node, t reflect.Type, key string) {
	if n.Kind != yaml.ScalarNode {
		l.fail(n.Line, "%s: want %s, got %s", key, describeType(t), describeNode(n))
		return
	}
	if !l.expanded[n] {
		l.expanded[n] = true
		v, err := expand(n.Value, func(name string) (string, bool) {
			v, ok := l.env[name]
			return v, ok
		})
		if err != nil {
			line := n.Line
			if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
				// A block scalar's text starts on the line after its indicator.
				line += 1 + strings.Count(n.Value[:err.offset], "\n")
			}
			l.fail(line, "%s", err.message)
			return
		}
		if v != n.Value {
			n.Value = v
			if n.Style == 0 && t.Kind() != reflect.String {
				// A plain scalar's type comes from its text: resolve it again,
				// so that "db: ${DB}" can be an integer. A string stays a
				// string, so that a secret "null" is not lost.
				n.Tag = ""
			}
		}
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		l.fail(n.Line, "%s: want %s", key, describeType(t))
	}
}

// yamlLineRE splits yaml.v3's "line 3: message".
var yamlLineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// quotedValueRE finds a value yaml.v3 quotes in a message, which could be
// a secret.
var quotedValueRE = regexp.MustCompile("`[^`]*`")

// yamlError turns an error from yaml.v3 into *ParseErrors.
func (l *loader) yamlError(err error) error {
	var msgs []string
	if te, ok := errors.AsType[*yaml.TypeError](err); ok {
		msgs = te.Errors
	} else {
		msgs = []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	errs := make([]error, 0, len(msgs))
	for _, msg := range msgs {
		pe := &ParseError{File: l.file, Message: msg}
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			pe.Line, _ = strconv.Atoi(m[1])
			pe.Message = m[2]
		}
		pe.Message = quotedValueRE.ReplaceAllString(pe.Message, "value")
		errs = append(errs, pe)
	}
	return errors.Join(errs...)
}

// keyLikeRE is what a key of dingq's configuration looks like; the longest
// is 21 characters.
var keyLikeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,31}$`)

func describeKey(key string) string {
	if key == "" {
		return "top level"
	}
	return key
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}

func describeType(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration such as 10s or 1m30s"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "an integer"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	}
	return t.String()
}
