package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	envPrefix     = "DINGQ_"
	envConfigFile = "DINGQ_CONFIG"
	envTestPrefix = "DINGQ_TEST_"
)

var durationType = reflect.TypeFor[time.Duration]()

// applyEnv applies the DINGQ_ overrides in env to c. Names in refs (those
// the file expands) may be unknown to the overrides without an error.
func applyEnv(c *Config, env map[string]string, refs map[string]bool) error {
	names := make([]string, 0, len(env))
	for name := range env {
		if strings.HasPrefix(name, envPrefix) && name != envConfigFile && !strings.HasPrefix(name, envTestPrefix) {
			names = append(names, name)
		}
	}
	sort.Strings(names)

	var errs []error
	for _, name := range names {
		t, err := findEnvTarget(reflect.ValueOf(c).Elem(), strings.TrimPrefix(name, envPrefix), "")
		if err != "" {
			errs = append(errs, &EnvError{Name: name, Message: err})
			continue
		}
		if !t.v.IsValid() {
			if !refs[name] {
				errs = append(errs, &EnvError{Name: name, Message: "names no configuration key (DINGQ_CONFIG and DINGQ_TEST_* are ignored)"})
			}
			continue
		}
		if msg := setFromEnv(t, env[name]); msg != "" {
			errs = append(errs, &EnvError{Name: name, Message: msg})
		}
	}
	return errors.Join(errs...)
}

// envTarget is the field a DINGQ_ variable sets.
type envTarget struct {
	v      reflect.Value
	key    string // as written in YAML, e.g. dingtalk.apps[0].app_secret
	secret bool
}

// findEnvTarget finds the leaf field of struct v that rest (the variable's
// name without DINGQ_ and without the part already matched) names. It
// returns a zero target when there is none, and a message when rest names a
// field of a list item that does not exist.
func findEnvTarget(v reflect.Value, rest, prefix string) (envTarget, string) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name := yamlName(f)
		if name == "" {
			continue
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		upper := strings.ToUpper(name)
		fv := v.Field(i)
		switch {
		case isLeaf(f.Type):
			if rest == upper {
				return envTarget{fv, key, f.Tag.Get("secret") == "true"}, ""
			}
		case f.Type.Kind() == reflect.Struct:
			if tail, ok := strings.CutPrefix(rest, upper+"_"); ok {
				if t, msg := findEnvTarget(fv, tail, key); t.v.IsValid() || msg != "" {
					return t, msg
				}
			}
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			tail, ok := strings.CutPrefix(rest, upper+"_")
			if !ok {
				continue
			}
			digits, field, ok := strings.Cut(tail, "_")
			if !ok || !isDigits(digits) {
				continue
			}
			idx, err := strconv.Atoi(digits)
			elemKey := key + "[" + digits + "]"
			if err == nil && idx < fv.Len() {
				if t, msg := findEnvTarget(fv.Index(idx), field, elemKey); t.v.IsValid() || msg != "" {
					return t, msg
				}
				continue
			}
			// Report a missing item only if the rest names a real field.
			// (a message from a list inside the item says that much too)
			if t, msg := findEnvTarget(reflect.New(f.Type.Elem()).Elem(), field, elemKey); t.v.IsValid() || msg != "" {
				return envTarget{}, fmt.Sprintf("%s does not exist: %s has %d items", elemKey, key, fv.Len())
			}
		}
	}
	return envTarget{}, ""
}

// setFromEnv parses s into t. An empty s sets the zero value, which means
// the key's default. The message names the key and, unless it is secret,
// the bad value.
func setFromEnv(t envTarget, s string) string {
	if s == "" {
		t.v.SetZero()
		return ""
	}
	bad := func(want string) string {
		if t.secret {
			return fmt.Sprintf("want %s for %s", want, t.key)
		}
		return fmt.Sprintf("want %s for %s, got %q", want, t.key, s)
	}
	typ := t.v.Type()
	if typ.Kind() == reflect.Pointer {
		// An optional value: set, even to zero, it is no longer the default.
		elem := reflect.New(typ.Elem())
		if msg := setFromEnv(envTarget{elem.Elem(), t.key, t.secret}, s); msg != "" {
			return msg
		}
		t.v.Set(elem)
		return ""
	}
	switch {
	case typ == durationType:
		d, err := time.ParseDuration(s)
		if err != nil {
			return bad("a duration such as 10s or 1m30s")
		}
		t.v.SetInt(int64(d))
	case typ.Kind() == reflect.String:
		t.v.SetString(s)
	case typ.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return bad("true or false")
		}
		t.v.SetBool(b)
	case typ.Kind() >= reflect.Int && typ.Kind() <= reflect.Int64:
		n, err := strconv.ParseInt(s, 10, typ.Bits())
		if err != nil {
			return bad("an integer")
		}
		t.v.SetInt(n)
	case typ.Kind() >= reflect.Uint && typ.Kind() <= reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, typ.Bits())
		if err != nil {
			return bad("a non-negative integer")
		}
		t.v.SetUint(n)
	case typ.Kind() == reflect.Float32 || typ.Kind() == reflect.Float64:
		n, err := strconv.ParseFloat(s, typ.Bits())
		if err != nil {
			return bad("a number")
		}
		t.v.SetFloat(n)
	case typ.Kind() == reflect.Slice && typ.Elem().Kind() == reflect.String:
		var items []string
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		list := reflect.MakeSlice(typ, len(items), len(items))
		for i, item := range items {
			list.Index(i).SetString(item)
		}
		t.v.Set(list)
	default:
		return "cannot be set from the environment"
	}
	return ""
}

// isLeaf reports whether a field of type t holds one value a DINGQ_
// variable can set, as opposed to a section or a list of sections.
func isLeaf(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer:
		return t.Elem().Kind() != reflect.Slice && isLeaf(t.Elem())
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	case reflect.Slice:
		return t.Elem().Kind() == reflect.String
	}
	return false
}

// yamlName returns the key a struct field is written as in YAML, or "" for
// a field YAML skips.
func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	switch name {
	case "-":
		return ""
	case "":
		return strings.ToLower(f.Name)
	}
	return name
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
