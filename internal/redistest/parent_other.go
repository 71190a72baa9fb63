//go:build !linux

package redistest

import "os/exec"

// dieWithParent does nothing where the kernel cannot kill a child with its
// parent: a test binary that dies leaves its servers running.
func dieWithParent(*exec.Cmd) {}
