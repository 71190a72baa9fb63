package dingtalk

import "fmt"

// ValidationError reports a request that DingTalk would refuse, found before
// any call. Field is the JSON path of the offending field as DingTalk and
// dingq's HTTP API spell it, for example "msg.text.content" or "userid_list".
type ValidationError struct {
	Field  string
	Reason string
}

// Error implements error.
func (e *ValidationError) Error() string {
	return fmt.Sprintf("%s: %s", e.Field, e.Reason)
}

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// prefixed returns err with its field path put under prefix, or err itself
// when it is not a *ValidationError.
func prefixed(prefix string, err error) error {
	if ve, ok := err.(*ValidationError); ok && ve != nil {
		return &ValidationError{Field: prefix + "." + ve.Field, Reason: ve.Reason}
	}
	return err
}
