package kube_test

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/slipwayhq/slipway/tools/internal/devenv/devenvtest"
	"github.com/slipwayhq/slipway/tools/internal/devenv/kube"
)

// TestContainerLogs reads a simulated pod's logs through the apiserver:
// the whole file, a tail, each container's own file, and a follow that
// delivers a line appended while it waits.
func TestContainerLogs(t *testing.T) {
	s := devenvtest.Start(t, &kube.Cluster{ID: "logs", Nodes: 1})
	env := s.Env()
	cs := clientset(t, env[kube.EnvKubeconfig("logs")])
	dir := env[kube.EnvLogDir("logs")]
	if dir == "" {
		t.Fatalf("%s not published", kube.EnvLogDir("logs"))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "talker"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "app", Image: "registry.example/app:1"},
			{Name: kube.FollowContainer, Image: "registry.example/app:1"},
		}},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "pod running", func() error {
		p, err := cs.CoreV1().Pods("default").Get(ctx, pod.Name, metav1.GetOptions{})
		if err == nil && p.Status.Phase != corev1.PodRunning {
			return errPhase(p.Status.Phase)
		}
		return err
	})
	read := func(t *testing.T, opts *corev1.PodLogOptions) []string {
		t.Helper()
		b, err := cs.CoreV1().Pods("default").GetLogs(pod.Name, opts).DoRaw(ctx)
		if err != nil {
			t.Fatalf("logs %+v: %v", opts, err)
		}
		return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	}
	all := kube.LogLines()
	t.Run("all", func(t *testing.T) {
		if got := read(t, &corev1.PodLogOptions{Container: "app"}); !equal(got, all) {
			t.Errorf("lines %q, want %q", got, all)
		}
	})
	t.Run("tail", func(t *testing.T) {
		if got := read(t, &corev1.PodLogOptions{Container: "app", TailLines: ptr.To[int64](3)}); !equal(got, all[len(all)-3:]) {
			t.Errorf("lines %q, want %q", got, all[len(all)-3:])
		}
	})
	t.Run("follow", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		// The answer's headers come with its first line: open the stream
		// aside.
		lines := make(chan string)
		go func() {
			defer close(lines)
			rc, err := cs.CoreV1().Pods("default").GetLogs(pod.Name, &corev1.PodLogOptions{Container: kube.FollowContainer, Follow: true}).Stream(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			defer rc.Close()
			sc := bufio.NewScanner(rc)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		// kwok may not watch the file yet: append until a line arrives.
		f, err := os.OpenFile(filepath.Join(dir, kube.FollowLogFile), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("stream ended before a line")
				}
				if l != "followed" {
					t.Fatalf("line %q, want %q", l, "followed")
				}
				cancel()
				for range lines { // ends once the context is cancelled
				}
				return
			case <-tick.C:
				if _, err := io.WriteString(f, kube.CRILogLine(time.Now(), "followed")); err != nil {
					t.Fatal(err)
				}
			case <-ctx.Done():
				t.Fatal("no line followed")
			}
		}
	})
}

type errPhase corev1.PodPhase

func (e errPhase) Error() string { return "phase " + string(e) }

func equal(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }
