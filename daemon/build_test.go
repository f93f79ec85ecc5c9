package daemon

import (
	"errors"
	"maps"
	"testing"

	"github.com/plat-paas/plat/api"
	"github.com/plat-paas/plat/store"
)

func TestApplyBuildChange(t *testing.T) {
	str := func(s string) *string { return &s }
	before := store.BuildSettings{Args: map[string]string{"A": "1"}, Secrets: map[string]string{"tok": "x"}, Target: "web"}
	tests := []struct {
		name    string
		change  api.BuildChange
		want    store.BuildSettings
		wantErr bool
	}{
		{"set arg and secret", api.BuildChange{SetArgs: map[string]string{"B": "2"}, SetSecrets: map[string]string{"npm.token": "y"}},
			store.BuildSettings{Args: map[string]string{"A": "1", "B": "2"}, Secrets: map[string]string{"tok": "x", "npm.token": "y"}, Target: "web"}, false},
		{"unset all", api.BuildChange{UnsetArgs: []string{"A"}, UnsetSecrets: []string{"tok"}, Target: str("")},
			store.BuildSettings{}, false},
		{"target", api.BuildChange{Target: str("debug-1")}, store.BuildSettings{Args: before.Args, Secrets: before.Secrets, Target: "debug-1"}, false},
		{"nothing", api.BuildChange{}, before, true},
		{"BUILDKIT_ args are plat's", api.BuildChange{SetArgs: map[string]string{"BUILDKIT_CACHE_MOUNT_NS": "other"}}, before, true},
		{"bad arg name", api.BuildChange{SetArgs: map[string]string{"1A": "x"}}, before, true},
		{"bad secret id", api.BuildChange{SetSecrets: map[string]string{"a/b": "x"}}, before, true},
		{"bad target", api.BuildChange{Target: str("-x")}, before, true},
		{"too large", api.BuildChange{SetSecrets: map[string]string{"big": string(make([]byte, maxBuildSettingsBytes))}}, before, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := applyBuildChange(before, tt.change)
			if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, errBuildSettings)) {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !maps.Equal(got.Args, tt.want.Args) || !maps.Equal(got.Secrets, tt.want.Secrets) || got.Target != tt.want.Target {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if before.Args["B"] != "" || len(before.Secrets) != 1 {
		t.Error("applyBuildChange changed its input")
	}
}
