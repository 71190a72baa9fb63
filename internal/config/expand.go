package config

import (
	"regexp"
	"strings"
)

// varRefRE finds the names a text mentions as ${NAME} or ${NAME:-default}.
var varRefRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)`)

// expandError is why a value could not be expanded, and where in it.
type expandError struct {
	offset  int // byte offset of the '$' in the value
	message string
}

// expand replaces ${NAME} with the value of NAME, ${NAME:-default} with
// default when NAME is unset or empty, and $$ with $. Any other $ is kept.
// An error message names at most the variable, never the value's text, as
// the value may be a secret.
func expand(s string, lookup func(string) (string, bool)) (string, *expandError) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i += 2
			continue
		case '{':
		default:
			b.WriteByte(c)
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", &expandError{i, `"${" has no closing "}" (write $$ for a literal $)`}
		}
		body := s[i+2 : i+2+end]
		name, def, hasDef := strings.Cut(body, ":-")
		if !isVarName(name) {
			return "", &expandError{i, "invalid variable name in ${...} (write $$ for a literal $)"}
		}
		val, ok := lookup(name)
		switch {
		case hasDef && val == "":
			val = def
		case !ok:
			return "", &expandError{i, "${" + name + "} is not set"}
		}
		b.WriteString(val)
		i += 2 + end + 1
	}
	return b.String(), nil
}

// isVarName reports whether s is a shell-style variable name.
func isVarName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// referencedVars returns every name data mentions as ${NAME}, comments
// included. Such variables are meant for expansion, so a DINGQ_ one among
// them is not mistaken for an unknown override.
func referencedVars(data []byte) map[string]bool {
	refs := make(map[string]bool)
	for _, m := range varRefRE.FindAllSubmatch(data, -1) {
		refs[string(m[1])] = true
	}
	return refs
}

// envMap turns an environ slice ("KEY=value") into a map; a later entry
// wins over an earlier one, as with exec.Cmd.Env.
func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue
		}
		m[k] = v
	}
	return m
}
