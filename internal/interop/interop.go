// Package interop helps tests that drive real clients from Debian (mbsync,
// swaks, curl, vdirsyncer, litmus, ...). Without the client the test skips
// with a clear message; with KREIDE_INTEROP=1 (as in CI) it fails instead.
package interop

import (
	"os"
	"os/exec"
	"testing"
)

// Required reports whether missing clients are failures (KREIDE_INTEROP=1).
func Required() bool { return os.Getenv("KREIDE_INTEROP") == "1" }

// Need returns the path of the named program, or skips (fails under
// KREIDE_INTEROP=1) when it is not installed. pkg is the Debian package.
func Need(t testing.TB, program, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	if err == nil {
		return path
	}
	if Required() {
		t.Fatalf("%s is not installed (Debian package %s) and KREIDE_INTEROP=1", program, pkg)
	}
	t.Skipf("%s not installed: apt-get install %s to run this interop test (set KREIDE_INTEROP=1 to make this a failure)", program, pkg)
	return ""
}

// NeedPython returns Debian's /usr/bin/python3 (where Debian's Python
// modules load) after checking that module imports.
func NeedPython(t testing.TB, module, pkg string) string {
	t.Helper()
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		py = Need(t, "python3", "python3")
	}
	if module != "" {
		if err := exec.Command(py, "-c", "import "+module).Run(); err != nil {
			if Required() {
				t.Fatalf("python module %s missing (Debian package %s) and KREIDE_INTEROP=1", module, pkg)
			}
			t.Skipf("python module %s missing: apt-get install %s", module, pkg)
		}
	}
	return py
}
