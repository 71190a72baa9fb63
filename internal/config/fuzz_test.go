package config

import (
	"os"
	"strings"
	"testing"
)

// FuzzLoad feeds the loader arbitrary text and environments. It must never
// panic, every error it returns must be one of the package's typed errors,
// and a Config it returns must pass Validate.
func FuzzLoad(f *testing.F) {
	example, err := os.ReadFile("../../config.yaml")
	if err != nil {
		f.Fatal(err)
	}
	const env = "DINGQ_HR_APP_SECRET=hr-secret\nDINGQ_API_TOKEN=0123456789abcdef\nX=1"
	f.Add(example, env)
	f.Add(example, "")
	f.Add([]byte(appYAML), "DINGQ_DINGTALK_APPS_0_AGENT_ID=x\nDINGQ_API_TOKENS=a,b")
	f.Add([]byte(appYAML), "DINGQ_DINGTALK_APPS_9_NAME=x\nDINGQ_TYPO=1")
	f.Add([]byte("redis: {db: ${X:-1}, password: $${X}}\n"), env)
	f.Add([]byte("a: &a [*a]\nredis: *a\n"), "")
	f.Add([]byte("dingtalk:\n  apps:\n    - &x {name: a}\n    - <<: [*x, *x]\n"), "")
	f.Add([]byte("redis:\n  password: |\n    ${NOPE}\n---\n"), "")
	f.Add([]byte("? [a]\n: b\n"), "")
	f.Add([]byte("redis: !!binary aGVsbG8=\nlog: {level: !!int x}\n"), "")

	f.Fuzz(func(t *testing.T, data []byte, env string) {
		c, err := Parse(data, strings.Split(env, "\n"))
		if err == nil {
			if c == nil {
				t.Fatal("Parse returned neither a Config nor an error")
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("Parse returned a Config that fails Validate: %v", err)
			}
			return
		}
		if c != nil {
			t.Fatalf("Parse returned a Config with the error %v", err)
		}
		for _, e := range leafErrors(err) {
			switch e.(type) {
			case *ParseError, *EnvError, *FieldError:
			default:
				t.Fatalf("error %q is a %T, not a typed error", e, e)
			}
		}
	})
}
