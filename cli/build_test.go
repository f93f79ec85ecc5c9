package cli

import (
	"flag"
	"io"
	"reflect"
	"testing"

	"github.com/plat-paas/plat/api"
)

func TestBuildFlagsChange(t *testing.T) {
	str := func(s string) *string { return &s }
	tests := []struct {
		name    string
		unset   bool
		args    []string
		want    api.BuildChange
		wantErr bool
	}{
		{"set all", false, []string{"--build-arg", "A=1", "--build-arg", "B=x=y", "--build-secret", "tok=s", "--build-target", "web"},
			api.BuildChange{SetArgs: map[string]string{"A": "1", "B": "x=y"}, SetSecrets: map[string]string{"tok": "s"}, Target: str("web")}, false},
		{"empty target is the last stage", false, []string{"--build-target", ""}, api.BuildChange{Target: str("")}, false},
		{"none", false, nil, api.BuildChange{}, false},
		{"set needs KEY=VALUE", false, []string{"--build-arg", "A"}, api.BuildChange{}, true},
		{"unset", true, []string{"--build-arg", "A", "--build-secret", "tok", "--build-target"},
			api.BuildChange{UnsetArgs: []string{"A"}, UnsetSecrets: []string{"tok"}, Target: str("")}, false},
		{"unset takes keys", true, []string{"--build-secret", "tok=s"}, api.BuildChange{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			var bf buildFlags
			bf.register(fs, tt.unset)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			got, err := bf.change(fs, !tt.unset)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err == nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
