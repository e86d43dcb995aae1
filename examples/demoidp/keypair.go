package demoidp

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// certificateLifetime is how long a new certificate is valid.
const certificateLifetime = 10 * 365 * 24 * time.Hour

// NewKeyPair returns a new RSA 2048 key and a self-signed certificate for
// it, valid from an hour before now for ten years.
func NewKeyPair(now time.Time) (*rsa.PrivateKey, *x509.Certificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, fmt.Errorf("generating key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("generating serial number: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName: "Arrowgate demo identity provider",
		},
		NotBefore: now.Add(-time.Hour),
		NotAfter:  now.Add(certificateLifetime),
		KeyUsage: x509.KeyUsageDigitalSignature |
			x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl,
		&key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("making certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing certificate: %w", err)
	}
	return key, cert, nil
}

// LoadOrCreateKeyPair returns the key and certificate kept in the PEM file
// at path. When there is no file, it makes a new pair with NewKeyPair and
// writes it there (mode 0600, its directory 0700), so that the identity
// provider keeps its key, and service providers their trust in it,
// across restarts. Two processes starting at once agree on one pair.
func LoadOrCreateKeyPair(path string, now time.Time) (*rsa.PrivateKey,
	*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createKeyPair(path, now)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading key pair: %w", err)
	}
	return parseKeyPair(path, data, now)
}

// createKeyPair makes a key pair and writes it to path, unless another
// process wrote one first, which is then returned.
func createKeyPair(path string, now time.Time) (*rsa.PrivateKey,
	*x509.Certificate, error) {
	key, cert, err := NewKeyPair(now)
	if err != nil {
		return nil, nil, err
	}
	data, err := encodeKeyPair(key, cert)
	if err != nil {
		return nil, nil, err
	}
	err = writeNewFile(path, data)
	if errors.Is(err, fs.ErrExist) {
		if data, err = os.ReadFile(path); err != nil {
			return nil, nil, fmt.Errorf("reading key pair: %w", err)
		}
		return parseKeyPair(path, data, now)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("writing key pair: %w", err)
	}
	return key, cert, nil
}

// writeNewFile writes data to a temporary file next to path and links it
// to path, which fails with fs.ErrExist if path exists: a reader never
// sees a half-written file.
func writeNewFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".keypair-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Link(tmp.Name(), path)
}

// encodeKeyPair returns key (PKCS #8) and cert as PEM blocks.
func encodeKeyPair(key *rsa.PrivateKey, cert *x509.Certificate) ([]byte,
	error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	return append(data, pem.EncodeToMemory(&pem.Block{
		Type: "CERTIFICATE", Bytes: cert.Raw,
	})...), nil
}

// parseKeyPair reads the key and certificate of a key pair file, and
// checks that they belong together and that the certificate is valid.
func parseKeyPair(path string, data []byte, now time.Time) (*rsa.PrivateKey,
	*x509.Certificate, error) {
	var key *rsa.PrivateKey
	var cert *x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			key, err = parseRSAKey(block.Bytes)
		case "CERTIFICATE":
			cert, err = x509.ParseCertificate(block.Bytes)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("parsing %s in %s: %w",
				block.Type, path, err)
		}
	}
	if err := checkKeyPair(key, cert, now); err != nil {
		return nil, nil, fmt.Errorf("%s: %w (delete the file to make a "+
			"new key pair)", path, err)
	}
	return key, cert, nil
}

// parseRSAKey parses a PKCS #8 RSA private key.
func parseRSAKey(der []byte) (*rsa.PrivateKey, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	key, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is a %T, not RSA", k)
	}
	return key, nil
}

// checkKeyPair checks that a key pair file held both parts, that they
// match and that the certificate is valid at now.
func checkKeyPair(key *rsa.PrivateKey, cert *x509.Certificate,
	now time.Time) error {
	switch {
	case key == nil:
		return errors.New("no PRIVATE KEY block")
	case cert == nil:
		return errors.New("no CERTIFICATE block")
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return errors.New("the certificate is not for the key")
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return fmt.Errorf("the certificate is valid from %s to %s only",
			cert.NotBefore.Format(time.DateOnly),
			cert.NotAfter.Format(time.DateOnly))
	}
	return nil
}
