package state

import (
	"path/filepath"
	"testing"
)

// BenchmarkAppendCall is the cost of journaling one call: one durable
// (synchronous=FULL, WAL) commit on a state file on disk.
func BenchmarkAppendCall(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	result := `{"t":"ssh.result","v":{"stdout":"Linux 6.1.0\n","stderr":"","exit_code":0,"duration":0.004}}`
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.AppendCall("bench", Call{Cell: int64(i / 10), Seq: i % 10, Builtin: "ssh_run", ArgsDigest: "0123456789abcdef", Args: `ssh_run(node:bench/g/u/u-1#1, "uname -sr")`, Result: result}); err != nil {
			b.Fatal(err)
		}
	}
}
