package state

import (
	"path/filepath"
	"testing"

	"github.com/kumo-dev/kumo/state/pgtest"
)

// BenchmarkAppendCall is the cost of journaling one call: one durable
// (synchronous=FULL, WAL) commit on a state file on disk.
// The PostgreSQL one is a synchronous commit to the loopback test server,
// fsync on. The run is locked, as in a run: on PostgreSQL the journal is
// written on the lock's own session.
func BenchmarkAppendCall(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		s, err := Open(filepath.Join(b.TempDir(), "state.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		appendCalls(b, s)
	})
	b.Run("postgres", func(b *testing.B) {
		s, err := OpenPostgres(pgtest.URL(b), b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		appendCalls(b, s)
	})
}

func appendCalls(b *testing.B, s *Store) {
	result := `{"t":"ssh.result","v":{"stdout":"Linux 6.1.0\n","stderr":"","exit_code":0,"duration":0.004}}`
	l, err := s.LockRun("bench")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Unlock()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.AppendCall("bench", Call{Cell: int64(i / 10), Seq: i % 10, Builtin: "ssh_run", ArgsDigest: "0123456789abcdef", Args: `ssh_run(node:bench/g/u/u-1#1, "uname -sr")`, Result: result}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLockRun is a run lock's acquire and release round trip: an
// flock beside the SQLite file, a session advisory lock (its own
// connection, holder row, check) on PostgreSQL.
func BenchmarkLockRun(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			var s *Store
			var err error
			if backend == "sqlite" {
				s, err = Open(filepath.Join(b.TempDir(), "state.db"))
			} else {
				s, err = OpenPostgres(pgtest.URL(b), b.TempDir())
			}
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				l, err := s.LockRun("bench")
				if err != nil {
					b.Fatal(err)
				}
				l.Unlock()
			}
		})
	}
}
