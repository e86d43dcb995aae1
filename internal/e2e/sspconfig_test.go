package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

// TestPHPReadsBackWhatWasWritten has PHP itself read the generated files,
// so that no character in a name, password or URL changes on the way or
// breaks out of its string.
func TestPHPReadsBackWhatWasWritten(t *testing.T) {
	php := requireSimpleSAMLphp(t)
	tricky := []SSPUser{
		{Username: `o'neil`, Password: `back\slash\'quote`,
			Email: "o'neil@example.com", Name: `Zoë "Z" $HOME`},
		{Username: "two\nlines", Password: `\\`, Email: `e\@x`,
			Name: "{{.Users}}"},
	}
	sps := []SSPServiceProvider{{
		EntityID: `http://127.0.0.1:9/it's\meta`,
		ACSURL:   "http://127.0.0.1:9/acs?a=1&b='2'",
	}}
	site, err := newSSPSite(t.TempDir(),
		SSPConfig{Users: tricky, ServiceProviders: sps})
	if err != nil {
		t.Fatal(err)
	}
	if err := site.writeConfig("http://127.0.0.2:9/"); err != nil {
		t.Fatal(err)
	}

	var sources struct{ Users map[string]json.RawMessage }
	readPHP(t, php, filepath.Join(site.ConfigDir, "authsources.php"),
		"config", &sources)
	for _, u := range tricky {
		var got map[string][]string
		raw := sources.Users[u.Username+":"+u.Password]
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("user %q: %v in %s", u.Username, err, raw)
		}
		want := map[string][]string{"email": {u.Email},
			"displayName": {u.Name}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("user %q: PHP reads %v, want %v", u.Username, got, want)
		}
	}

	var remote map[string]struct {
		AssertionConsumerService []struct{ Location string }
	}
	readPHP(t, php, filepath.Join(site.MetadataDir, "saml20-sp-remote.php"),
		"metadata", &remote)
	acs := remote[sps[0].EntityID].AssertionConsumerService
	if len(acs) != 1 || acs[0].Location != sps[0].ACSURL {
		t.Errorf("service provider %q: PHP reads ACS %+v, want %q",
			sps[0].EntityID, acs, sps[0].ACSURL)
	}
}

// readPHP runs the PHP file at path and decodes the variable it sets.
func readPHP(t testing.TB, php, path, variable string, v any) {
	t.Helper()
	out, err := exec.Command(php, "-r",
		`require $argv[1]; echo json_encode(${$argv[2]});`,
		path, variable).CombinedOutput()
	if err != nil {
		t.Fatalf("php reading %s: %v\n%s", path, err, out)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("decoding what php read from %s: %v\n%s", path, err, out)
	}
}
