// Package monitoring_test checks the example Grafana dashboard, the
// Prometheus alerts and the documentation against the metrics the
// gateway exports.
package monitoring_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/arrowgate/arrowgate/caddymodule"
	"github.com/arrowgate/arrowgate/internal/gatewaytest"
)

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID      int     `json:"id"`
	Type    string  `json:"type"`
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"` // of a collapsed row
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

// query is one PromQL expression of the dashboard.
type query struct {
	where string // panel and target, for messages
	expr  string
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile("dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard.json has no title, uid or panels")
	}
	return d
}

// queries lists every expression of the dashboard's panels and
// variables; a panel other than a row without one is an error.
func queries(t *testing.T, d dashboard) []query {
	t.Helper()
	var out []query
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				out = append(out, query{
					where: fmt.Sprintf("panel %d %q, target %s", p.ID,
						p.Title, tg.RefID),
					expr: tg.Expr,
				})
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Definition != "" {
			out = append(out, query{"variable " + v.Name, v.Definition})
		}
	}
	return out
}

var metricName = regexp.MustCompile(`arrowgate_[a-z0-9_]+`)

// family returns the exported family a series name belongs to: itself,
// or the histogram whose _bucket, _sum or _count it is.
func family(name string, exported []string) (string, bool) {
	if slices.Contains(exported, name) {
		return name, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if ok && slices.Contains(exported, base) {
			return base, true
		}
	}
	return "", false
}

// checkNames reports every arrowgate_ name in text that the gateway
// does not export, and returns the families used.
func checkNames(t *testing.T, where, text string) []string {
	t.Helper()
	exported := caddymodule.MetricNames()
	var used []string
	for _, name := range metricName.FindAllString(text, -1) {
		f, ok := family(name, exported)
		if !ok {
			t.Errorf("%s: %s is not a metric the gateway exports", where,
				name)
			continue
		}
		used = append(used, f)
	}
	return used
}

func TestDashboardUsesEveryExportedMetricAndNoOther(t *testing.T) {
	used := map[string]bool{}
	for _, q := range queries(t, loadDashboard(t)) {
		if strings.TrimSpace(q.expr) == "" {
			t.Errorf("%s: empty query", q.where)
		}
		for _, f := range checkNames(t, q.where, q.expr) {
			used[f] = true
		}
	}
	for _, name := range caddymodule.MetricNames() {
		if !used[name] {
			t.Errorf("the dashboard shows nothing of %s", name)
		}
	}
}

func TestAlertsUseOnlyExportedMetrics(t *testing.T) {
	data, err := os.ReadFile("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	if used := checkNames(t, "alerts.yml", string(data)); len(used) == 0 {
		t.Fatal("alerts.yml names no metric")
	}
	for _, alert := range []string{"ArrowgateSeatsNearlyFull",
		"ArrowgateOutOfSeatsDenials", "ArrowgateAssertionRejectionsRising",
		"ArrowgateIdPMetadataStale", "ArrowgateStoreErrors"} {
		if !strings.Contains(string(data), "alert: "+alert+"\n") {
			t.Errorf("alerts.yml lacks %s", alert)
		}
	}
}

// The monitoring section, in docs/monitoring.md until it is merged into
// the README, lists every metric.
func TestDocumentationListsEveryMetric(t *testing.T) {
	var docs strings.Builder
	for _, p := range []string{"../../docs/monitoring.md",
		"../../README.md"} {
		data, err := os.ReadFile(p)
		if err == nil {
			docs.Write(data)
		}
	}
	checkNames(t, "the documentation", docs.String())
	for _, name := range caddymodule.MetricNames() {
		if !strings.Contains(docs.String(), "`"+name+"`") {
			t.Errorf("the documentation does not list `%s`", name)
		}
	}
}

// grafanaMacros are replaced by values Prometheus accepts, so that the
// dashboard's queries can be checked as PromQL.
var grafanaMacros = strings.NewReplacer(
	"$__rate_interval", "5m",
	"$__interval", "1m",
	"$__range", "1h",
	`"$org"`, `".*"`,
)

// TestDashboardQueriesAreValidPromQL has promtool parse every query of
// the dashboard, as the expression of a recording rule.
func TestDashboardQueriesAreValidPromQL(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		gatewaytest.RequireCI(t, "promtool is not installed (Debian "+
			"package prometheus; .ci/check-monitoring.sh installs it)")
	}
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, q := range queries(t, loadDashboard(t)) {
		if strings.HasPrefix(q.where, "variable") {
			continue // label_values() is Grafana's, not PromQL
		}
		expr, _ := json.Marshal(grafanaMacros.Replace(q.expr))
		fmt.Fprintf(&rules, "      - record: dashboard:query_%d\n"+
			"        expr: %s\n", i, expr)
	}
	path := filepath.Join(t.TempDir(), "dashboard_rules.yml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", path).
		CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules on the dashboard's queries: %v\n%s",
			err, out)
	}
}
