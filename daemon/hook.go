package daemon

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/plat-paas/plat/deploy"
	"github.com/plat-paas/plat/store"
)

// deployBranch is the branch whose pushes deploy the app; pushes of other
// branches deploy their previews (previews.go).
const deployBranch = "refs/heads/main"

const resultTrailer = "X-Plat-Result"

// localHandler serves the daemon's unix socket (mode 0600: root, or
// whoever runs the daemon): the git hook's deploy requests and admin
// commands. It needs no token; the socket's file mode is the guard.
func (s *server) localHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hook/push", s.hookPush)
	mux.HandleFunc("POST /hook/preview/delete", s.hookPreviewDelete)
	mux.HandleFunc("GET /admin/backup", s.adminBackup)
	mux.HandleFunc("POST /admin/token", s.adminToken)
	mux.HandleFunc("GET /admin/daemon", s.adminDaemon)
	return mux
}

// errMainMoved refuses a push whose branch another push moved first.
var errMainMoved = errors.New("main moved while this push waited (another push was deployed first); fetch or rebase onto it, then push again")

// hookPush builds and deploys a pushed commit; the body is its tar. Output
// streams back to the hook, which relays it to the pusher; the outcome is
// in the X-Plat-Result trailer ("ok", or the error). It runs under the
// lease of the git push (?lease=) and deploys only if main is still where
// the pusher saw it (?old=) once the app's lock is held.
func (s *server) hookPush(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	app, sha, old := q.Get("app"), q.Get("sha"), q.Get("old")
	var committed time.Time
	if sec, err := strconv.ParseInt(q.Get("committed"), 10, 64); err == nil && sec > 0 {
		committed = time.Unix(sec, 0).UTC()
	}
	// Progress streams back while the tar is still being read.
	if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
		s.log.Warn("enable full duplex", "err", err)
	}
	w.Header().Set("Trailer", resultTrailer)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	out := newFlushWriter(w)
	src := &limitedSource{r: r.Body, limit: s.cfg.maxSourceBytes()}
	// A branch other than main deploys its preview, under its own name.
	target, lease, ref, moved, what := app, q.Get("lease"), deployBranch, errMainMoved, app
	var pv *previewPush
	if branch := q.Get("branch"); branch != "" {
		var err error
		if pv, err = s.startPreviewPush(app, branch, lease); err != nil {
			fmt.Fprintf(out, "\n !     Push rejected: %v\n", err)
			w.Header().Set(resultTrailer, "failed")
			return
		}
		target, lease, ref, what = pv.name, pv.lease.ID, "refs/heads/"+branch, fmt.Sprintf("the preview of %s", branch)
		moved = fmt.Errorf("%s moved while this push waited (another push was deployed first); fetch or rebase onto it, then push again", branch)
		fmt.Fprintf(out, "-----> Branch %s previews at %s\n", branch, s.appURL(pv.name))
	}
	rel, err := s.deployer.Push(r.Context(), deploy.PushRequest{
		App: target, GitSHA: sha, CommittedAt: committed, Source: src, Lease: lease,
		Check: func() error {
			if old == "" {
				return nil
			}
			current, err := s.repos.ref(app, ref)
			if err != nil {
				return err
			}
			if !sameRef(current, old) {
				return moved
			}
			return nil
		},
	}, out)
	if err != nil {
		if src.exceeded {
			s.log.Warn("push refused: source too large", "app", target, "limit", src.limit)
		}
		if pv != nil && pv.created {
			// A preview that never went live leaves nothing behind.
			pv.lease.Release()
			if derr := s.deployer.Destroy(context.WithoutCancel(r.Context()), pv.name); derr != nil {
				s.log.Warn("remove failed preview", "app", target, "err", derr)
			}
			fmt.Fprintf(out, "\n !     Push rejected: %v\n !     The preview was not created.\n", err)
		} else {
			fmt.Fprintf(out, "\n !     Push rejected: %v\n !     %s is still serving its previous release.\n", err, what)
		}
		w.Header().Set(resultTrailer, "failed")
		return
	}
	if pv != nil {
		s.previewEvent(app, "preview", "preview of %s v%d is live at %s", q.Get("branch"), rel.Version, s.appURL(target))
		fmt.Fprintf(out, "\n=====> Preview of %s v%d is live at %s\n", q.Get("branch"), rel.Version, s.appURL(target))
		w.Header().Set(resultTrailer, "ok")
		return
	}
	if rel.Status == store.StatusStaged {
		fmt.Fprintf(out, "\n=====> v%d is staged at %s (plat promote %s v%d to release it)\n", rel.Version, s.switcher.PreviewURL(app, rel.Version), app, rel.Version)
	} else {
		fmt.Fprintf(out, "\n=====> %s v%d is live at %s\n", app, rel.Version, s.appURL(app))
	}
	w.Header().Set(resultTrailer, "ok")
}

// unixClient talks HTTP to the daemon's local socket.
func unixClient(socket string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
}

// HookMain runs `plat hook pre-receive` inside a bare repository: git gives
// it "old new ref" lines on stdin. It takes one branch per push: main
// deploys the app, another branch its preview (previews.go), and deleting
// such a branch deletes its preview. It streams `git archive` of the pushed commit to the daemon, and relays the
// daemon's output. A non-zero exit makes git reject the push.
func HookMain(args []string) int {
	if len(args) != 1 || args[0] != "pre-receive" {
		fmt.Fprintln(os.Stderr, "usage: plat hook pre-receive (run by git, not by hand)")
		return 2
	}
	socket, app, lease := os.Getenv("PLAT_SOCKET"), os.Getenv("PLAT_APP"), os.Getenv("PLAT_LEASE")
	if socket == "" || app == "" {
		fmt.Println("plat: this hook runs only under the plat daemon")
		return 1
	}
	type update struct{ old, new, ref string }
	var updates []update
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 {
			updates = append(updates, update{f[0], f[1], f[2]})
		}
	}
	if len(updates) == 0 {
		return 0
	}
	if len(updates) > 1 {
		fmt.Println("plat: push one branch at a time: main deploys the app, any other branch its preview.")
		return 1
	}
	u := updates[0]
	branch, isBranch := strings.CutPrefix(u.ref, "refs/heads/")
	switch {
	case !isBranch:
		fmt.Printf("plat: only branches deploy; %s was not accepted.\nplat: push main to deploy, or another branch for its preview.\n", u.ref)
		return 1
	case u.ref == deployBranch && isZeroSHA(u.new):
		fmt.Println("plat: deleting main is not allowed; to remove the app use `plat apps:destroy`")
		return 1
	case u.ref != deployBranch && isZeroSHA(u.new):
		return hookPreviewDelete(socket, app, branch, lease)
	}
	// Another push may have moved the branch since the pusher looked:
	// deploying would deploy a commit git then refuses to record. The
	// daemon checks again once it holds the app's lock, after the build.
	current, _ := exec.Command("git", "rev-parse", "-q", "--verify", u.ref).Output()
	if !sameRef(strings.TrimSpace(string(current)), u.old) {
		fmt.Printf("plat: %s moved while this push waited (another push was deployed first).\nplat: fetch or rebase onto it, then push again.\n", branch)
		return 1
	}
	if u.ref == deployBranch {
		branch = ""
	}
	return hookDeploy(socket, app, branch, u.new, u.old, lease)
}

// hookDeploy streams sha's tree to the daemon: a deploy of app, or of its
// preview of branch when branch is set.
func hookDeploy(socket, app, branch, sha, oldSHA, lease string) int {
	archive := exec.Command("git", "archive", "--format=tar", sha)
	archive.Stderr = os.Stderr
	tar, err := archive.StdoutPipe()
	if err != nil {
		fmt.Println("plat:", err)
		return 1
	}
	if err := archive.Start(); err != nil {
		fmt.Println("plat: git archive:", err)
		return 1
	}
	q := url.Values{"app": {app}, "sha": {sha}, "old": {oldSHA}, "lease": {lease}}
	if branch != "" {
		q.Set("branch", branch)
	}
	// The commit time, for the lead time of the change (plat dora): only
	// this hook sees the pushed objects, which git keeps in quarantine
	// until the push is accepted.
	if ct, err := exec.Command("git", "show", "-s", "--format=%ct", sha).Output(); err == nil {
		q.Set("committed", strings.TrimSpace(string(ct)))
	}
	u := "http://plat/hook/push?" + q.Encode()
	resp, err := unixClient(socket).Post(u, "application/x-tar", tar)
	if err != nil {
		fmt.Printf("plat: cannot reach the plat daemon: %v\n", err)
		archive.Process.Kill()
		archive.Wait()
		return 1
	}
	defer resp.Body.Close()
	_, copyErr := io.Copy(os.Stdout, resp.Body)
	archive.Wait()
	if copyErr != nil {
		fmt.Printf("\n !     Lost the connection to the plat daemon during the deploy (%v).\n !     The push is rejected; the previous release keeps serving once the daemon is back.\n", copyErr)
		return 1
	}
	if resp.Trailer.Get(resultTrailer) != "ok" {
		return 1
	}
	return 0
}

// tokenMain runs `plat daemon token`: a new API token from the local daemon.
func tokenMain(args []string) int {
	fs := flag.NewFlagSet("plat daemon token", flag.ContinueOnError)
	dataDir := fs.String("data", envOr("PLAT_DATA", DefaultDataDir), "the daemon's data directory")
	name := fs.String("name", "", "a unique name for the token, shown by `plat tokens` (default admin, or admin-2... when taken)")
	expires := fs.String("expires", "", "lifetime such as 90d, 12h or 1d12h (default: never expires)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	socket := filepath.Join(*dataDir, socketName)
	q := url.Values{}
	if *name != "" {
		q.Set("name", *name)
	}
	if *expires != "" {
		q.Set("expires", *expires)
	}
	resp, err := unixClient(socket).Post("http://plat/admin/token?"+q.Encode(), "text/plain", nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "plat: cannot reach the daemon's socket %s: %v\nplat: is `plat daemon --data %s` running, and are you the user it runs as?\n", socket, err, *dataDir)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(os.Stderr, "plat: %s\n", strings.TrimSpace(string(body)))
		return 1
	}
	fmt.Print(string(body))
	return 0
}

// sameRef reports whether the branch's current value (empty when it does
// not exist) is what the pusher saw (all zeros for "did not exist").
func sameRef(current, seen string) bool {
	if isZeroSHA(seen) {
		return current == ""
	}
	return current == seen
}

func isZeroSHA(sha string) bool { return strings.Trim(sha, "0") == "" }
