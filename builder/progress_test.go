package builder

import (
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
)

func TestProgressWriter(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	at := func(d time.Duration) *time.Time { x := t0.Add(d); return &x }
	a, b := digest.FromString("a"), digest.FromString("b")
	tests := []struct {
		name    string
		secrets map[string]string
		updates []*client.SolveStatus
		want    string
		failure string
	}{
		{
			name: "step with output",
			updates: []*client.SolveStatus{
				{Vertexes: []*client.Vertex{{Digest: a, Name: "[2/4] RUN npm ci", Started: at(0)}}},
				{Logs: []*client.VertexLog{{Vertex: a, Data: []byte("added 3 packages\nsec")}}},
				{Logs: []*client.VertexLog{{Vertex: a, Data: []byte("ond line\n")}}},
				{Vertexes: []*client.Vertex{{Digest: a, Name: "[2/4] RUN npm ci", Started: at(0), Completed: at(3100 * time.Millisecond)}}},
			},
			want: "#1 [2/4] RUN npm ci\n#1 added 3 packages\n#1 second line\n#1 DONE 3.1s\n",
		},
		{
			name: "cached step and repeated updates",
			updates: []*client.SolveStatus{
				{Vertexes: []*client.Vertex{{Digest: a, Name: "[1/2] FROM base", Cached: true, Started: at(0), Completed: at(0)}}},
				{Vertexes: []*client.Vertex{{Digest: a, Name: "[1/2] FROM base", Cached: true, Started: at(0), Completed: at(0)}}},
				{Vertexes: []*client.Vertex{{Digest: b, Name: "[2/2] COPY . /app", Started: at(time.Second)}}},
				{Vertexes: []*client.Vertex{{Digest: b, Name: "[2/2] COPY . /app", Started: at(time.Second), Completed: at(1250 * time.Millisecond)}}},
			},
			want: "#1 [1/2] FROM base\n#1 CACHED\n#2 [2/2] COPY . /app\n#2 DONE 0.2s\n",
		},
		{
			name: "failing step keeps its last output, unterminated line flushed",
			updates: []*client.SolveStatus{
				{Vertexes: []*client.Vertex{{Digest: a, Name: "[3/3] RUN make", Started: at(0)}}},
				{Logs: []*client.VertexLog{{Vertex: a, Data: []byte("cc main.c\nmain.c:1: error")}}},
				{Vertexes: []*client.Vertex{{Digest: a, Name: "[3/3] RUN make", Started: at(0), Completed: at(time.Second), Error: "exit code: 2"}}},
			},
			want:    "#1 [3/3] RUN make\n#1 cc main.c\n#1 main.c:1: error\n#1 ERROR: exit code: 2\n",
			failure: "step #1 [3/3] RUN make failed; its last output:\n  cc main.c\n  main.c:1: error",
		},
		{
			name:    "secrets are redacted, also line by line",
			secrets: map[string]string{"TOKEN": "hunter2-abc", "KEY": "line-one\nline-two"},
			updates: []*client.SolveStatus{
				{Vertexes: []*client.Vertex{{Digest: a, Name: "[1/1] RUN echo hunter2-abc", Started: at(0)}}},
				{Logs: []*client.VertexLog{{Vertex: a, Data: []byte("token=hunter2-abc\nline-two\n")}}},
			},
			want: "#1 [1/1] RUN echo ****\n#1 token=****\n#1 ****\n",
		},
		{
			name:    "short secrets are redacted as whole words only",
			secrets: map[string]string{"A": "v", "B": "ab1"},
			updates: []*client.SolveStatus{
				{Vertexes: []*client.Vertex{{Digest: a, Name: "[1/1] RUN check", Started: at(0)}}},
				{Logs: []*client.VertexLog{{Vertex: a, Data: []byte("server v ab1 ab12 value=v\n")}}},
			},
			want: "#1 [1/1] RUN check\n#1 server **** **** ab12 value=****\n",
		},
		{
			name: "a cancelled step is not the failure",
			updates: []*client.SolveStatus{
				{Vertexes: []*client.Vertex{{Digest: a, Name: "[1/1] RUN sleep 9", Started: at(0), Completed: at(time.Second), Error: "context canceled"}}},
			},
			want: "#1 [1/1] RUN sleep 9\n#1 ERROR: context canceled\n",
		},
		{
			name: "warning",
			updates: []*client.SolveStatus{
				{Warnings: []*client.VertexWarning{{Vertex: a, Short: []byte("FromAsCasing: 'as' and 'FROM' keywords' casing do not match\n")}}},
			},
			want: "WARN: FromAsCasing: 'as' and 'FROM' keywords' casing do not match\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			p := newProgressWriter(&out, tt.secrets)
			for _, u := range tt.updates {
				p.write(u)
			}
			p.close()
			if out.String() != tt.want {
				t.Errorf("output:\n%s\nwant:\n%s", out.String(), tt.want)
			}
			if got := p.failure(); got != tt.failure {
				t.Errorf("failure:\n%s\nwant:\n%s", got, tt.failure)
			}
		})
	}
}
