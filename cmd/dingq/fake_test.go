package main

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/dingq/dingq/dingtalk/fake"
)

func TestDeliveryFlagsApply(t *testing.T) {
	tests := []struct {
		name  string
		flags deliveryFlags
		want  string // in the error; "" for none
	}{
		{name: "defaults"},
		{name: "every flag", flags: deliveryFlags{noDailyLimits: true, deliveryTime: time.Minute,
			results: fake.Results{Invalid: .1, ForbiddenDaily: .05, ForbiddenSame: .05, Failed: .02, Read: .5}}},
		{name: "fractions summing to 1", flags: deliveryFlags{results: fake.Results{Invalid: .5, Failed: .5, Read: 1}}},
		{name: "negative delivery time", flags: deliveryFlags{deliveryTime: -time.Second}, want: "--delivery-time must be >= 0"},
		{name: "negative invalid", flags: deliveryFlags{results: fake.Results{Invalid: -.1}}, want: "--result-invalid must be a fraction between 0 and 1, got -0.1"},
		{name: "forbidden daily over 1", flags: deliveryFlags{results: fake.Results{ForbiddenDaily: 2}}, want: "--result-forbidden-daily must be"},
		{name: "forbidden same NaN", flags: deliveryFlags{results: fake.Results{ForbiddenSame: math.NaN()}}, want: "--result-forbidden-same must be"},
		{name: "failed over 1", flags: deliveryFlags{results: fake.Results{Failed: 1.5}}, want: "--result-failed must be"},
		{name: "read over 1", flags: deliveryFlags{results: fake.Results{Read: 1.01}}, want: "--result-read must be"},
		{name: "sum over 1", flags: deliveryFlags{results: fake.Results{Invalid: .6, ForbiddenSame: .6}},
			want: "--result-invalid + --result-forbidden-daily + --result-forbidden-same + --result-failed must be at most 1, got 1.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts fake.Options
			err := tt.flags.apply(&opts)
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("apply: %v, want an error with %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("apply: %v", err)
			}
			if opts.NoDailyLimits != tt.flags.noDailyLimits || opts.DeliveryTime != tt.flags.deliveryTime ||
				opts.Results == nil || *opts.Results != tt.flags.results {
				t.Errorf("options = %+v (results %v), want the flags' %+v", opts, opts.Results, tt.flags)
			}
			fake.New(nil, &opts) // panics on options that do not validate
		})
	}
}

func TestFakeCmdDeliveryFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in the error; "" for none
	}{
		{name: "valid", args: []string{"--delivery-time", "30s", "--result-invalid", "0.1", "--result-forbidden-daily", "0.05",
			"--result-forbidden-same", "0.05", "--result-failed", "0.02", "--result-read", "0.5", "--no-daily-limits"}},
		{name: "not a duration", args: []string{"--delivery-time", "soon"}, want: `"--delivery-time"`},
		{name: "negative duration", args: []string{"--delivery-time", "-1s"}, want: "--delivery-time must be >= 0"},
		{name: "not a number", args: []string{"--result-read", "half"}, want: `"--result-read"`},
		{name: "fraction over 1", args: []string{"--result-failed", "1.5"}, want: "--result-failed must be a fraction between 0 and 1, got 1.5"},
		{name: "sum over 1", args: []string{"--result-invalid", "0.7", "--result-forbidden-same", "0.7"}, want: "must be at most 1, got 1.4"},
		{name: "no-daily-limits takes no value", args: []string{"--no-daily-limits=maybe"}, want: `"--no-daily-limits"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := newFakeCmd()
			var out bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			cmd.SetArgs(append([]string{"--listen", "127.0.0.1:0", "--app", "dingfaketest:s3cret:1"}, tt.args...))
			// A valid command serves until its context ends: at once.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			err := cmd.ExecuteContext(ctx)
			if tt.want == "" {
				if err != nil || !strings.Contains(out.String(), "fake DingTalk listening on") {
					t.Errorf("got %v, output %q; want it to listen", err, out.String())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
}
