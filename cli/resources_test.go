package cli

import (
	"strings"
	"testing"
)

func TestParseBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  bool
	}{
		{"512m", 512 << 20, false},
		{"512M", 512 << 20, false},
		{"1g", 1 << 30, false},
		{"1GiB", 1 << 30, false},
		{"1.5g", 3 << 29, false},
		{"256mb", 256 << 20, false},
		{"64k", 64 << 10, false},
		{"1048576", 1 << 20, false},
		{"", 0, true},
		{"m", 0, true},
		{"0", 0, true},
		{"-5m", 0, true},
		{"5t", 0, true},
		{"1e30g", 0, true},
	} {
		got, err := parseBytes(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestParseResources(t *testing.T) {
	for _, tc := range []struct {
		name          string
		given         []string
		mem, cpus, ro string
		wantMem       int64
		wantCPUs      float64
		wantRO        *bool
		errContains   string
	}{
		{name: "nothing", errContains: "nothing to change"},
		{name: "all", given: []string{"memory", "cpus", "read-only"}, mem: "256m", cpus: "0.5", ro: "on", wantMem: 256 << 20, wantCPUs: 0.5, wantRO: new(true)},
		{name: "read-only off", given: []string{"read-only"}, ro: "off", wantRO: new(false)},
		{name: "bad read-only", given: []string{"read-only"}, ro: "maybe", errContains: "give on or off"},
		{name: "bad cpus", given: []string{"cpus"}, cpus: "half", errContains: "positive number of CPUs"},
		{name: "zero cpus", given: []string{"cpus"}, cpus: "0", errContains: "positive number of CPUs"},
		{name: "bad memory", given: []string{"memory"}, mem: "lots", errContains: "like 256m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			given := map[string]bool{}
			for _, g := range tc.given {
				given[g] = true
			}
			c, err := parseResources(given, tc.mem, tc.cpus, tc.ro)
			if tc.errContains != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errContains) {
					t.Fatalf("error %v, want one containing %q", err, tc.errContains)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (c.MemoryBytes != nil && *c.MemoryBytes != tc.wantMem) || (c.MemoryBytes == nil) != (tc.wantMem == 0) {
				t.Errorf("memory %v, want %d", c.MemoryBytes, tc.wantMem)
			}
			if (c.CPUs != nil && *c.CPUs != tc.wantCPUs) || (c.CPUs == nil) != (tc.wantCPUs == 0) {
				t.Errorf("cpus %v, want %v", c.CPUs, tc.wantCPUs)
			}
			if (c.ReadOnly == nil) != (tc.wantRO == nil) || (c.ReadOnly != nil && *c.ReadOnly != *tc.wantRO) {
				t.Errorf("read-only %v, want %v", c.ReadOnly, tc.wantRO)
			}
		})
	}
}
