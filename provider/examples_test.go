package provider

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"golang.org/x/crypto/ssh"
)

// hclFile is a parsed .tf file and its source, to compare expressions as
// written.
type hclFile struct {
	src  []byte
	body *hclsyntax.Body
}

func parseTF(t *testing.T, path string) hclFile {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("%s: %s", path, diags.Error())
	}
	return hclFile{src: src, body: f.Body.(*hclsyntax.Body)}
}

// text is an expression's source, with runs of blanks squeezed.
func (f hclFile) text(e hclsyntax.Expression) string {
	r := e.Range()
	return strings.Join(strings.Fields(string(r.SliceBytes(f.src))), " ")
}

func (f hclFile) block(typ string, labels ...string) *hclsyntax.Block {
	for _, b := range f.body.Blocks {
		if b.Type == typ && slices.Equal(b.Labels, labels) {
			return b
		}
	}
	return nil
}

// valueDiff says where two constant values differ: the first differing
// element of two lists, else both values.
func valueDiff(a, b cty.Value) string {
	if a.CanIterateElements() && b.CanIterateElements() && !a.Type().IsMapType() && !a.Type().IsObjectType() {
		as, bs := a.AsValueSlice(), b.AsValueSlice()
		for i := range min(len(as), len(bs)) {
			if !as[i].RawEquals(bs[i]) {
				return fmt.Sprintf("element %d: %#v vs %#v", i, as[i], bs[i])
			}
		}
		return fmt.Sprintf("%d elements vs %d", len(as), len(bs))
	}
	return fmt.Sprintf("%#v vs %#v", a, b)
}

// TestExampleModulesAgree keeps examples/aws and examples/any-swarm, two
// self-contained modules for the same 2018 deployment, in step: the
// variables they share have the same type and default (the 20 filter
// expressions above all), and their mirrors and filter groups are written
// the same way. The only intended differences are listed here.
func TestExampleModulesAgree(t *testing.T) {
	root := repoRoot(t)
	anyVars := parseTF(t, filepath.Join(root, "examples/any-swarm/variables.tf"))
	awsVars := parseTF(t, filepath.Join(root, "examples/aws/variables.tf"))

	// image_archives: required on AWS (the new nodes have no workloads image),
	// optional on hosts that may already have the images.
	// ssh_user: root on hosts set up by hand, the AMI's user (ubuntu) on EC2.
	differ := map[string]bool{"image_archives": true, "ssh_user": true}

	shared := 0
	for _, ab := range anyVars.body.Blocks {
		if ab.Type != "variable" || differ[ab.Labels[0]] {
			continue
		}
		name := ab.Labels[0]
		wb := awsVars.block("variable", name)
		if wb == nil {
			continue
		}
		shared++
		for _, attr := range []string{"type", "default"} {
			a, aok := ab.Body.Attributes[attr]
			w, wok := wb.Body.Attributes[attr]
			switch {
			case aok != wok:
				t.Errorf("variable %q: %s set in only one of examples/any-swarm and examples/aws", name, attr)
			case aok && attr == "type" && anyVars.text(a.Expr) != awsVars.text(w.Expr):
				t.Errorf("variable %q: type %s in examples/any-swarm, %s in examples/aws", name, anyVars.text(a.Expr), awsVars.text(w.Expr))
			case aok && attr == "default":
				av, d1 := a.Expr.Value(nil)
				wv, d2 := w.Expr.Value(nil)
				if d1.HasErrors() || d2.HasErrors() {
					t.Errorf("variable %q: default is not a constant: %s%s", name, d1.Error(), d2.Error())
				} else if !av.RawEquals(wv) {
					t.Errorf("variable %q: defaults differ between examples/any-swarm and examples/aws: %s", name, valueDiff(av, wv))
				}
			}
		}
	}
	for _, want := range []string{"filter_expressions", "filters_per_mirror", "max_per_visit", "filter_mode", "alerts_per_visit", "visit_interval", "cutout_bytes"} {
		if awsVars.block("variable", want) == nil || anyVars.block("variable", want) == nil {
			t.Errorf("variable %q is missing from one of the modules", want)
		}
	}
	if shared < 10 {
		t.Errorf("only %d shared variables found; did a module move its variables?", shared)
	}

	anyMain := parseTF(t, filepath.Join(root, "examples/any-swarm/main.tf"))
	awsMain := parseTF(t, filepath.Join(root, "examples/aws/main.tf"))
	// The consumer nodes are counted by a list of hosts in one, by a number in
	// the other.
	normalise := strings.NewReplacer("length(var.consumer_hosts)", "var.consumer_nodes").Replace
	for _, typ := range []string{"minibroker_mirror", "minibroker_filter_group"} {
		ab, wb := anyMain.block("resource", typ, "node"), awsMain.block("resource", typ, "node")
		if ab == nil || wb == nil {
			t.Errorf("resource %s.node missing from one of the modules", typ)
			continue
		}
		names := func(b *hclsyntax.Block) []string {
			var out []string
			for n := range b.Body.Attributes {
				out = append(out, n)
			}
			slices.Sort(out)
			return out
		}
		if !slices.Equal(names(ab), names(wb)) {
			t.Errorf("%s.node: attributes %v in examples/any-swarm, %v in examples/aws", typ, names(ab), names(wb))
			continue
		}
		for n, a := range ab.Body.Attributes {
			if x, y := normalise(anyMain.text(a.Expr)), awsMain.text(wb.Body.Attributes[n].Expr); x != y {
				t.Errorf("%s.node.%s differs:\n  any-swarm: %s\n  aws:       %s", typ, n, x, y)
			}
		}
	}
}

// exampleConfigs are the example configurations `terraform validate` checks:
// each is a list of .tf files and directories (all their .tf files),
// relative to the repository, put together in one directory. The modules
// stand alone; the resource examples (shown in docs/) need a provider block
// and each other.
var exampleConfigs = map[string][]string{
	"any-swarm": {"examples/any-swarm"},
	"aws":       {"examples/aws"},
	"resources-hosts": {"examples/provider/provider.tf", "examples/resources/minibroker_swarm/resource.tf",
		"examples/resources/minibroker_mirror/resource.tf", "examples/resources/minibroker_filter_group/resource.tf"},
	"resources-aws": {"examples/resources/minibroker_swarm/resource-aws.tf",
		"examples/resources/minibroker_mirror/resource.tf", "examples/resources/minibroker_filter_group/resource.tf"},
	"resources-upstream": {"examples/provider/provider.tf", "examples/resources/minibroker_swarm/upstream.tf"},
}

// TestExamplesValidate runs `terraform validate` on every example
// configuration against the provider built from this tree (through a
// dev_overrides block, so nothing is downloaded and no `terraform init` is
// needed): an attribute renamed or removed in a schema, or an example that
// uses one wrongly, fails here rather than for a user. It needs Go and a
// Terraform CLI (`make terraform`), not Docker or AWS.
func TestExamplesValidate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the provider and runs the Terraform CLI; skipped under -short")
	}
	useTerraform(t)
	tf := os.Getenv("TF_ACC_TERRAFORM_PATH")
	root := repoRoot(t)
	work := t.TempDir()

	plugins := filepath.Join(work, "plugins")
	build := exec.Command("go", "build", "-o", filepath.Join(plugins, "terraform-provider-minibroker"), ".")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	rc := filepath.Join(work, "terraformrc")
	if err := os.WriteFile(rc, []byte(`provider_installation {
  dev_overrides { "minibroker/minibroker" = "`+plugins+`" }
  direct {}
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	// The examples read ~/.ssh/id_ed25519 and its .pub with file(): give them a
	// home where both exist.
	home := filepath.Join(work, "home")
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{
		"id_ed25519":     []byte("not read by terraform validate\n"),
		"id_ed25519.pub": ssh.MarshalAuthorizedKey(sshPub),
	} {
		if err := os.WriteFile(filepath.Join(home, ".ssh", name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	env := append(os.Environ(), "TF_CLI_CONFIG_FILE="+rc, "HOME="+home, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1", "TF_CLI_ARGS=", "TF_CLI_ARGS_validate=")

	names := make([]string, 0, len(exampleConfigs))
	for name := range exampleConfigs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(work, name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			var files []string
			for _, f := range exampleConfigs[name] {
				if strings.HasSuffix(f, ".tf") {
					files = append(files, f)
					continue
				}
				matches, err := filepath.Glob(filepath.Join(root, f, "*.tf"))
				if err != nil || len(matches) == 0 {
					t.Fatalf("%s: no .tf files (%v)", f, err)
				}
				for _, m := range matches {
					rel, _ := filepath.Rel(root, m)
					files = append(files, rel)
				}
			}
			hasTerraformBlock := false
			for _, f := range files {
				b, err := os.ReadFile(filepath.Join(root, f))
				if err != nil {
					t.Fatal(err)
				}
				hasTerraformBlock = hasTerraformBlock || strings.Contains(string(b), "required_providers")
				dst := strings.NewReplacer("/", "_").Replace(f)
				if err := os.WriteFile(filepath.Join(dir, dst), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if !hasTerraformBlock {
				if err := os.WriteFile(filepath.Join(dir, "versions.tf"), []byte(
					"terraform {\n  required_providers {\n    minibroker = { source = \"minibroker/minibroker\" }\n  }\n}\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(tf, "validate", "-json", "-no-color")
			cmd.Dir = dir
			cmd.Env = env
			out, _ := cmd.Output()
			var res struct {
				Valid       bool `json:"valid"`
				Diagnostics []struct {
					Severity string `json:"severity"`
					Summary  string `json:"summary"`
					Detail   string `json:"detail"`
					Range    *struct {
						Filename string `json:"filename"`
						Start    struct {
							Line int `json:"line"`
						} `json:"start"`
					} `json:"range"`
				} `json:"diagnostics"`
			}
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatalf("terraform validate: %v\n%s", err, out)
			}
			for _, d := range res.Diagnostics {
				if d.Severity != "error" {
					continue
				}
				where := ""
				if d.Range != nil {
					where = fmt.Sprintf("%s:%d: ", d.Range.Filename, d.Range.Start.Line)
				}
				t.Errorf("%s%s: %s", where, d.Summary, d.Detail)
			}
			if !res.Valid && !t.Failed() {
				t.Errorf("terraform validate: not valid\n%s", out)
			}

			// Terraform drops unknown keys of an object given to a nested
			// attribute without a word (a typo in `aws = { filter_nodez = 3 }`
			// would leave the default): check them against the schema.
			cmd = exec.Command(tf, "providers", "schema", "-json")
			cmd.Dir = dir
			cmd.Env = env
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("terraform providers schema: %v", err)
			}
			schema := providerSchemaOf(t, out)
			for _, f := range files {
				checkNestedKeys(t, parseTF(t, filepath.Join(root, f)), f, schema)
			}
		})
	}
}

// tfSchemaAttr and tfSchemaBlock are the parts of `terraform providers
// schema -json` that checkNestedKeys reads.
type tfSchemaAttr struct {
	NestedType *struct {
		Attributes map[string]tfSchemaAttr `json:"attributes"`
	} `json:"nested_type"`
}

type tfSchemaBlock struct {
	Attributes map[string]tfSchemaAttr `json:"attributes"`
}

type tfProviderSchema struct {
	Provider struct {
		Block tfSchemaBlock `json:"block"`
	} `json:"provider"`
	ResourceSchemas map[string]struct {
		Block tfSchemaBlock `json:"block"`
	} `json:"resource_schemas"`
}

func providerSchemaOf(t *testing.T, schemaJSON []byte) tfProviderSchema {
	t.Helper()
	var all struct {
		ProviderSchemas map[string]tfProviderSchema `json:"provider_schemas"`
	}
	if err := json.Unmarshal(schemaJSON, &all); err != nil {
		t.Fatal(err)
	}
	s, ok := all.ProviderSchemas["registry.terraform.io/minibroker/minibroker"]
	if !ok {
		t.Fatalf("no minibroker schema in %d providers", len(all.ProviderSchemas))
	}
	return s
}

// checkNestedKeys reports keys of object expressions, given to nested
// attributes of the provider block or of minibroker resources, that the
// schema does not have.
func checkNestedKeys(t *testing.T, f hclFile, name string, schema tfProviderSchema) {
	t.Helper()
	for _, b := range f.body.Blocks {
		var attrs map[string]tfSchemaAttr
		switch {
		case b.Type == "provider" && len(b.Labels) == 1 && b.Labels[0] == "minibroker":
			attrs = schema.Provider.Block.Attributes
		case b.Type == "resource" && len(b.Labels) == 2:
			r, ok := schema.ResourceSchemas[b.Labels[0]]
			if !ok {
				continue
			}
			attrs = r.Block.Attributes
		default:
			continue
		}
		for an, a := range b.Body.Attributes {
			if sa, ok := attrs[an]; ok && sa.NestedType != nil {
				checkObjectKeys(t, name, an, a.Expr, sa.NestedType.Attributes)
			}
		}
	}
}

func checkObjectKeys(t *testing.T, file, path string, e hclsyntax.Expression, attrs map[string]tfSchemaAttr) {
	t.Helper()
	switch e := e.(type) {
	case *hclsyntax.ObjectConsExpr:
		for _, item := range e.Items {
			k, diags := item.KeyExpr.Value(nil)
			if diags.HasErrors() || !k.Type().Equals(cty.String) {
				continue // a computed key: nothing to check
			}
			key := k.AsString()
			sa, ok := attrs[key]
			if !ok {
				t.Errorf("%s:%d: %s has no attribute %q", file, item.KeyExpr.Range().Start.Line, path, key)
				continue
			}
			if sa.NestedType != nil {
				checkObjectKeys(t, file, path+"."+key, item.ValueExpr, sa.NestedType.Attributes)
			}
		}
	case *hclsyntax.TupleConsExpr:
		for _, v := range e.Exprs {
			checkObjectKeys(t, file, path+"[]", v, attrs)
		}
	case *hclsyntax.ForExpr:
		checkObjectKeys(t, file, path+"[]", e.ValExpr, attrs)
	case *hclsyntax.ConditionalExpr:
		checkObjectKeys(t, file, path, e.TrueResult, attrs)
		checkObjectKeys(t, file, path, e.FalseResult, attrs)
	}
}
