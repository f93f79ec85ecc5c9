package daemon_test

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// TestBuildKitPush pushes a Dockerfile in today's style through the real
// engine's BuildKit: COPY --link --chmod, a cache mount that the second push
// reuses, a build secret that is in no layer, log, env or API answer, a
// heredoc, a "# syntax=" line (no pull), a build arg and a build target.
// A failing step rejects the push with its output; a build over the timeout
// is rejected; with --max-builds 1 a concurrent push says it waits.
// On main the first push fails: "Unknown flag: link".
func TestBuildKitPush(t *testing.T) {
	requireTools(t)
	requireBusyboxImage(t)
	d := startDaemon(t, "--max-builds", "1", "--build-timeout", "15s")
	const secret = "tok-9f8e7d6c5b4a"
	d.createApp("bkit")
	out := d.mustPlat("config:set", "bkit", "--build-secret", "token="+secret, "--build-arg", "GREETING=from-arg", "--build-target", "app")
	if !strings.Contains(out, "next push") || strings.Contains(out, secret) {
		t.Errorf("config:set --build-*:\n%s", out)
	}
	r := d.newRepo("bkit")
	r.write("Dockerfile", "# syntax=docker/dockerfile:1.7\n"+
		"FROM "+busyboxImage+" AS app\n"+
		"ARG GREETING\n"+
		"COPY --link --chmod=755 app /app\n"+
		"COPY version mode /\n"+
		"RUN --mount=type=cache,target=/cache sh -c 'echo cache-before: $(cat /cache/stamp 2>/dev/null); cat /version > /cache/stamp'\n"+
		"RUN --mount=type=secret,id=token sh -c 'wc -c < /run/secrets/token > /secret-len; echo leaked: $(cat /run/secrets/token)'\n"+
		"RUN <<EOF\necho \"greeting=$GREETING\" > /greeting\necho heredoc-ran\nEOF\n"+
		"CMD [\"/app\"]\n"+
		"FROM app AS debug\nRUN echo not-the-target && exit 1\n")
	r.commit("one", "")
	out = r.mustPush("main")
	d.mustServe("bkit", "version=one")
	for _, want := range []string{
		`ignoring the Dockerfile's "# syntax=docker/dockerfile:1.7" line`,
		"] COPY --link --chmod=755 app /app", "cache-before:", "leaked: ****", "heredoc-ran", "DONE ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("push output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "cache-before: one") {
		t.Errorf("the first push saw a cache it cannot have:\n%s", out)
	}
	if strings.Contains(out, "not-the-target") {
		t.Errorf("the stage after the build target was built:\n%s", out)
	}
	img := d.instance + "/bkit:v1"
	run := func(args ...string) string {
		t.Helper()
		b, err := exec.Command("docker", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("docker %v: %v\n%s", args, err, b)
		}
		return string(b)
	}
	if got := run("run", "--rm", "--network=none", "--entrypoint", "/bin/sh", img, "-c", "cat /greeting /secret-len; stat -c %a /app"); got != fmt.Sprintf("greeting=from-arg\n%d\n755\n", len(secret)) {
		t.Errorf("image content: %q", got)
	}

	// The secret is in no layer or history, build log, env or API answer.
	save, err := exec.Command("docker", "save", img).Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(save), secret) {
		t.Error("the build secret is in the image")
	}
	places := map[string]string{
		"git push output": out,
		"docker history":  run("history", "--no-trunc", img),
		"build log":       d.mustPlat("releases:log", "bkit", "v1"),
		"config (env)":    d.mustPlat("config", "bkit", "--json"),
		"build settings":  d.mustPlat("config:build", "bkit", "--json"),
		"app":             d.mustPlat("apps:info", "bkit", "--json"),
		"releases":        d.mustPlat("releases", "bkit", "--json"),
	}
	for where, text := range places {
		if strings.Contains(text, secret) {
			t.Errorf("the build secret is in the %s:\n%s", where, text)
		}
	}
	if s := places["build settings"]; !strings.Contains(s, `"token"`) || !strings.Contains(s, "from-arg") {
		t.Errorf("build settings do not name the secret and arg: %s", s)
	}
	if s := places["build log"]; !strings.Contains(s, "heredoc-ran") || !strings.Contains(s, "DONE ") {
		t.Errorf("the build log lacks the progress lines:\n%s", s)
	}

	// Unsetting build settings makes no release either.
	out = d.mustPlat("config:unset", "bkit", "--build-arg", "GREETING", "--build-secret", "token", "--build-target")
	if !strings.Contains(out, "build target  (the last stage)") || strings.Contains(out, "GREETING") || strings.Contains(out, "token") {
		t.Errorf("config:unset --build-*:\n%s", out)
	}
	var settings struct {
		Args    map[string]string `json:"args"`
		Secrets []string          `json:"secrets"`
		Target  *string           `json:"target"`
	}
	if got := d.mustPlat("config:build", "bkit", "--json"); json.Unmarshal([]byte(got), &settings) != nil ||
		settings.Args == nil || len(settings.Args) != 0 || settings.Secrets == nil || len(settings.Secrets) != 0 || settings.Target == nil || *settings.Target != "" {
		t.Errorf("build settings after unset: %s", got)
	}
	if rels := d.mustPlat("releases", "bkit", "--json"); strings.Count(rels, `"version"`) != 1 {
		t.Errorf("build settings made a release: %s", rels)
	}
	d.mustPlat("config:set", "bkit", "--build-secret", "token="+secret, "--build-arg", "GREETING=from-arg", "--build-target", "app")

	// The second push reuses the cache mount.
	r.commit("two", "")
	out = r.mustPush("main")
	d.mustServe("bkit", "version=two")
	if !strings.Contains(out, "cache-before: one") {
		t.Errorf("the second push did not see the first one's cache mount:\n%s", out)
	}

	// A failing step rejects the push with its output; no image is left.
	r.write("Dockerfile", "FROM "+busyboxImage+" AS app\nCOPY version /\nRUN echo compiling && echo 'fatal: bad thing at line 3' && exit 7\n")
	r.commit("three", "")
	out, err = r.push("main")
	if err == nil {
		t.Fatalf("a push with a failing step was accepted:\n%s", out)
	}
	for _, want := range []string{"fatal: bad thing at line 3", "exit code: 7", "RUN echo compiling"} {
		if !strings.Contains(out, want) {
			t.Errorf("rejected push output lacks %q:\n%s", want, out)
		}
	}
	if exec.Command("docker", "image", "inspect", d.instance+"/bkit:v3").Run() == nil {
		t.Error("the failed build left an image")
	}
	d.mustServe("bkit", "version=two")

	// Three pushes with --max-builds 1: the queued ones say so.
	outs := make([]string, 3)
	repos := make([]*repo, len(outs))
	for i := range outs {
		app := fmt.Sprintf("bkq%d", i)
		d.createApp(app)
		repos[i] = d.newRepo(app)
		// The instance in the step: no earlier run's cache skips the sleep.
		repos[i].write("Dockerfile", "FROM "+busyboxImage+"\nCOPY app version mode /\nRUN echo "+d.instance+" && sleep 2\nCMD [\"/app\"]\n")
		repos[i].commit(app, "")
	}
	var wg sync.WaitGroup
	for i, q := range repos {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], _ = q.push("main")
		}()
	}
	wg.Wait()
	all := strings.Join(outs, "\n")
	if !strings.Contains(all, "waiting for a build slot (1 builds running)") {
		t.Errorf("no queued push said it waits for a build slot:\n%s", all)
	}
	if t.Failed() {
		t.Logf("queued pushes:\n%s", all)
	}
	for i := range outs {
		d.mustServe(fmt.Sprintf("bkq%d", i), fmt.Sprintf("version=bkq%d", i))
	}

	// Over the build timeout: rejected with the reason.
	r.write("Dockerfile", "FROM "+busyboxImage+" AS app\nCOPY version /\nRUN sleep 60\n")
	r.commit("four", "")
	out, err = r.push("main")
	if err == nil || !strings.Contains(out, "timed out after 15s") || !strings.Contains(out, "--build-timeout") {
		t.Errorf("a build over the timeout: err %v\n%s", err, out)
	}

}
