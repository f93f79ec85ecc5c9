package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// staticMaxAge is how long browsers keep a static file fetched by its
// content-hashed URL (/static/app.js?v=HASH): a new daemon's files have
// new hashes, so they can be kept for good.
const staticMaxAge = "public, max-age=31536000, immutable"

// staticFile is one embedded static file, with its gzipped form and the
// hash that names its version.
type staticFile struct {
	body, gz []byte
	ctype    string
	hash     string // first hex digits of its SHA-256
	etag     string
}

// staticFiles are the files under assets/static, read once at start.
var staticFiles = loadStatic()

func loadStatic() map[string]*staticFile {
	files := map[string]*staticFile{}
	err := fs.WalkDir(assets, "assets/static", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		body, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		f := &staticFile{body: body, hash: hex.EncodeToString(sum[:8])}
		f.etag = `"` + f.hash + `"`
		f.ctype = mime.TypeByExtension(path.Ext(p))
		if f.ctype == "" {
			f.ctype = "application/octet-stream"
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(body)
		zw.Close()
		if buf.Len() < len(body) {
			f.gz = buf.Bytes()
		}
		files[strings.TrimPrefix(p, "assets/static/")] = f
		return nil
	})
	if err != nil {
		panic("read embedded static files: " + err.Error())
	}
	return files
}

// assetURL is the content-hashed URL of a static file, for the pages.
func assetURL(name string) template.URL {
	f, ok := staticFiles[name]
	if !ok {
		panic("no static file " + name)
	}
	return template.URL("/static/" + name + "?v=" + f.hash)
}

// serveStatic serves an embedded file gzipped when the client takes it,
// with an ETag, and cached for good when asked for by its hashed URL.
func (d *Dashboard) serveStatic(w http.ResponseWriter, r *http.Request) {
	f, ok := staticFiles[r.PathValue("file")]
	if !ok {
		d.notFound(w, r)
		return
	}
	h := w.Header()
	h.Set("ETag", f.etag)
	h.Set("Vary", "Accept-Encoding")
	if r.URL.Query().Get("v") == f.hash {
		h.Set("Cache-Control", staticMaxAge)
	} else {
		h.Set("Cache-Control", "no-cache") // revalidate: the ETag makes it a 304
	}
	if etagMatch(r.Header.Get("If-None-Match"), f.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", f.ctype)
	body := f.body
	if f.gz != nil && acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		body = f.gz
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

func etagMatch(header, etag string) bool {
	for t := range strings.SplitSeq(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

func acceptsGzip(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept-Encoding"), ",") {
		coding, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			return !strings.HasPrefix(strings.ReplaceAll(q, " ", ""), "q=0") || strings.HasPrefix(strings.ReplaceAll(q, " ", ""), "q=0.")
		}
	}
	return false
}
