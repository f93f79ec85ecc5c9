package builder

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
)

// ErrUnknownStack wraps ErrNoDockerfile when the source has no Dockerfile and
// nothing detect knows how to build.
var ErrUnknownStack = errors.New("plat could not tell what kind of app this is")

// ErrDetect wraps the errors of a detected stack that plat cannot build as
// it is (no start command, a package.json that is not JSON, ...).
var ErrDetect = errors.New("cannot generate a Dockerfile")

// lookedFor is what detection checks, in this order, named in the error
// of an unknown stack.
const lookedFor = "go.mod (Go), Gemfile (Ruby), package.json (Node.js), requirements.txt or pyproject.toml (Python), index.html (a static site)"

// maxManifestBytes bounds each file detection reads (package.json, go.mod,
// ...); real ones are a few KiB.
const maxManifestBytes = 1 << 20

// goHeadBytes is how much of a .go file is read to find its package clause.
const goHeadBytes = 8 << 10

// Source is what detection sees of a source tree.
type Source struct {
	// Files holds the paths (relative, slash-separated) of its regular
	// files and symbolic links.
	Files map[string]bool
	// Contents holds the few files detection reads: the manifests at the
	// root and the heads of .go files at the root and in cmd/*/.
	Contents map[string][]byte
}

func (s Source) has(name string) bool { return s.Files[name] }

// Generated is a Dockerfile plat wrote for a source without one.
type Generated struct {
	Stack string // StackNode, ...
	// Detected says what was detected and from which file, e.g.
	// "Node.js (package-lock.json)".
	Detected   string
	Dockerfile string
}

// readsContent reports whether detection reads the file at name.
func readsContent(name string) bool {
	switch name {
	case "package.json", "go.mod", "requirements.txt", "pyproject.toml", "Gemfile", "Procfile":
		return true
	}
	if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
		return false
	}
	dir := path.Dir(name)
	return dir == "." || (path.Dir(dir) == "cmd")
}

// ReadSource reads a tar stream (plain or gzip-compressed) into a Source.
func ReadSource(r io.Reader) (Source, error) {
	src := Source{Files: map[string]bool{}, Contents: map[string][]byte{}}
	tr, closeFn, err := tarReader(r)
	if err != nil {
		return src, err
	}
	defer closeFn()
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return src, nil
		}
		if err != nil {
			return src, fmt.Errorf("build: the source is not a valid tar archive: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeSymlink {
			continue
		}
		name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		src.Files[name] = true
		if hdr.Typeflag != tar.TypeReg || !readsContent(name) {
			continue
		}
		limit := int64(maxManifestBytes)
		if strings.HasSuffix(name, ".go") {
			limit = goHeadBytes
		}
		b, err := io.ReadAll(io.LimitReader(tr, limit))
		if err != nil {
			return src, fmt.Errorf("build: reading %s: %w", name, err)
		}
		src.Contents[name] = b
	}
}

// tarReader opens a plain or gzip-compressed tar stream.
func tarReader(r io.Reader) (*tar.Reader, func(), error) {
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("build: the source is not a valid tar archive: %w", err)
		}
		return tar.NewReader(zr), func() { zr.Close() }, nil
	}
	return tar.NewReader(br), func() {}, nil
}

// withDockerfile copies the tar stream src to dst (a plain tar) and adds
// dockerfile as the file Dockerfile at its root.
func withDockerfile(dst io.Writer, src io.Reader, dockerfile string) error {
	tr, closeFn, err := tarReader(src)
	if err != nil {
		return err
	}
	defer closeFn()
	tw := tar.NewWriter(dst)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("build: the source is not a valid tar archive: %w", err)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("build: adding the generated Dockerfile: %w", err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return fmt.Errorf("build: adding the generated Dockerfile: %w", err)
		}
	}
	hdr := &tar.Header{Name: "Dockerfile", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(dockerfile)), ModTime: time.Unix(0, 0)}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("build: adding the generated Dockerfile: %w", err)
	}
	if _, err := io.WriteString(tw, dockerfile); err != nil {
		return fmt.Errorf("build: adding the generated Dockerfile: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("build: adding the generated Dockerfile: %w", err)
	}
	return nil
}

// Detect finds the stack of a source without a Dockerfile and generates a
// Dockerfile for it with the given base images. The first match wins, in
// this order: go.mod, Gemfile, package.json, requirements.txt or
// pyproject.toml, index.html. A Procfile web line is the start command
// when present. Nothing known: an error wrapping ErrNoDockerfile and
// ErrUnknownStack that says what plat looked for.
func Detect(src Source, bases BaseImages) (Generated, error) {
	var procfile map[string]string
	if b, ok := src.Contents["Procfile"]; ok {
		var err error
		if procfile, err = ParseProcfile(bytes.NewReader(b)); err != nil {
			return Generated{}, err
		}
	}
	web := procfile[ProcessWeb]
	var g Generated
	var err error
	switch {
	case src.has("go.mod"):
		g, err = detectGo(src, bases, web)
	case src.has("Gemfile"):
		g, err = detectRuby(src, bases, web)
	case src.has("package.json"):
		g, err = detectNode(src, bases, web)
	case src.has("requirements.txt") || src.has("pyproject.toml"):
		g, err = detectPython(src, bases, web)
	case src.has("index.html"):
		g = detectStatic(bases, web)
	default:
		return Generated{}, fmt.Errorf("%w; %w: it looked for %s at the root of the repository. "+
			"Add a Dockerfile at the root that builds your app and starts it listening on $PORT, "+
			"or commit the file of your stack (e.g. package.json with a \"start\" script, or index.html for a static site)",
			ErrNoDockerfile, ErrUnknownStack, lookedFor)
	}
	if err != nil {
		return Generated{}, err
	}
	if web != "" {
		g.Detected += "; start: Procfile web"
	}
	return g, nil
}

// baseNote names a stack's base image and the flag that sets it.
func baseNote(img, stack, role string) string {
	if role != "" {
		role += "; "
	}
	return fmt.Sprintf("%s (%sset with plat daemon --base-image %s=IMAGE)", img, role, stack)
}

// dockerfile assembles a generated Dockerfile: a header that says what was
// detected and how to take over, then the lines.
func dockerfile(detected string, images []string, lines ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Generated by plat: the repository has no Dockerfile; detected %s.\n", detected)
	fmt.Fprintf(&b, "# Base image: %s.\n", strings.Join(images, ", "))
	b.WriteString("# To take over the build, commit this file as Dockerfile at the root of the repository.\n")
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// shellCmd is a CMD line that runs line with /bin/sh -c, so $PORT and
// other variables are expanded as on Heroku.
func shellCmd(line string) string {
	return "CMD " + strings.ReplaceAll(line, "\n", " ")
}

// execCmd is an exec-form CMD line.
func execCmd(args ...string) string {
	b, _ := json.Marshal(args)
	return "CMD " + string(b)
}

// ---- Go ----

var goPackageMain = regexp.MustCompile(`(?m)^package\s+main\b`)
var goModule = regexp.MustCompile(`(?m)^module\s+"?([^\s"]+)"?`)

func detectGo(src Source, bases BaseImages, web string) (Generated, error) {
	mainDirs := map[string]bool{}
	for name, b := range src.Contents {
		if strings.HasSuffix(name, ".go") && goPackageMain.Match(b) {
			mainDirs[path.Dir(name)] = true
		}
	}
	var pkg string
	switch cmds := slices.Sorted(func(yield func(string) bool) {
		for d := range mainDirs {
			if d != "." && !yield(d) {
				return
			}
		}
	}); {
	case mainDirs["."]:
		pkg = "."
	case len(cmds) == 1:
		pkg = "./" + cmds[0]
	case len(cmds) > 1:
		if m := goModule.FindSubmatch(src.Contents["go.mod"]); m != nil && mainDirs["cmd/"+path.Base(string(m[1]))] {
			pkg = "./cmd/" + path.Base(string(m[1]))
			break
		}
		return Generated{}, fmt.Errorf("%w: go.mod found, but there are several main packages (%s) and none is named after the module; add a Dockerfile that builds the one to run", ErrDetect, strings.Join(cmds, ", "))
	default:
		return Generated{}, fmt.Errorf("%w: go.mod found, but no main package at the root or in cmd/NAME/; add a Dockerfile that builds your server", ErrDetect)
	}
	img := bases.image(StackGo)
	detected := fmt.Sprintf("Go (go.mod, main package %s)", pkg)
	lines := []string{
		"FROM " + img + " AS build",
		"WORKDIR /src",
	}
	// Modules first, in their own layer: a push that changes only code
	// reuses the downloaded modules.
	if src.has("go.sum") && !src.has("vendor/modules.txt") {
		lines = append(lines, "COPY go.mod go.sum ./", "RUN go mod download")
	}
	lines = append(lines,
		"COPY . .",
		"RUN CGO_ENABLED=0 go build -trimpath -ldflags=\"-s -w\" -o /out/app "+pkg,
		"",
		"# A static binary needs no OS: the image holds it and the CA certificates.",
		"FROM scratch",
		"COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/",
		"COPY --from=build /out/app /app",
	)
	if web != "" {
		// No shell FROM scratch for a shell-form CMD: plat runs the
		// Procfile's web line itself, split into arguments.
		lines = append(lines, "# plat runs the Procfile's web line instead of this CMD.")
	}
	lines = append(lines, execCmd("/app"))
	return Generated{Stack: StackGo, Detected: detected, Dockerfile: dockerfile(detected, []string{baseNote(img, StackGo, "build"), "scratch (run)"}, lines...)}, nil
}

// ---- Node.js ----

type packageJSON struct {
	Main    string            `json:"main"`
	Scripts map[string]string `json:"scripts"`
}

// nodeInstall is how a package manager installs from its lockfile.
type nodeInstall struct {
	lockfile string   // the file detection found, "" without one
	copy     []string // files copied before the install
	run      string   // the install command
	build    string   // the build script's command
}

func nodeInstaller(src Source) nodeInstall {
	switch {
	case src.has("pnpm-lock.yaml"):
		return nodeInstall{"pnpm-lock.yaml", []string{"package.json", "pnpm-lock.yaml"}, "corepack enable pnpm && pnpm install --frozen-lockfile", "pnpm run build"}
	case src.has("yarn.lock") && src.has(".yarnrc.yml"):
		// Yarn 2+ ("berry"): corepack runs the version package.json names.
		return nodeInstall{"yarn.lock", []string{"package.json", "yarn.lock", ".yarnrc.yml"}, "corepack enable yarn && yarn install --immutable", "yarn run build"}
	case src.has("yarn.lock"):
		return nodeInstall{"yarn.lock", []string{"package.json", "yarn.lock"}, "yarn install --frozen-lockfile", "yarn run build"}
	case src.has("package-lock.json"):
		return nodeInstall{"package-lock.json", []string{"package.json", "package-lock.json"}, "npm ci", "npm run build"}
	case src.has("npm-shrinkwrap.json"):
		return nodeInstall{"npm-shrinkwrap.json", []string{"package.json", "npm-shrinkwrap.json"}, "npm ci", "npm run build"}
	}
	return nodeInstall{"", []string{"package.json"}, "npm install", "npm run build"}
}

// nodeEntries are the files run with node when package.json has neither a
// start script nor a main file that exists.
var nodeEntries = []string{"server.js", "index.js", "app.js", "main.js"}

// nodeOutputDirs are where build scripts put a static site: Vite, Parcel
// and Angular (dist), Create React App (build), Next.js export (out).
var nodeOutputDirs = []string{"dist", "build", "out"}

func detectNode(src Source, bases BaseImages, web string) (Generated, error) {
	var pkg packageJSON
	if err := json.Unmarshal(src.Contents["package.json"], &pkg); err != nil {
		return Generated{}, fmt.Errorf("%w: package.json is not valid JSON (%v); fix it, or add a Dockerfile", ErrDetect, err)
	}
	inst := nodeInstaller(src)
	build := strings.TrimSpace(pkg.Scripts["build"]) != ""
	var start string
	switch {
	case web != "":
		start = shellCmd(web)
	case strings.TrimSpace(pkg.Scripts["start"]) != "":
		start = execCmd("npm", "start")
	default:
		entries := nodeEntries
		if m := strings.TrimPrefix(path.Clean("/"+pkg.Main), "/"); pkg.Main != "" {
			entries = append([]string{m}, entries...)
		}
		for _, e := range entries {
			if src.has(e) {
				start = execCmd("node", e)
				break
			}
		}
	}
	if start == "" && build {
		return staticBuild(bases, inst), nil
	}
	if start == "" {
		return Generated{}, fmt.Errorf(`%w: package.json has no "start" script, there is no Procfile web line and no %s; add "scripts": {"start": "node server.js"} to package.json (the server listens on $PORT), or a Dockerfile`, ErrDetect, strings.Join(nodeEntries, " or "))
	}
	img := bases.image(StackNode)
	what := inst.lockfile
	if what == "" {
		what = "package.json, no lockfile: npm install"
	}
	detected := fmt.Sprintf("Node.js (%s)", what)
	lines := []string{
		"FROM " + img,
		"WORKDIR /app",
		"# Dependencies first, in their own layer: a push that changes only",
		"# code reuses them.",
		"COPY " + strings.Join(inst.copy, " ") + " ./",
		"RUN " + inst.run,
		"COPY . .",
	}
	if build {
		lines = append(lines, "RUN "+inst.build)
	}
	lines = append(lines, "ENV NODE_ENV=production", start)
	return Generated{Stack: StackNode, Detected: detected, Dockerfile: dockerfile(detected, []string{baseNote(img, StackNode, "")}, lines...)}, nil
}

// ---- static sites ----

// staticServe serves /www on $PORT with busybox's httpd, which the busybox
// image has; -f stays in the foreground, -v logs requests.
const staticServe = "CMD busybox httpd -f -v -p $PORT -h /www"

func detectStatic(bases BaseImages, web string) Generated {
	img := bases.image(StackStatic)
	detected := "a static site (index.html)"
	start := staticServe
	if web != "" {
		start = shellCmd(web)
	}
	return Generated{Stack: StackStatic, Detected: detected, Dockerfile: dockerfile(detected, []string{baseNote(img, StackStatic, "")}, "FROM "+img, "COPY . /www", start)}
}

func staticBuild(bases BaseImages, inst nodeInstall) Generated {
	node, img := bases.image(StackNode), bases.image(StackStatic)
	detected := "a static site (package.json build script, no start command)"
	dirs := strings.Join(nodeOutputDirs, " ")
	lines := []string{
		"FROM " + node + " AS build",
		"WORKDIR /app",
		"COPY " + strings.Join(inst.copy, " ") + " ./",
		"RUN " + inst.run,
		"COPY . .",
		"# The site is the first of " + dirs + " that the build made.",
		"RUN " + inst.build + " && for d in " + dirs + "; do if [ -d \"$d\" ]; then mv \"$d\" /site; break; fi; done && " +
			"{ [ -d /site ] || { echo 'plat: the build script made none of " + dirs + "' >&2; exit 1; }; }",
		"",
		"FROM " + img,
		"COPY --from=build /site /www",
		staticServe,
	}
	return Generated{Stack: StackStatic, Detected: detected, Dockerfile: dockerfile(detected, []string{baseNote(node, StackNode, "build"), baseNote(img, StackStatic, "serve")}, lines...)}
}

// ---- Python ----

// requirementsLine matches a line of requirements.txt that is not blank or
// a comment: a requirement, or an option such as -r base.txt.
var requirementsLine = regexp.MustCompile(`(?m)^[ \t]*[^#\s]`)

// requirementsLocal matches a requirements.txt line that needs other
// files of the source: options (-r, -c, -e) and local paths.
var requirementsLocal = regexp.MustCompile(`(?m)^[ \t]*(-|\.|/|file:)`)

// lists reports whether a requirements.txt or pyproject.toml names the
// distribution dist.
func lists(manifest []byte, dist string) bool {
	return regexp.MustCompile(`(?im)(^|["'\s])` + regexp.QuoteMeta(dist) + `\b`).Match(manifest)
}

func detectPython(src Source, bases BaseImages, web string) (Generated, error) {
	img := bases.image(StackPython)
	lines := []string{
		"FROM " + img,
		"WORKDIR /app",
		"# Logs reach plat at once, not when a buffer fills.",
		"ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1",
	}
	var manifest []byte
	var detected string
	if src.has("requirements.txt") {
		manifest = src.Contents["requirements.txt"]
		detected = "Python (requirements.txt)"
		switch {
		case requirementsLocal.Match(manifest):
			// It names other files (-r base.txt, -e .): they come first.
			lines = append(lines, "COPY . .", "RUN python3 -m pip install -r requirements.txt")
		case requirementsLine.Match(manifest):
			lines = append(lines, "COPY requirements.txt ./", "RUN python3 -m pip install -r requirements.txt", "COPY . .")
		default:
			lines = append(lines, "COPY . .")
		}
	} else {
		manifest = src.Contents["pyproject.toml"]
		detected = "Python (pyproject.toml)"
		lines = append(lines, "COPY . .", "RUN python3 -m pip install .")
	}
	start, err := pythonStart(src, manifest, web)
	if err != nil {
		return Generated{}, err
	}
	lines = append(lines, start)
	return Generated{Stack: StackPython, Detected: detected, Dockerfile: dockerfile(detected, []string{baseNote(img, StackPython, "")}, lines...)}, nil
}

// pythonStart is the CMD of a Python app: the Procfile web line; else
// gunicorn (when listed) on a WSGI module; else uvicorn (when listed) on
// main:app or app:app; else python3 on app.py, main.py or server.py.
func pythonStart(src Source, manifest []byte, web string) (string, error) {
	if web != "" {
		return shellCmd(web), nil
	}
	var wsgi []string
	for name := range src.Files {
		if path.Base(name) == "wsgi.py" && strings.Count(name, "/") == 1 {
			wsgi = append(wsgi, strings.TrimSuffix(strings.ReplaceAll(name, "/", "."), ".py"))
		}
	}
	slices.Sort(wsgi)
	app := ""
	for _, f := range []string{"main.py", "app.py"} {
		if src.has(f) {
			app = strings.TrimSuffix(f, ".py") + ":app"
			break
		}
	}
	switch {
	case lists(manifest, "gunicorn") && len(wsgi) == 1:
		return shellCmd("gunicorn --bind 0.0.0.0:$PORT " + wsgi[0]), nil
	case lists(manifest, "gunicorn") && src.has("wsgi.py"):
		return shellCmd("gunicorn --bind 0.0.0.0:$PORT wsgi"), nil
	case lists(manifest, "gunicorn") && app != "":
		return shellCmd("gunicorn --bind 0.0.0.0:$PORT " + app), nil
	case lists(manifest, "uvicorn") && app != "":
		return shellCmd("uvicorn --host 0.0.0.0 --port $PORT " + app), nil
	}
	for _, f := range []string{"app.py", "main.py", "server.py"} {
		if src.has(f) {
			return execCmd("python3", f), nil
		}
	}
	return "", fmt.Errorf("%w: a Python app, but no Procfile web line and no app.py, main.py or server.py to run (nor gunicorn with a wsgi.py); add a Procfile with \"web: gunicorn --bind 0.0.0.0:$PORT myapp.wsgi\" or a Dockerfile", ErrDetect)
}

// ---- Ruby ----

func detectRuby(src Source, bases BaseImages, web string) (Generated, error) {
	img := bases.image(StackRuby)
	rails := src.has("config/application.rb") && src.has("bin/rails")
	copyGems := "COPY Gemfile ./"
	if src.has("Gemfile.lock") {
		copyGems = "COPY Gemfile Gemfile.lock ./"
	}
	lines := []string{
		"FROM " + img,
		"WORKDIR /app",
		"ENV BUNDLE_WITHOUT=development:test",
		copyGems,
		"RUN bundle install",
		"COPY . .",
	}
	var start, detected string
	switch {
	case rails:
		detected = "Ruby on Rails (Gemfile, config/application.rb)"
		lines = append(lines, "ENV RAILS_ENV=production RAILS_LOG_TO_STDOUT=1 RAILS_SERVE_STATIC_FILES=1")
		if src.has("app/assets/config/manifest.js") || src.has("config/importmap.rb") {
			lines = append(lines, "RUN SECRET_KEY_BASE_DUMMY=1 bundle exec rails assets:precompile")
		}
		start = shellCmd("bundle exec rails server -b 0.0.0.0 -p $PORT")
	case src.has("config.ru"):
		detected = "Ruby (Gemfile, config.ru)"
		start = shellCmd("bundle exec rackup --host 0.0.0.0 --port $PORT")
	case web != "":
		detected = "Ruby (Gemfile)"
	default:
		return Generated{}, fmt.Errorf("%w: a Ruby app (Gemfile), but no Procfile web line, no config.ru and no Rails app; add a Procfile with \"web: bundle exec ruby app.rb -p $PORT\" or a Dockerfile", ErrDetect)
	}
	if web != "" {
		start = shellCmd(web)
	}
	lines = append(lines, start)
	return Generated{Stack: StackRuby, Detected: detected, Dockerfile: dockerfile(detected, []string{baseNote(img, StackRuby, "")}, lines...)}, nil
}

// generateDockerfile reads the source in f (a source without a Dockerfile),
// detects its stack and returns a new temporary file (the caller removes
// it) holding the source plus the generated Dockerfile, positioned at its
// start.
func generateDockerfile(f io.ReadSeeker, bases BaseImages) (*os.File, *Generated, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, nil, fmt.Errorf("build: spooling source: %w", err)
	}
	src, err := ReadSource(f)
	if err != nil {
		return nil, nil, err
	}
	gen, err := Detect(src, bases)
	if err != nil {
		return nil, nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, nil, fmt.Errorf("build: spooling source: %w", err)
	}
	out, err := os.CreateTemp("", "plat-build-*.tar")
	if err != nil {
		return nil, nil, fmt.Errorf("build: spooling source: %w", err)
	}
	if err := withDockerfile(out, f, gen.Dockerfile); err != nil {
		_ = out.Close()
		_ = os.Remove(out.Name())
		return nil, nil, err
	}
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		_ = out.Close()
		_ = os.Remove(out.Name())
		return nil, nil, fmt.Errorf("build: spooling source: %w", err)
	}
	return out, &gen, nil
}
