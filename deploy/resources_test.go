package deploy

import (
	"errors"
	"strings"
	"testing"

	"github.com/plat-paas/plat/engine"
	"github.com/plat-paas/plat/store"
)

func TestResourcesChangeCheck(t *testing.T) {
	host := engine.Capacity{CPUs: 2, MemoryBytes: 4 << 30}
	i64 := func(n int64) *int64 { return &n }
	for _, tc := range []struct {
		name   string
		change ResourcesChange
		want   string // "" means valid
	}{
		{"nothing", ResourcesChange{}, "nothing to change"},
		{"read-only only", ResourcesChange{ReadOnly: new(true)}, ""},
		{"memory ok", ResourcesChange{MemoryBytes: i64(256 << 20)}, ""},
		{"memory at minimum", ResourcesChange{MemoryBytes: i64(MinMemoryBytes)}, ""},
		{"memory too small", ResourcesChange{MemoryBytes: i64(1 << 20)}, "below the minimum of 16 MiB"},
		{"memory above host", ResourcesChange{MemoryBytes: i64(8 << 30)}, "more than the host has (4 GiB)"},
		{"cpus ok", ResourcesChange{NanoCPUs: i64(5e8)}, ""},
		{"cpus all of host", ResourcesChange{NanoCPUs: i64(2e9)}, ""},
		{"cpus too small", ResourcesChange{NanoCPUs: i64(1e6)}, "below the minimum of 0.01"},
		{"cpus above host", ResourcesChange{NanoCPUs: i64(3e9)}, "more than the host has (2)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.change.check(host)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidResources) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrInvalidResources saying %q", err, tc.want)
			}
		})
	}
}

func TestDescribeResources(t *testing.T) {
	for _, tc := range []struct {
		r    store.Resources
		want string
	}{
		{store.Resources{MemoryBytes: 512 << 20, NanoCPUs: 1e9}, "memory 512 MiB, 1 CPU, read-only off"},
		{store.Resources{MemoryBytes: 1 << 30, NanoCPUs: 5e8, ReadOnly: true}, "memory 1 GiB, 0.5 CPU, read-only on"},
		{store.Resources{MemoryBytes: 3 << 29, NanoCPUs: 2_250_000_000}, "memory 1536 MiB, 2.25 CPUs, read-only off"},
		{store.Resources{MemoryBytes: 1000, NanoCPUs: 1e7}, "memory 1000 B, 0.01 CPU, read-only off"},
	} {
		if got := DescribeResources(tc.r); got != tc.want {
			t.Errorf("DescribeResources(%+v) = %q, want %q", tc.r, got, tc.want)
		}
	}
}

func TestEffectiveResources(t *testing.T) {
	sp := &specs{cfg: Config{}.withDefaults()}
	got := sp.effectiveResources(store.Resources{ReadOnly: true})
	want := store.Resources{MemoryBytes: DefaultMemoryBytes, NanoCPUs: DefaultNanoCPUs, ReadOnly: true}
	if got != want {
		t.Errorf("effectiveResources = %+v, want %+v", got, want)
	}
}
