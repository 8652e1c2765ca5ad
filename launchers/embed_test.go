package launchers

import (
	"os"
	"path/filepath"
	"testing"
)

func TestUnpackHoldsEveryKit(t *testing.T) {
	dir := t.TempDir()
	if err := Unpack(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"_common/predictions_server.py", "naturelm-v1.0/serve.py", "naturelm-v1.1/serve.py",
		"af-next/serve.py", "hf_transformers/serve.py", "naturelm-v1.1/setup.sh", "naturelm-v1.1/requirements.txt"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Errorf("unpacked kits lack %s: %v", f, err)
			continue
		}
		if filepath.Ext(f) == ".sh" && st.Mode().Perm()&0o100 == 0 {
			t.Errorf("%s is not executable", f)
		}
	}
}
