package ociregistry_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/slipwayhq/slipway/tools/internal/devenv"
	"github.com/slipwayhq/slipway/tools/internal/devenv/devenvtest"
	"github.com/slipwayhq/slipway/tools/internal/devenv/ociregistry"
)

func TestRegistry(t *testing.T) {
	events := &eventLog{}
	listener := httptest.NewServer(events)
	defer listener.Close()

	s := devenvtest.Start(t, ociregistry.Registry{Notify: listener.URL + "/events"})
	env := s.Env()
	auth := remote.WithAuth(&authn.Basic{Username: env[ociregistry.UsernameEnv], Password: env[ociregistry.PasswordEnv]})
	tag, err := name.NewTag(env[ociregistry.AddrEnv]+"/smoke/random:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("unauthenticated push is refused", func(t *testing.T) {
		err := remote.Write(tag, img)
		var terr *transport.Error
		if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
			t.Fatalf("push without credentials: %v; want 401", err)
		}
	})

	t.Run("push resolves to its digest", func(t *testing.T) {
		if err := remote.Write(tag, img, auth); err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Head(tag, auth)
		if err != nil {
			t.Fatal(err)
		}
		if desc.Digest != want {
			t.Errorf("HEAD %s = %s, want %s", tag, desc.Digest, want)
		}
		got, err := crane.Digest(tag.String(), crane.Insecure,
			crane.WithAuth(&authn.Basic{Username: env[ociregistry.UsernameEnv], Password: env[ociregistry.PasswordEnv]}))
		if err != nil || got != want.String() {
			t.Errorf("crane.Digest = %s, %v; want %s", got, err, want)
		}
	})

	t.Run("push is notified", func(t *testing.T) {
		deadline := time.Now().Add(30 * time.Second)
		for !events.pushed("smoke/random", want.String()) {
			if time.Now().After(deadline) {
				t.Fatalf("no push event for smoke/random@%s; got %s", want, events)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("stop leaves nothing running", func(t *testing.T) {
		group := devenvtest.GroupMembers(t, s.State)
		if len(group) == 0 {
			t.Fatal("no process of the stack found")
		}
		s.Stop()
		for _, pid := range group {
			if devenv.Alive(pid) {
				t.Errorf("pid %d still running after Stop", pid)
			}
		}
	})
}

// eventLog records the events the registry notifies.
type eventLog struct {
	mu     sync.Mutex
	events []event
}

type event struct {
	Action string `json:"action"`
	Target struct {
		MediaType  string `json:"mediaType"`
		Digest     string `json:"digest"`
		Repository string `json:"repository"`
		Tag        string `json:"tag"`
	} `json:"target"`
}

func (l *eventLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var envelope struct {
		Events []event `json:"events"`
	}
	if err := json.NewDecoder(r.Body).Decode(&envelope); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	l.mu.Lock()
	l.events = append(l.events, envelope.Events...)
	l.mu.Unlock()
}

// pushed reports whether a push of the manifest digest to repo was notified.
func (l *eventLog) pushed(repo, digest string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		if e.Action == "push" && e.Target.Repository == repo && e.Target.Digest == digest {
			return true
		}
	}
	return false
}

func (l *eventLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, _ := json.Marshal(l.events)
	return string(b)
}
