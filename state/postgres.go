package state

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// A state can live in PostgreSQL, for a team that shares one record of
// what exists: a URL such as postgres://db.example.org/kumo?environment=class.
// One database holds many environments, each in a PostgreSQL schema of
// its own (kumo_ENVIRONMENT, "default" when the URL names none), made on
// first use. Credentials come from libpq's usual places (PGPASSWORD,
// ~/.pgpass, PGSERVICE) or the URL, and are never written anywhere.

// IsPostgres reports whether a state location is a PostgreSQL URL.
func IsPostgres(location string) bool {
	return strings.HasPrefix(location, "postgres://") || strings.HasPrefix(location, "postgresql://")
}

var environmentName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,40}$`)

// OpenPostgres opens the environment a PostgreSQL URL names, creating
// its schema if needed. dir is the local folder beside it (keys, locks,
// local nodes).
func OpenPostgres(location, dir string) (*Store, error) {
	u, err := url.Parse(location)
	if err != nil {
		return nil, fmt.Errorf("state %s: not a PostgreSQL URL: %v", redact(location), err)
	}
	q := u.Query()
	env := q.Get("environment")
	if env == "" {
		env = "default"
	}
	if !environmentName.MatchString(env) {
		return nil, fmt.Errorf("state %s: environment=%q: want lower-case letters, digits and _, starting with a letter", redact(location), env)
	}
	q.Del("environment") // kumo's, not a PostgreSQL setting
	u.RawQuery = q.Encode()
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("state %s: %v", redact(location), err)
	}
	schema := "kumo_" + env
	cfg.RuntimeParams["search_path"] = schema
	// A journaled call is on the server's disk before the builtin
	// returns, whatever the server's default.
	cfg.RuntimeParams["synchronous_commit"] = "on"
	// The server's side of the keepalives: it ends the session of a
	// client that vanished (and frees its run lock) within half a minute.
	cfg.RuntimeParams["tcp_keepalives_idle"] = "10"
	cfg.RuntimeParams["tcp_keepalives_interval"] = "5"
	cfg.RuntimeParams["tcp_keepalives_count"] = "3"
	// TCP keepalives: a client that died without closing its connection
	// is noticed in seconds, not the kernel's two hours.
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 10 * time.Second}
	cfg.DialFunc = dialer.DialContext
	db := &sqlDB{DB: stdlib.OpenDB(*cfg), pg: true}
	st := &Store{DB: db, Path: redact(location), dir: dir, location: location}
	if err := db.Ping(); err != nil {
		db.Close()
		if strings.Contains(err.Error(), "unsupported startup parameter") {
			return nil, poolerError(st.Path)
		}
		return nil, fmt.Errorf("state %s: cannot reach PostgreSQL: %w", st.Path, err)
	}
	// A pooler that drops the session's settings (PgBouncer told to
	// ignore them) would mix environments and lose locks.
	var path string
	if err := db.QueryRow(`SELECT current_setting('search_path')`).Scan(&path); err != nil || path != schema {
		db.Close()
		return nil, poolerError(st.Path)
	}
	if err := upgrade(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("state %s: %w", st.Path, err)
	}
	return st, nil
}

// poolerError refuses a connection pooler in front of the server: kumo
// keeps a session for the whole run (its lock, its environment).
func poolerError(location string) error {
	return fmt.Errorf("state %s: the server there is a connection pooler (PgBouncer, say) that does not keep kumo's session settings or hands out sessions per transaction; kumo's run locks and environments need a session of their own for the whole run: point the state at PostgreSQL itself, or at a pool in session mode that passes search_path, synchronous_commit and tcp_keepalives_* through", location)
}

// redact is a URL without its password.
func redact(location string) string {
	u, err := url.Parse(location)
	if err != nil || u.User == nil {
		return location
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Environments lists the environments of the PostgreSQL database s is
// in, s's own included; a SQLite state is one environment, "".
func (s *Store) Environments() ([]string, error) {
	if !s.DB.pg {
		return []string{""}, nil
	}
	rows, err := s.DB.Query(`SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'kumo\_%' ORDER BY schema_name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		if env := strings.TrimPrefix(name, "kumo_"); environmentName.MatchString(env) {
			out = append(out, env)
		}
	}
	return out, rows.Err()
}

// Environment is s's environment name ("" for SQLite).
func (s *Store) Environment() string {
	if !s.DB.pg {
		return ""
	}
	u, err := url.Parse(s.location)
	if err != nil || u.Query().Get("environment") == "" {
		return "default"
	}
	return u.Query().Get("environment")
}

// OpenEnvironment opens another environment of the same database.
func (s *Store) OpenEnvironment(env string) (*Store, error) {
	u, err := url.Parse(s.location)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	q.Set("environment", env)
	u.RawQuery = q.Encode()
	return OpenPostgres(u.String(), s.dir)
}

// LastHolder says who last held run's lock, and since when (ok false on
// SQLite, or when nobody has).
func (s *Store) LastHolder(run string) (who, host string, since time.Time, ok bool) {
	if !s.DB.pg {
		return "", "", time.Time{}, false
	}
	h, err := s.holder(run)
	return h.Who, h.Host, h.Since, err == nil
}
