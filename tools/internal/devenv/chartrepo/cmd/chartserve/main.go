// Command chartserve serves a folder of Helm chart archives and their
// index.yaml as an HTTP chart repository, optionally behind basic auth.
//
//	chartserve -addr 127.0.0.1:8879 -dir repo [-auth-file auth]
//
// The auth file holds one "user:password" line; it is a file, not a flag,
// because any local user can read a process's arguments. chartserve imports
// only the standard library, so it builds on its own, outside any module.
package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8879", "`address` to listen on")
	dir := flag.String("dir", ".", "`folder` to serve")
	authFile := flag.String("auth-file", "", "`file` holding user:password; when set, every request needs them")
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(log, *addr, *dir, *authFile); err != nil {
		log.Error("chartserve failed", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, addr, dir, authFile string) error {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("serve %s: not a folder (%v)", dir, err)
	}
	var h http.Handler = files(dir)
	if authFile != "" {
		b, err := os.ReadFile(authFile)
		if err != nil {
			return fmt.Errorf("read auth file: %w", err)
		}
		user, pw, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
		if !ok || user == "" || pw == "" {
			return errors.New("auth file: want one user:password line")
		}
		h = basicAuth(user, pw, h)
	}
	srv := &http.Server{
		Addr:              addr,
		Handler:           logged(log, h),
		ReadHeaderTimeout: 10 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("serving chart repository", "addr", addr, "dir", dir, "auth", authFile != "")
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	log.Info("stopped")
	return nil
}

// files serves the folder's files; folders are not listed.
func files(dir string) http.Handler {
	fs := http.FileServer(http.Dir(dir))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		fs.ServeHTTP(w, r)
	})
}

func basicAuth(user, pw string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		// Both compared, always, so timing tells nothing about either.
		userOK := subtle.ConstantTimeCompare([]byte(u), []byte(user)) == 1
		pwOK := subtle.ConstantTimeCompare([]byte(p), []byte(pw)) == 1
		if !ok || !userOK || !pwOK {
			w.Header().Set("WWW-Authenticate", `Basic realm="chartrepo", charset="UTF-8"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func logged(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		log.Info("request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "duration", time.Since(start))
	})
}
