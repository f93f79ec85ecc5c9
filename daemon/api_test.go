package daemon

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestReadJSON sends bodies over a real connection to a handler that
// decodes them like every API handler.
func TestReadJSON(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Name string `json:"name"`
		}
		if readJSON(w, r, &body) {
			writeJSON(w, http.StatusOK, body)
		}
	}))
	defer srv.Close()
	huge := `{"name":"` + strings.Repeat("a", maxJSONBody) + `"}`
	for _, tc := range []struct {
		name, body string
		want       int
		msg        string
	}{
		{"object", `{"name":"web"}`, 200, ""},
		{"trailing white space", "{\"name\":\"web\"}\n\t \r\n", 200, ""},
		{"empty", "", 200, ""},
		{"trailing garbage", `{"name":"web"}x`, 400, "unexpected data after the JSON object"},
		{"second object", `{"name":"web"}{"name":"db"}`, 400, "more than one JSON value"},
		{"second value after space", `{"name":"web"} 1`, 400, "more than one JSON value"},
		{"truncated", `{"name":"web"`, 400, "not valid JSON"},
		{"wrong type", `{"name":1}`, 400, "not valid JSON"},
		{"over the limit", huge, 413, "request body is over 2097152 bytes"},
		{"white space over the limit", `{"name":"web"}` + strings.Repeat(" ", maxJSONBody), 413, "over 2097152 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(srv.URL, "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d (%s); want %d", resp.StatusCode, b, tc.want)
			}
			var e struct{ Error string }
			_ = json.Unmarshal(b, &e)
			if !strings.Contains(e.Error, tc.msg) {
				t.Errorf("error %q; want one containing %q", e.Error, tc.msg)
			}
		})
	}
}
