package config

import (
	"strconv"
)

// FieldError is a value that breaks a rule. Key is the key path as written
// in YAML, such as "dingtalk.apps[1].agent_id". Message never holds a
// secret.
type FieldError struct {
	Key     string
	Message string
}

// Error returns "key: message".
func (e *FieldError) Error() string {
	return e.Key + ": " + e.Message
}

// ParseError is a problem in the configuration text: bad YAML, an unknown
// key, a value of the wrong type or a ${NAME} that cannot be expanded.
// File is the path given to Load, empty for Parse; Line is 1-based, 0 when
// unknown. Message never holds a secret.
type ParseError struct {
	File    string
	Line    int
	Message string
}

// Error returns "file:line: message", leaving out the parts that are not
// known ("line 3: message" for Parse).
func (e *ParseError) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Message
	case e.File != "":
		return e.File + ": " + e.Message
	case e.Line > 0:
		return "line " + strconv.Itoa(e.Line) + ": " + e.Message
	default:
		return e.Message
	}
}

// EnvError is a DINGQ_ environment variable that cannot be applied: it
// names no key, names an app that does not exist, or holds a value of the
// wrong type. Name is the variable's name. Message never holds a secret.
type EnvError struct {
	Name    string
	Message string
}

// Error returns "name: message".
func (e *EnvError) Error() string {
	return e.Name + ": " + e.Message
}
