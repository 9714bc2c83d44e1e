package releases

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/pkg/validate"
	"github.com/slipwayhq/slipway/services/releases/internal/podlogs"
	"github.com/slipwayhq/slipway/services/releases/internal/status"
)

func TestLogQueryCheck(t *testing.T) {
	for _, tc := range []struct {
		name  string
		q     LogQuery
		field string
	}{
		{name: "defaults", q: LogQuery{}},
		{name: "all set", q: LogQuery{Pod: "web-5d8f7-abcde", Container: "app", Tail: maxLogTail, Since: time.Hour, Follow: true}},
		{name: "negative tail", q: LogQuery{Tail: -1}, field: "tail"},
		{name: "tail too long", q: LogQuery{Tail: maxLogTail + 1}, field: "tail"},
		{name: "negative since", q: LogQuery{Since: -time.Second}, field: "since"},
		{name: "bad pod", q: LogQuery{Pod: "../x"}, field: "pod"},
		{name: "bad container", q: LogQuery{Container: "A_b"}, field: "container"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.q.check()
			fe, ok := validate.AsFieldError(err)
			switch {
			case tc.field == "" && err != nil:
				t.Errorf("check: %v, want nil", err)
			case tc.field != "" && (!ok || fe.Field != tc.field):
				t.Errorf("check: %v, want a field error on %s", err, tc.field)
			}
		})
	}
}

func TestLogTargets(t *testing.T) {
	pods := []status.Pod{
		{Namespace: "ns", Name: "web-b", Containers: []string{"app", "sidecar"}, Init: []string{"migrate"}},
		{Namespace: "ns", Name: "web-a", Containers: []string{"app"}},
	}
	many := make([]status.Pod, maxLogPods+5)
	for i := range many {
		many[i] = status.Pod{Namespace: "ns", Name: fmt.Sprintf("p%d", i), Containers: []string{"app"}}
	}
	for _, tc := range []struct {
		name    string
		q       LogQuery
		pods    []status.Pod
		want    string
		wantErr error
	}{
		{name: "every container of every pod", pods: pods, want: "[{ns web-b app} {ns web-b sidecar} {ns web-a app}]"},
		{name: "one pod", q: LogQuery{Pod: "web-a"}, pods: pods, want: "[{ns web-a app}]"},
		{name: "one container", q: LogQuery{Container: "sidecar"}, pods: pods, want: "[{ns web-b sidecar}]"},
		{name: "an init container of a named pod", q: LogQuery{Pod: "web-b", Container: "migrate"}, pods: pods, want: "[{ns web-b migrate}]"},
		{name: "another pod", q: LogQuery{Pod: "other"}, pods: pods, wantErr: ErrPodNotFound},
		{name: "a container none has", q: LogQuery{Container: "nope"}, pods: pods, wantErr: ErrPodNotFound},
		{name: "a container the named pod lacks", q: LogQuery{Pod: "web-a", Container: "sidecar"}, pods: pods, wantErr: ErrPodNotFound},
		{name: "no pods", pods: nil, want: "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.q.targets(tc.pods, "ns/web")
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("targets: %v, want %v", err, tc.wantErr)
			}
			if err == nil && fmt.Sprint(orEmpty(got)) != tc.want {
				t.Errorf("targets %v, want %s", got, tc.want)
			}
		})
	}
	t.Run("at most maxLogPods pods", func(t *testing.T) {
		got, err := LogQuery{}.targets(many, "ns/web")
		if err != nil || len(got) != maxLogPods || got[0].Pod != "p0" {
			t.Errorf("targets: %d (first %v), %v; want the first %d", len(got), got[0], err, maxLogPods)
		}
	})
}

func orEmpty(t []podlogs.Target) []podlogs.Target {
	if t == nil {
		return []podlogs.Target{}
	}
	return t
}
