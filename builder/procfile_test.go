package builder

import (
	"archive/tar"
	"bytes"
	"errors"
	"maps"
	"strings"
	"testing"
)

func TestParseProcfile(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr string // substring; "" means no error
	}{
		{name: "empty", in: "", want: nil},
		{name: "comments and blanks", in: "# a comment\n\n   \n", want: nil},
		{name: "web and release", in: "web: ./server --port $PORT\nrelease: ./migrate up\n",
			want: map[string]string{"web": "./server --port $PORT", "release": "./migrate up"}},
		{name: "spaces around the colon, CRLF", in: "release :  ./migrate up  \r\n", want: map[string]string{"release": "./migrate up"}},
		{name: "colon inside the command", in: "web: echo a:b", want: map[string]string{"web": "echo a:b"}},
		{name: "unknown process type", in: "web: ./server\nworker: ./jobs\n", wantErr: `line 2: unknown process type "worker"`},
		{name: "twice", in: "release: a\nrelease: b\n", wantErr: `"release" is given twice`},
		{name: "no command", in: "release:\n", wantErr: `"release" has no command`},
		{name: "not a line", in: "just words\n", wantErr: `line 1 "just words" is not "type: command"`},
		{name: "too large", in: "web: " + strings.Repeat("x", maxProcfileBytes), wantErr: "larger than 64 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseProcfile(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrProcfile) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want ErrProcfile with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestScanSourceProcfile(t *testing.T) {
	reg := func(name, data string) entry { return entry{name: name, typ: tar.TypeReg, data: data} }
	src := tarOf(t, reg("Dockerfile", "FROM scratch\n"), reg("Procfile", "release: ./migrate\n"), reg("sub/Procfile", "worker: nope\n"))
	got, err := scanSource(bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if got["release"] != "./migrate" || len(got) != 1 {
		t.Errorf("procfile %v, want only the root one", got)
	}
	if _, err := scanSource(bytes.NewReader(tarOf(t, reg("Dockerfile", "FROM scratch\n"), reg("Procfile", "clock: ./tick\n")))); !errors.Is(err, ErrProcfile) {
		t.Errorf("unknown process type: err %v, want ErrProcfile", err)
	}
	if _, err := scanSource(bytes.NewReader(tarOf(t, reg("Procfile", "web: x\n")))); !errors.Is(err, ErrNoDockerfile) {
		t.Errorf("no Dockerfile: err %v", err)
	}
}
