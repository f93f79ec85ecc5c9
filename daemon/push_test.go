package daemon

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func encodeCommands(c pushCommands) []byte {
	var b bytes.Buffer
	for i, u := range c.Updates {
		line := u.Old + " " + u.New + " " + u.Ref
		if i == 0 {
			line += "\x00" + strings.Join(c.Capabilities, " ")
		}
		b.Write(pktLine(line + "\n"))
	}
	b.WriteString("0000")
	return b.Bytes()
}

func TestReadPushCommands(t *testing.T) {
	zero, a, b := strings.Repeat("0", 40), strings.Repeat("a", 40), strings.Repeat("b", 64)
	tests := []struct {
		name    string
		in      string
		want    pushCommands
		wantErr string
	}{
		{"one update with capabilities", string(pktLine(zero+" "+a+" refs/heads/main\x00report-status side-band-64k\n")) + "0000PACK",
			pushCommands{Updates: []refUpdate{{zero, a, "refs/heads/main"}}, Capabilities: []string{"report-status", "side-band-64k"}}, ""},
		{"two updates, sha256", string(pktLine(zero+strings.Repeat("0", 24)+" "+b+" refs/heads/main\x00\n")) + string(pktLine(zero+" "+a+" refs/heads/x")) + "0000",
			pushCommands{Updates: []refUpdate{{zero + strings.Repeat("0", 24), b, "refs/heads/main"}, {zero, a, "refs/heads/x"}}}, ""},
		{"probe: flush only", "0000", pushCommands{}, ""},
		{"empty", "", pushCommands{}, "read pkt-line length"},
		{"bad length", "zzzz", pushCommands{}, "bad pkt-line length"},
		{"short line", "0010abc", pushCommands{}, "read pkt-line"},
		{"delimiter", "0001", pushCommands{}, "unexpected pkt-line"},
		{"not a command", string(pktLine("hello\n")) + "0000", pushCommands{}, "bad push command"},
		{"upper-case sha", string(pktLine(strings.ToUpper(a)+" "+a+" refs/heads/main")) + "0000", pushCommands{}, "bad push command"},
		{"no flush", string(pktLine(zero + " " + a + " refs/heads/main")), pushCommands{}, "read pkt-line length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readPushCommands(bufio.NewReader(strings.NewReader(tt.in)))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got.Updates, tt.want.Updates) || !slices.Equal(got.Capabilities, tt.want.Capabilities) {
				t.Fatalf("got %+v %v, want %+v", got, err, tt.want)
			}
		})
	}
}

// FuzzReadPushCommands: hostile bytes at the start of a receive-pack body
// never crash the parser nor make it read past what it returns; what it
// accepts encodes back to commands it reads the same.
func FuzzReadPushCommands(f *testing.F) {
	zero, a := strings.Repeat("0", 40), strings.Repeat("a", 40)
	f.Add([]byte(string(pktLine(zero+" "+a+" refs/heads/main\x00report-status side-band-64k agent=git/2.39\n")) + "0000PACK\x00\x00\x00\x02"))
	f.Add([]byte("0000"))
	f.Add([]byte("0001"))
	f.Add([]byte("fffe"))
	f.Add([]byte("0004"))
	f.Add([]byte(string(pktLine(a+" "+zero+" refs/heads/main\x00\n")) + string(pktLine(zero+" "+a+" refs/tags/v1\n")) + "0000"))
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReader(bytes.NewReader(in))
		cmds, err := readPushCommands(br)
		if err != nil {
			return
		}
		if len(cmds.Updates) > maxPushCommands {
			t.Fatalf("%d updates accepted", len(cmds.Updates))
		}
		for _, u := range cmds.Updates {
			if !isSHA(u.Old) || !isSHA(u.New) || u.Ref == "" || strings.ContainsFunc(u.Ref, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
				t.Fatalf("accepted a bad update %+v", u)
			}
		}
		rest, _ := io.ReadAll(br)
		if !bytes.HasSuffix(in, rest) {
			t.Fatal("the rest of the body is not what followed the commands")
		}
		again, err := readPushCommands(bufio.NewReader(bytes.NewReader(encodeCommands(cmds))))
		if err != nil || !slices.Equal(again.Updates, cmds.Updates) {
			t.Fatalf("re-encoded commands read as %+v, %v; want %+v", again, err, cmds)
		}
	})
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{"1GiB": 1 << 30, "500MiB": 500 << 20, "12M": 12 << 20, "1048576": 1 << 20, "64kb": 64 << 10, "2 GB": 2 << 30} {
		if got, err := parseByteSize(in); err != nil || got != want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "1TB", "GiB", "1.5GiB", "99999999999999GiB"} {
		if _, err := parseByteSize(in); err == nil {
			t.Errorf("parseByteSize(%q) accepted", in)
		}
	}
	if got := formatBytes(DefaultMaxPushBytes); got != "1 GiB" {
		t.Errorf("formatBytes(1<<30) = %q", got)
	}
}

func TestLimitedSource(t *testing.T) {
	src := &limitedSource{r: strings.NewReader(strings.Repeat("x", 100)), limit: 99}
	_, err := io.ReadAll(src)
	var se *sizeError
	if !errors.As(err, &se) || !src.exceeded || !strings.Contains(err.Error(), "limit of 99 bytes") || !strings.Contains(err.Error(), "--max-source-size") {
		t.Errorf("over the limit: %v", err)
	}
	src = &limitedSource{r: strings.NewReader(strings.Repeat("x", 100)), limit: 100}
	if b, err := io.ReadAll(src); err != nil || len(b) != 100 || src.exceeded {
		t.Errorf("at the limit: %d %v", len(b), err)
	}
}

// TestRejectPush: the refusal is a receive-pack answer git understands:
// side-band progress with the message, then the report of every ref.
func TestRejectPush(t *testing.T) {
	w := httptest.NewRecorder()
	rejectPush(w, pushCommands{Updates: []refUpdate{{Ref: "refs/heads/main"}}, Capabilities: []string{"report-status", "side-band-64k"}}, "too big", "push too large")
	br := bufio.NewReader(w.Body)
	var bands [][]byte
	for {
		line, err := readPktLine(br)
		if err != nil {
			t.Fatal(err)
		}
		if string(line) == "0000" {
			break
		}
		bands = append(bands, line[4:])
	}
	if len(bands) != 2 || bands[0][0] != 2 || !bytes.Contains(bands[0], []byte("Push rejected: too big")) || bands[1][0] != 1 {
		t.Fatalf("bands %q", bands)
	}
	report, err := readPushReport(bytes.NewReader(bands[1][1:]))
	if err != nil || !slices.Equal(report, []string{"unpack push too large\n", "ng refs/heads/main push too large\n"}) {
		t.Errorf("report %q %v", report, err)
	}
}

func readPushReport(r io.Reader) ([]string, error) {
	br := bufio.NewReader(r)
	var out []string
	for {
		line, err := readPktLine(br)
		if err != nil {
			return out, err
		}
		if string(line) == "0000" {
			return out, nil
		}
		out = append(out, string(line[4:]))
	}
}

func TestSpoolPush(t *testing.T) {
	gz := func(s string) string {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
		return b.String()
	}
	tests := []struct {
		name     string
		body     string
		gzip     bool
		want     string // what the spool holds
		tooLarge bool
		unread   bool
	}{
		{"under the limit", "0123456789", false, "0123456789", false, false},
		{"gzip, counted unpacked", gz("0123456789"), true, "0123456789", false, false},
		{"over: read whole, first bytes kept", strings.Repeat("x", 15), false, strings.Repeat("x", 10), true, false},
		{"gzip bomb", gz(strings.Repeat("x", 1000)), true, "", true, true},
		{"more than twice the limit: not read", strings.Repeat("x", 25), false, "", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/git/a.git/git-receive-pack", strings.NewReader(tt.body))
			if tt.gzip {
				r.Header.Set("Content-Encoding", "gzip")
			}
			f, err := spoolPush(httptest.NewRecorder(), r, t.TempDir(), 10, time.Second)
			var se *sizeError
			if errors.As(err, &se) != tt.tooLarge || (se != nil && se.unread != tt.unread) {
				t.Fatalf("err %v, want too large %v (unread %v)", err, tt.tooLarge, tt.unread)
			}
			if !tt.tooLarge && err != nil {
				t.Fatal(err)
			}
			if tt.unread {
				if f != nil {
					t.Error("a file for a body not read")
				}
				return
			}
			defer f.Close()
			got, _ := io.ReadAll(f)
			if string(got) != tt.want {
				t.Errorf("spooled %q, want %q", got, tt.want)
			}
		})
	}
}
