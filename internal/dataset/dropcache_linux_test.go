package dataset

import (
	"os"
	"syscall"
	"testing"
)

// dropCache asks the kernel to drop the page cache of one file (posix_fadvise DONTNEED),
// so that the next read comes from the device.
func dropCache(b *testing.B, name string) {
	f, err := os.Open(name)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, _, errno := syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, 4 /* POSIX_FADV_DONTNEED */, 0, 0); errno != 0 {
		b.Skipf("fadvise: %v", errno)
	}
}
