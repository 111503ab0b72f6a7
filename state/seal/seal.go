// Package seal keeps values in the state encrypted: AES-256-GCM under a
// key that lives outside the state (a file of the user's, or of a team
// that shares one through $KUMO_SECRET_KEY_FILE), with the value's name
// bound to it.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Generated secrets are kept in the state sealed with AES-256-GCM under a
// key of the user's that lives outside the state file: a copied or
// leaked state.db does not give them away, and the secret's name is
// bound to its value (a sealed value moved under another name does not
// open).

// KeyFile is where the sealing key lives: $KUMO_SECRET_KEY_FILE, else
// ~/.config/kumo/secret.key ($XDG_CONFIG_HOME honoured).
func KeyFile() string {
	if p := os.Getenv("KUMO_SECRET_KEY_FILE"); p != "" {
		return p
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		dir = filepath.Join(os.Getenv("HOME"), ".config")
	}
	return filepath.Join(dir, "kumo", "secret.key")
}

const keySize = 32

// LoadKey reads the sealing key, making it (mode 0600) when create is
// set and there is none.
func LoadKey(create bool) ([]byte, error) {
	path := KeyFile()
	key, err := os.ReadFile(path)
	switch {
	case err == nil && len(key) == keySize:
		return key, nil
	case err == nil:
		return nil, fmt.Errorf("%s is not a kumo secret key (%d bytes, want %d)", path, len(key), keySize)
	case !errors.Is(err, fs.ErrNotExist) || !create:
		return nil, err
	}
	key = make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	// O_EXCL: two kumo processes making the key at once keep the first.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadKey(false)
	}
	if err != nil {
		return nil, err
	}
	_, err = f.Write(key)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return key, err
}

func aead(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Seal encrypts value for the secret called name: nonce then ciphertext.
func Seal(key []byte, name, value string) ([]byte, error) {
	g, err := aead(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return g.Seal(nonce, nonce, []byte(value), []byte(name)), nil
}

// Unseal is Seal's inverse; it fails for another key or another name.
func Unseal(key []byte, name string, sealed []byte) (string, error) {
	g, err := aead(key)
	if err != nil {
		return "", err
	}
	if len(sealed) < g.NonceSize() {
		return "", errors.New("sealed value too short")
	}
	plain, err := g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], []byte(name))
	if err != nil {
		return "", errors.New("it does not open with this key")
	}
	return string(plain), nil
}
