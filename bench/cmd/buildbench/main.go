// Command buildbench times plat's builder on the real engine: BuildKit (a
// current Dockerfile frontend run in plat, LLB to the engine's BuildKit)
// against the engine's classic builder, on the same Dockerfile, a first
// (cold) build and a second build where only a late file changed.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"sort"
	"time"

	"github.com/plat-paas/plat/builder"
	"github.com/plat-paas/plat/engine"
)

// classicOnly hides the engine's BuildKit, so the builder falls back.
type classicOnly struct{ engine.Engine }

func main() {
	rounds := flag.Int("rounds", 3, "rounds per builder")
	base := flag.String("base", "plat-bench-busybox:1", "base image (made from /bin/busybox when missing)")
	flag.Parse()
	ctx := context.Background()
	d, err := engine.NewDocker(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if exec.Command("docker", "image", "inspect", *base).Run() != nil {
		makeBase(*base)
	}
	payload := make([]byte, 8<<20) // an app binary's worth of bytes
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	results := map[string][]time.Duration{}
	for r := 0; r < *rounds; r++ {
		for _, kind := range []string{"buildkit", "classic"} {
			var e engine.Engine = d
			if kind == "classic" {
				e = classicOnly{d}
			}
			b := builder.New(e)
			app := fmt.Sprintf("plat-bench-%s-%d-%d", kind, os.Getpid(), r)
			seed := fmt.Sprintf("%s-%d", app, time.Now().UnixNano())
			for v := 1; v <= 2; v++ {
				df := "FROM " + *base + "\nRUN echo " + seed + " && seq 1 20000 > /nums\nCOPY app /app\nRUN wc -c /app /nums > /sizes\nCOPY version /version\nCMD [\"/app\"]\n"
				src := tarOf(map[string][]byte{"Dockerfile": []byte(df), "app": payload, "version": []byte(fmt.Sprint(v))})
				start := time.Now()
				if _, err := b.Build(ctx, builder.Request{App: app, Version: v, Source: bytes.NewReader(src)}, io.Discard); err != nil {
					log.Fatalf("%s v%d: %v", kind, v, err)
				}
				key := fmt.Sprintf("%s %s", kind, map[int]string{1: "first", 2: "second (cached)"}[v])
				results[key] = append(results[key], time.Since(start))
				defer exec.Command("docker", "rmi", "-f", builder.Tag(app, v)).Run()
			}
		}
	}
	keys := make([]string, 0, len(results))
	for k := range results {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Printf("| builder, build | median | runs |\n|---|---|---|\n")
	for _, k := range keys {
		ds := results[k]
		sorted := append([]time.Duration(nil), ds...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
		fmt.Printf("| %s | %s | %v |\n", k, sorted[len(sorted)/2].Round(10*time.Millisecond), roundAll(ds))
	}
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(10 * time.Millisecond)
	}
	return out
}

func tarOf(files map[string][]byte) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o755, Size: int64(len(files[n])), ModTime: time.Now()})
		tw.Write(files[n])
	}
	tw.Close()
	return buf.Bytes()
}

func makeBase(name string) {
	bin, err := os.ReadFile("/bin/busybox")
	if err != nil {
		log.Fatalf("busybox-static is needed (apt-get install busybox-static): %v", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "bin/busybox", Mode: 0o755, Size: int64(len(bin))})
	tw.Write(bin)
	for _, l := range []string{"sh", "echo", "seq", "wc"} {
		tw.WriteHeader(&tar.Header{Name: "bin/" + l, Typeflag: tar.TypeSymlink, Linkname: "busybox"})
	}
	tw.Close()
	cmd := exec.Command("docker", "import", "-", name)
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		log.Fatalf("docker import: %v\n%s", err, out)
	}
}
