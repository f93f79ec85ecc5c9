package deploy

import (
	"fmt"
	"io"
	"testing"
)

func TestProgressKeepsLatestDeployOutput(t *testing.T) {
	var d Deployer
	if _, ok := d.Progress("web", 0); ok {
		t.Fatal("progress before any deploy")
	}
	out, done := d.progress.track("web", 3, io.Discard)
	fmt.Fprint(out, "one\ntw")
	fmt.Fprint(out, "o\nthree")
	tests := []struct {
		from int
		want string
	}{{0, "[one two]"}, {1, "[two]"}, {5, "[]"}}
	for _, tt := range tests {
		p, ok := d.Progress("web", tt.from)
		if !ok || !p.Running || p.Version != 3 || fmt.Sprint(p.Lines) != tt.want {
			t.Fatalf("from %d: %+v, want running v3 %s", tt.from, p, tt.want)
		}
	}
	done()
	p, _ := d.Progress("web", 0)
	if p.Running || fmt.Sprint(p.Lines) != "[one two three]" {
		t.Fatalf("after done: %+v", p)
	}
}
