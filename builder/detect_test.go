package builder

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// source builds a Source from name → content (the content of files
// detection does not read is ignored, as ReadSource would).
func source(files map[string]string) Source {
	src := Source{Files: map[string]bool{}, Contents: map[string][]byte{}}
	for name, content := range files {
		src.Files[name] = true
		if readsContent(name) {
			src.Contents[name] = []byte(content)
		}
	}
	return src
}

func TestDetect(t *testing.T) {
	const (
		pkgStart = `{"name":"a","scripts":{"start":"node srv.js"}}`
		pkgBuild = `{"name":"a","scripts":{"build":"vite build"}}`
		pkgBoth  = `{"name":"a","scripts":{"build":"tsc","start":"node dist/srv.js"}}`
		pkgMain  = `{"name":"a","main":"lib/srv.js"}`
		pkgBare  = `{"name":"a"}`
		goMod    = "module example.com/shop\n\ngo 1.22\n"
		mainGo   = "// Command shop.\npackage main\n\nfunc main() {}\n"
		libGo    = "package shop\n"
	)
	for _, tc := range []struct {
		name     string
		files    map[string]string
		stack    string
		detected string   // substring of Generated.Detected
		want     []string // text the Dockerfile must contain
		not      []string // lines it must not contain
		err      error    // wanted error instead
	}{
		// Node.js: package manager by lockfile.
		{"node npm ci", map[string]string{"package.json": pkgStart, "package-lock.json": "{}"}, StackNode, "Node.js (package-lock.json)",
			[]string{"FROM " + DefaultNodeImage, "COPY package.json package-lock.json ./", "RUN npm ci", "COPY . .", `CMD ["npm","start"]`}, []string{"npm run build"}, nil},
		{"node shrinkwrap", map[string]string{"package.json": pkgStart, "npm-shrinkwrap.json": "{}"}, StackNode, "npm-shrinkwrap.json",
			[]string{"COPY package.json npm-shrinkwrap.json ./", "RUN npm ci"}, nil, nil},
		{"node no lockfile", map[string]string{"package.json": pkgStart}, StackNode, "no lockfile",
			[]string{"COPY package.json ./", "RUN npm install"}, []string{"npm ci"}, nil},
		{"node yarn classic", map[string]string{"package.json": pkgStart, "yarn.lock": ""}, StackNode, "yarn.lock",
			[]string{"COPY package.json yarn.lock ./", "RUN yarn install --frozen-lockfile"}, nil, nil},
		{"node yarn berry", map[string]string{"package.json": pkgStart, "yarn.lock": "", ".yarnrc.yml": ""}, StackNode, "yarn.lock",
			[]string{"COPY package.json yarn.lock .yarnrc.yml ./", "RUN corepack enable yarn && yarn install --immutable"}, nil, nil},
		{"node pnpm", map[string]string{"package.json": pkgStart, "pnpm-lock.yaml": ""}, StackNode, "pnpm-lock.yaml",
			[]string{"COPY package.json pnpm-lock.yaml ./", "RUN corepack enable pnpm && pnpm install --frozen-lockfile"}, nil, nil},
		{"node pnpm wins over a stale package-lock", map[string]string{"package.json": pkgStart, "pnpm-lock.yaml": "", "package-lock.json": "{}"}, StackNode, "pnpm-lock.yaml",
			[]string{"RUN corepack enable pnpm && pnpm install --frozen-lockfile"}, []string{"npm ci"}, nil},
		{"node build and start", map[string]string{"package.json": pkgBoth, "package-lock.json": "{}"}, StackNode, "Node.js",
			[]string{"RUN npm ci", "RUN npm run build", `CMD ["npm","start"]`}, nil, nil},
		{"node yarn build", map[string]string{"package.json": pkgBoth, "yarn.lock": ""}, StackNode, "Node.js",
			[]string{"RUN yarn run build"}, nil, nil},
		// Node.js: start command.
		{"node Procfile wins over start script", map[string]string{"package.json": pkgStart, "Procfile": "web: node other.js --port $PORT\n"}, StackNode, "Procfile web",
			[]string{"CMD node other.js --port $PORT"}, []string{`CMD ["npm","start"]`}, nil},
		{"node main", map[string]string{"package.json": pkgMain, "lib/srv.js": "", "server.js": ""}, StackNode, "Node.js",
			[]string{`CMD ["node","lib/srv.js"]`}, nil, nil},
		{"node main missing: server.js", map[string]string{"package.json": pkgMain, "server.js": ""}, StackNode, "Node.js",
			[]string{`CMD ["node","server.js"]`}, nil, nil},
		{"node index.js", map[string]string{"package.json": pkgBare, "index.js": ""}, StackNode, "Node.js",
			[]string{`CMD ["node","index.js"]`}, nil, nil},
		{"node nothing to start", map[string]string{"package.json": pkgBare}, "", "", nil, nil, ErrDetect},
		{"node bad package.json", map[string]string{"package.json": "{"}, "", "", nil, nil, ErrDetect},
		// Static sites.
		{"static index.html", map[string]string{"index.html": "<h1>hi</h1>", "style.css": ""}, StackStatic, "static site (index.html)",
			[]string{"FROM " + DefaultStaticImage, "COPY . /www", "CMD busybox httpd -f -v -p $PORT -h /www"}, nil, nil},
		{"static from a build script", map[string]string{"package.json": pkgBuild, "package-lock.json": "{}", "index.html": ""}, StackStatic, "build script",
			[]string{"FROM " + DefaultNodeImage + " AS build", "RUN npm ci", "FROM " + DefaultStaticImage, "COPY --from=build /site /www", "CMD busybox httpd -f -v -p $PORT -h /www"}, nil, nil},
		{"static Procfile", map[string]string{"index.html": "", "Procfile": "web: busybox httpd -f -p $PORT -h /www/public\n"}, StackStatic, "Procfile web",
			[]string{"CMD busybox httpd -f -p $PORT -h /www/public"}, []string{"-v -p"}, nil},
		// Go.
		{"go root main", map[string]string{"go.mod": goMod, "go.sum": "", "main.go": mainGo}, StackGo, "Go (go.mod, main package .)",
			[]string{"FROM " + DefaultGoImage + " AS build", "COPY go.mod go.sum ./", "RUN go mod download", `RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/app .`, "FROM scratch", `CMD ["/app"]`}, nil, nil},
		{"go no go.sum: no download", map[string]string{"go.mod": goMod, "main.go": mainGo}, StackGo, "Go",
			[]string{"COPY . .", "-o /out/app ."}, []string{"go mod download"}, nil},
		{"go vendored", map[string]string{"go.mod": goMod, "go.sum": "", "vendor/modules.txt": "", "main.go": mainGo}, StackGo, "Go",
			nil, []string{"go mod download"}, nil},
		{"go one cmd", map[string]string{"go.mod": goMod, "shop.go": libGo, "cmd/shopd/main.go": mainGo}, StackGo, "main package ./cmd/shopd",
			[]string{"-o /out/app ./cmd/shopd"}, nil, nil},
		{"go cmd named after the module", map[string]string{"go.mod": goMod, "cmd/shop/main.go": mainGo, "cmd/tool/main.go": mainGo}, StackGo, "./cmd/shop",
			[]string{"-o /out/app ./cmd/shop"}, nil, nil},
		{"go several cmds", map[string]string{"go.mod": goMod, "cmd/a/main.go": mainGo, "cmd/b/main.go": mainGo}, "", "", nil, nil, ErrDetect},
		{"go no main package", map[string]string{"go.mod": goMod, "shop.go": libGo}, "", "", nil, nil, ErrDetect},
		{"go Procfile", map[string]string{"go.mod": goMod, "main.go": mainGo, "Procfile": "web: /app -addr :8080"}, StackGo, "Procfile web",
			[]string{"# plat runs the Procfile's web line instead of this CMD.\nCMD [\"/app\"]"}, []string{"CMD /app"}, nil},
		{"go wins over package.json", map[string]string{"go.mod": goMod, "main.go": mainGo, "package.json": pkgStart}, StackGo, "Go", nil, nil, nil},
		// Python.
		{"python app.py", map[string]string{"requirements.txt": "# stdlib only\n", "app.py": ""}, StackPython, "Python (requirements.txt)",
			[]string{"FROM " + DefaultPythonImage, "ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1", `CMD ["python3","app.py"]`}, []string{"pip install"}, nil},
		{"python requirements installed", map[string]string{"requirements.txt": "flask==3.0\n", "main.py": ""}, StackPython, "requirements.txt",
			[]string{"COPY requirements.txt ./\nRUN python3 -m pip install -r requirements.txt\nCOPY . .", `CMD ["python3","main.py"]`}, nil, nil},
		{"python requirements include another file", map[string]string{"requirements.txt": "# prod\n-r base.txt\n", "base.txt": "flask\n", "app.py": ""}, StackPython, "requirements.txt",
			[]string{"COPY . .\nRUN python3 -m pip install -r requirements.txt"}, []string{"COPY requirements.txt"}, nil},
		{"python blank requirements", map[string]string{"requirements.txt": "\n  \n# none\n", "app.py": ""}, StackPython, "requirements.txt",
			nil, []string{"pip install"}, nil},
		{"python gunicorn django", map[string]string{"requirements.txt": "Django\ngunicorn==22\n", "manage.py": "", "shop/wsgi.py": ""}, StackPython, "Python",
			[]string{"CMD gunicorn --bind 0.0.0.0:$PORT shop.wsgi"}, nil, nil},
		{"python gunicorn flask", map[string]string{"requirements.txt": "flask\ngunicorn\n", "app.py": ""}, StackPython, "Python",
			[]string{"CMD gunicorn --bind 0.0.0.0:$PORT app:app"}, nil, nil},
		{"python uvicorn", map[string]string{"requirements.txt": "fastapi\nuvicorn[standard]\n", "main.py": ""}, StackPython, "Python",
			[]string{"CMD uvicorn --host 0.0.0.0 --port $PORT main:app"}, nil, nil},
		{"python pyproject", map[string]string{"pyproject.toml": "[project]\nname = \"a\"\ndependencies = [\"gunicorn>=22\"]\n", "app.py": ""}, StackPython, "Python (pyproject.toml)",
			[]string{"RUN python3 -m pip install .", "CMD gunicorn --bind 0.0.0.0:$PORT app:app"}, nil, nil},
		{"python Procfile wins over gunicorn", map[string]string{"requirements.txt": "gunicorn\n", "app.py": "", "Procfile": "web: gunicorn -w 4 -b :$PORT app:server\nrelease: python3 migrate.py\n"}, StackPython, "Procfile web",
			[]string{"CMD gunicorn -w 4 -b :$PORT app:server"}, []string{"gunicorn --bind"}, nil},
		{"python nothing to run", map[string]string{"requirements.txt": "requests\n", "lib.py": ""}, "", "", nil, nil, ErrDetect},
		// Ruby.
		{"ruby rack", map[string]string{"Gemfile": "gem 'sinatra'", "Gemfile.lock": "", "config.ru": ""}, StackRuby, "Ruby (Gemfile, config.ru)",
			[]string{"FROM " + DefaultRubyImage, "COPY Gemfile Gemfile.lock ./", "RUN bundle install", "CMD bundle exec rackup --host 0.0.0.0 --port $PORT"}, nil, nil},
		{"ruby rails", map[string]string{"Gemfile": "gem 'rails'", "Gemfile.lock": "", "config.ru": "", "config/application.rb": "", "bin/rails": "", "config/importmap.rb": ""}, StackRuby, "Rails",
			[]string{"ENV RAILS_ENV=production RAILS_LOG_TO_STDOUT=1 RAILS_SERVE_STATIC_FILES=1", "RUN SECRET_KEY_BASE_DUMMY=1 bundle exec rails assets:precompile", "CMD bundle exec rails server -b 0.0.0.0 -p $PORT"}, []string{"rackup"}, nil},
		{"ruby no lock", map[string]string{"Gemfile": "", "config.ru": ""}, StackRuby, "Ruby",
			[]string{"COPY Gemfile ./"}, []string{"Gemfile.lock"}, nil},
		{"ruby Procfile", map[string]string{"Gemfile": "", "app.rb": "", "Procfile": "web: bundle exec ruby app.rb -p $PORT"}, StackRuby, "Procfile web",
			[]string{"CMD bundle exec ruby app.rb -p $PORT"}, nil, nil},
		{"ruby nothing to run", map[string]string{"Gemfile": "", "app.rb": ""}, "", "", nil, nil, ErrDetect},
		{"ruby wins over package.json", map[string]string{"Gemfile": "", "config.ru": "", "package.json": pkgStart}, StackRuby, "Ruby", nil, nil, nil},
		// Unknown, and a bad Procfile.
		{"unknown", map[string]string{"README.md": "", "main.c": ""}, "", "", nil, nil, ErrUnknownStack},
		{"index.html below the root", map[string]string{"public/index.html": ""}, "", "", nil, nil, ErrUnknownStack},
		{"empty", map[string]string{}, "", "", nil, nil, ErrNoDockerfile},
		{"bad Procfile", map[string]string{"index.html": "", "Procfile": "worker: x\n"}, "", "", nil, nil, ErrProcfile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Detect(source(tc.files), nil)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g.Stack != tc.stack || !strings.Contains(g.Detected, tc.detected) {
				t.Errorf("stack %q detected %q, want %q and %q", g.Stack, g.Detected, tc.stack, tc.detected)
			}
			for _, w := range tc.want {
				if !strings.Contains(g.Dockerfile, w) {
					t.Errorf("Dockerfile lacks the line %q:\n%s", w, g.Dockerfile)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(g.Dockerfile, n) {
					t.Errorf("Dockerfile has %q:\n%s", n, g.Dockerfile)
				}
			}
			if !strings.HasPrefix(g.Dockerfile, "# Generated by plat") || !strings.Contains(g.Dockerfile, "commit this file as Dockerfile") {
				t.Errorf("Dockerfile does not say where it comes from and how to take over:\n%s", g.Dockerfile)
			}
		})
	}
}

// TestDetectBaseImages: a configured base image replaces a stack's default,
// and the Dockerfile names it.
func TestDetectBaseImages(t *testing.T) {
	bases := BaseImages{}
	for _, s := range []string{"node=my/node:18", "static=my/httpd", "go=my/go:1.19"} {
		if err := bases.Set(s); err != nil {
			t.Fatal(err)
		}
	}
	g, err := Detect(source(map[string]string{"package.json": `{"scripts":{"build":"x"}}`}), bases)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FROM my/node:18 AS build\n", "FROM my/httpd\n", "# Base image: my/node:18 (build; set with plat daemon --base-image node=IMAGE), my/httpd (serve; set with plat daemon --base-image static=IMAGE)."} {
		if !strings.Contains(g.Dockerfile, want) {
			t.Errorf("Dockerfile lacks %q:\n%s", want, g.Dockerfile)
		}
	}
	g, err = Detect(source(map[string]string{"requirements.txt": "", "app.py": ""}), bases)
	if err != nil || !strings.Contains(g.Dockerfile, "FROM "+DefaultPythonImage+"\n") {
		t.Errorf("an unset stack keeps its default: %v\n%s", err, g.Dockerfile)
	}
}

func TestBaseImagesSet(t *testing.T) {
	for _, tc := range []struct {
		in, err string
	}{
		{"node=node:20", ""},
		{" ruby = ruby:3.3 ", ""},
		{"java=eclipse-temurin", `unknown stack "java"`},
		{"node", "want STACK=IMAGE"},
		{"node=", "want STACK=IMAGE"},
		{"=img", "want STACK=IMAGE"},
		{"node=a b", "no blanks"},
	} {
		err := BaseImages{}.Set(tc.in)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("Set(%q) = %v, want %q", tc.in, err, tc.err)
		}
	}
	b := BaseImages{}
	b.Set("node=n")
	b.Set("go=g")
	if got := b.String(); got != "go=g,node=n" {
		t.Errorf("String() = %q", got)
	}
}

// TestBuildGeneratesDockerfile: a source without a Dockerfile reaches the
// engine with every file of the source plus the generated Dockerfile;
// OnGenerate sees it before the build and the result carries it.
func TestBuildGeneratesDockerfile(t *testing.T) {
	reg := func(name, data string) entry { return entry{name, tar.TypeReg, data} }
	for _, compress := range []bool{false, true} {
		src := tarOf(t, entry{"pax_global_header", tar.TypeXGlobalHeader, "abc"}, entry{"public/", tar.TypeDir, ""},
			reg("index.html", "<h1>hi</h1>"), reg("public/logo.svg", "<svg/>"), reg("Procfile", "release: echo migrate\n"))
		if compress {
			src = gz(t, src)
		}
		fe := &fakeEngine{}
		var seen *Generated
		res, err := New(fe).BuildRelease(context.Background(), Request{
			App: "site", Version: 3, Source: bytes.NewReader(src), BaseImages: BaseImages{StackStatic: "my/httpd"},
			OnGenerate: func(g Generated) {
				if fe.calls != 0 {
					t.Error("OnGenerate after the build started")
				}
				seen = &g
			},
		}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if seen == nil || res.Generated == nil || res.Generated.Dockerfile != seen.Dockerfile || seen.Stack != StackStatic {
			t.Fatalf("generated %+v, OnGenerate %+v", res.Generated, seen)
		}
		if res.Procfile[ProcessRelease] != "echo migrate" {
			t.Errorf("Procfile %v", res.Procfile)
		}
		got, err := ReadSource(bytes.NewReader(fe.context))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"index.html", "public/logo.svg", "Procfile", "Dockerfile"} {
			if !got.Files[name] {
				t.Errorf("build context lacks %s: %v", name, got.Files)
			}
		}
		tr := tar.NewReader(bytes.NewReader(fe.context))
		for {
			hdr, err := tr.Next()
			if err != nil {
				t.Fatalf("no Dockerfile in the build context: %v", err)
			}
			if hdr.Name == "Dockerfile" {
				b, _ := io.ReadAll(tr)
				if string(b) != seen.Dockerfile || !strings.Contains(string(b), "FROM my/httpd\n") {
					t.Errorf("Dockerfile in the context:\n%s", b)
				}
				break
			}
		}
	}
	// The repository's own Dockerfile: nothing generated.
	fe := &fakeEngine{}
	res, err := New(fe).BuildRelease(context.Background(), Request{App: "site", Version: 4, Source: bytes.NewReader(tarOf(t, reg("Dockerfile", "FROM scratch\n"), reg("index.html", "")))}, io.Discard)
	if err != nil || res.Generated != nil {
		t.Errorf("own Dockerfile: generated %+v, err %v", res.Generated, err)
	}
}
