package builder

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestUnpack(t *testing.T) {
	outside := t.TempDir()
	tests := []struct {
		name    string
		entries []entry
		check   map[string]string // file → content in the unpacked dir
		wantErr bool
	}{
		{"files, dirs, pax header", []entry{{"pax_global_header", tar.TypeXGlobalHeader, "x"}, {"./", tar.TypeDir, ""}, {"a/b/c.txt", tar.TypeReg, "c"}, {"Dockerfile", tar.TypeReg, "FROM scratch\n"}},
			map[string]string{"a/b/c.txt": "c", "Dockerfile": "FROM scratch\n"}, false},
		{"dot-dot stays inside", []entry{{"../../x.txt", tar.TypeReg, "x"}}, map[string]string{"x.txt": "x"}, false},
		{"relative symlink kept", []entry{{"t.txt", tar.TypeReg, "t"}, {"l", tar.TypeSymlink, "t.txt"}}, map[string]string{"l": "t"}, false},
		{"no write through a link out", []entry{{"l", tar.TypeSymlink, outside}, {"l/evil", tar.TypeReg, "x"}}, nil, true},
		{"no write through a dot-dot link", []entry{{"l", tar.TypeSymlink, "../../../../" + outside}, {"l/evil", tar.TypeReg, "x"}}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			err := unpack(bytes.NewReader(tarOf(t, tt.entries...)), dir)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			for name, want := range tt.check {
				if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != want {
					t.Errorf("%s: %q %v, want %q", name, b, err, want)
				}
			}
			if _, err := os.Stat(filepath.Join(outside, "evil")); err == nil {
				t.Fatal("a file was written outside the context")
			}
		})
	}
}
