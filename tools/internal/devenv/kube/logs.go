package kube

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Container logs. kwok serves the nodes' kubelet API (so the apiserver's
// pods/log reaches it) and answers every container's logs from one of two
// files in CRI format: FollowContainer's from FollowLogFile, which starts
// empty and to which tests append (CRILogLine) to see `follow` deliver
// lines; every other container's from AppLogFile, which holds LogLines and
// never changes, so tails are known.
const (
	AppLogFile      = "app.log"
	FollowLogFile   = "follow.log"
	FollowContainer = "follow"
)

// EnvLogDir is the env var holding the folder of cluster id's log files.
func EnvLogDir(id string) string { return "KUBE_" + envID(id) + "_LOGS" }

// LogLines are the lines of AppLogFile, oldest first.
func LogLines() []string {
	lines := make([]string, 10)
	for i := range lines {
		lines[i] = "slipway devstack log line " + strconv.Itoa(i+1)
	}
	return lines
}

// CRILogLine is line as a container runtime writes it to a log file.
func CRILogLine(t time.Time, line string) string {
	return t.UTC().Format(time.RFC3339Nano) + " stdout F " + line + "\n"
}

// writeLogs writes the log files into dir and returns kwok's configuration
// that serves them.
func writeLogs(dir string, now time.Time) (string, error) {
	var app strings.Builder
	for i, l := range LogLines() {
		app.WriteString(CRILogLine(now.Add(time.Duration(i)*time.Millisecond), l))
	}
	if err := os.WriteFile(filepath.Join(dir, AppLogFile), []byte(app.String()), 0o644); err != nil {
		return "", fmt.Errorf("write container logs: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, FollowLogFile), nil, 0o644); err != nil {
		return "", fmt.Errorf("write container logs: %w", err)
	}
	// No selector: every pod. kwok picks the entry naming the container,
	// else the one naming none.
	return fmt.Sprintf(`apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata:
  name: slipway-devstack
spec:
  logs:
  - containers: [%q]
    logsFile: %q
    follow: true
  - logsFile: %q
    follow: true
`, FollowContainer, filepath.Join(dir, FollowLogFile), filepath.Join(dir, AppLogFile)), nil
}
