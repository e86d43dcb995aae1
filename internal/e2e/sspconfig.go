package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"embed"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"
)

//go:embed templates/*.php.tmpl
var templateFiles embed.FS

// sspTemplates renders the PHP files SimpleSAMLphp reads. Every value goes
// through the php function, so no user name or URL can break out of its
// string.
var sspTemplates = template.Must(template.New("ssp").
	Funcs(template.FuncMap{"php": phpLiteral}).
	ParseFS(templateFiles, "templates/*.php.tmpl"))

// sspSite is one SimpleSAMLphp instance on disk: where it answers, who can
// sign in, which service providers it serves and the folders it uses.
type sspSite struct {
	BaseURL          string
	EntityID         string
	SecretSalt       string
	AdminPassword    string
	Users            []SSPUser
	ServiceProviders []SSPServiceProvider

	ConfigDir   string
	MetadataDir string
	CertDir     string
	LogDir      string
	DataDir     string
	TempDir     string
	SessionDir  string
}

// newSSPSite lays out the folders of an instance under root, with fresh
// secrets.
func newSSPSite(root string, cfg SSPConfig) (*sspSite, error) {
	s := &sspSite{
		SecretSalt:       rand.Text(),
		AdminPassword:    rand.Text(),
		Users:            cfg.Users,
		ServiceProviders: cfg.ServiceProviders,
		ConfigDir:        filepath.Join(root, "config"),
		MetadataDir:      filepath.Join(root, "metadata"),
		CertDir:          filepath.Join(root, "cert"),
		LogDir:           filepath.Join(root, "log"),
		DataDir:          filepath.Join(root, "data"),
		TempDir:          filepath.Join(root, "tmp"),
		SessionDir:       filepath.Join(root, "sessions"),
	}
	for _, dir := range []string{s.ConfigDir, s.MetadataDir, s.CertDir,
		s.LogDir, s.DataDir, s.TempDir, s.SessionDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("creating %s: %w", dir, err)
		}
	}
	if err := writeKeyPair(s.CertDir, "idp"); err != nil {
		return nil, err
	}
	return s, nil
}

// writeConfig writes the settings for an instance answering at baseURL.
// It may be called again with another address.
func (s *sspSite) writeConfig(baseURL string) error {
	s.BaseURL = baseURL
	s.EntityID = baseURL + "saml2/idp/metadata.php"
	files := []struct{ template, path string }{
		{"config.php.tmpl", filepath.Join(s.ConfigDir, "config.php")},
		{"authsources.php.tmpl",
			filepath.Join(s.ConfigDir, "authsources.php")},
		{"saml20-idp-hosted.php.tmpl",
			filepath.Join(s.MetadataDir, "saml20-idp-hosted.php")},
		{"saml20-sp-remote.php.tmpl",
			filepath.Join(s.MetadataDir, "saml20-sp-remote.php")},
	}
	for _, f := range files {
		var buf bytes.Buffer
		if err := sspTemplates.ExecuteTemplate(&buf, f.template, s); err != nil {
			return fmt.Errorf("rendering %s: %w", f.template, err)
		}
		if err := os.WriteFile(f.path, buf.Bytes(), 0o600); err != nil {
			return fmt.Errorf("writing %s: %w", f.path, err)
		}
	}
	return nil
}

// phpLiteral writes v as a PHP literal: a single-quoted string, a boolean,
// an integer or a list of strings.
func phpLiteral(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return phpString(v), nil
	case bool:
		return fmt.Sprint(v), nil
	case int:
		return fmt.Sprint(v), nil
	case []string:
		quoted := make([]string, len(v))
		for i, s := range v {
			quoted[i] = phpString(s)
		}
		return "[" + strings.Join(quoted, ", ") + "]", nil
	default:
		return "", fmt.Errorf("no PHP literal for %T", v)
	}
}

// phpString quotes s for PHP, where only a backslash and a single quote
// need escaping inside single quotes.
func phpString(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `'`, `\'`)
	return "'" + s + "'"
}

// writeKeyPair writes name.key and name.crt into dir: a fresh RSA-2048 key
// and a self-signed certificate for it. The certificate is valid from an
// hour ago for a day, by the real clock, since the real identity provider
// and service provider judge it by that clock too.
func writeKeyPair(dir, name string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generating key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject: pkix.Name{
			CommonName:   "arrowgate e2e identity provider",
			Organization: []string{"Arrowgate tests"},
		},
		NotBefore: now.Add(-time.Hour),
		NotAfter:  now.Add(24 * time.Hour),
		KeyUsage:  x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl,
		&key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("creating certificate: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding key: %w", err)
	}
	if err := writePEM(filepath.Join(dir, name+".key"),
		"PRIVATE KEY", pkcs8); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, name+".crt"), "CERTIFICATE", der)
}

// writePEM writes one PEM block to path, readable by its owner only.
func writePEM(path, blockType string, der []byte) error {
	data := pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
