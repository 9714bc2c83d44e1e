package testenv

import (
	"bytes"
	"fmt"
	"os"
)

// Stopped reports whether every thread of process pid is stopped (after a
// SIGSTOP). The stop is asynchronous: on a loaded machine a process can
// still answer requests just after kill(2) returns, so a test that
// simulates a hung server waits for this before it measures anything.
func Stopped(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			return false
		}
		// The state follows the parenthesised command name.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 || i+2 >= len(stat) || (stat[i+2] != 'T' && stat[i+2] != 't') {
			return false
		}
	}
	return true
}
