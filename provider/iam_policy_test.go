package provider

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// awsActions are the AWS API actions minibroker_swarm's `aws` block calls:
// the IAM permissions a user needs. The documented policy
// (examples/resources/minibroker_swarm/iam-policy.json, shown in
// docs/resources/swarm.md) must grant exactly these, and
// TestIAMPolicyCoversProviderCalls checks that the code calls nothing else.
var awsActions = []string{
	"ec2:RunInstances",
	"ec2:TerminateInstances",
	"ec2:DescribeInstances",
	"ec2:DescribeInstanceAttribute",
	"ec2:CreateTags",
	"ec2:DeleteTags",   // in-place changes of aws.tags
	"ec2:DescribeTags", // finding everything tagged minibroker:swarm
	"ec2:DescribeImages",
	"ec2:DescribeSubnets",
	"ec2:DescribeVpcs",
	"ec2:CreateSecurityGroup",
	"ec2:DeleteSecurityGroup",
	"ec2:DescribeSecurityGroups",
	"ec2:AuthorizeSecurityGroupIngress",
	"ec2:RevokeSecurityGroupIngress",
	"ec2:ImportKeyPair",
	"ec2:DeleteKeyPair",
	"ec2:DescribeKeyPairs",
	"ssm:GetParameter",
}

// stringOrList is an IAM policy element that is either "x" or ["x", ...].
type stringOrList []string

func (s *stringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = stringOrList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

type iamStatement struct {
	Sid       string                                `json:"Sid"`
	Effect    string                                `json:"Effect"`
	Action    stringOrList                          `json:"Action"`
	NotAction stringOrList                          `json:"NotAction"`
	Resource  stringOrList                          `json:"Resource"`
	Condition map[string]map[string]json.RawMessage `json:"Condition"`
}

type iamPolicy struct {
	Version   string         `json:"Version"`
	Statement []iamStatement `json:"Statement"`
}

// TestIAMPolicyNamesEveryAction checks the documented IAM policy for the
// `aws` block: valid JSON in the IAM grammar this project uses, granting
// exactly the actions the provider calls, each statement scoped to ARNs of
// the service it grants.
func TestIAMPolicyNamesEveryAction(t *testing.T) {
	file := filepath.Join(repoRoot(t), "examples/resources/minibroker_swarm/iam-policy.json")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var p iamPolicy
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if p.Version != "2012-10-17" {
		t.Errorf("Version %q, want \"2012-10-17\" (the only version with policy variables and current semantics)", p.Version)
	}
	if len(p.Statement) == 0 {
		t.Fatal("no statements")
	}

	sidOK := regexp.MustCompile(`^[A-Za-z0-9]+$`) // IAM allows only ASCII letters and digits in a Sid
	granted := map[string]bool{}
	sids := map[string]bool{}
	for i, s := range p.Statement {
		where := s.Sid
		if where == "" {
			where = fmt.Sprintf("statement %d", i)
		}
		if s.Sid != "" && !sidOK.MatchString(s.Sid) {
			t.Errorf("%s: Sid must be letters and digits only", where)
		}
		if sids[s.Sid] {
			t.Errorf("%s: Sid used twice", where)
		}
		sids[s.Sid] = true
		if s.Effect != "Allow" {
			t.Errorf("%s: Effect %q, want Allow", where, s.Effect)
		}
		if len(s.NotAction) > 0 {
			t.Errorf("%s: NotAction grants more than the provider needs", where)
		}
		if len(s.Action) == 0 || len(s.Resource) == 0 {
			t.Errorf("%s: needs Action and Resource", where)
		}
		for _, a := range s.Action {
			if strings.Contains(a, "*") {
				t.Errorf("%s: wildcard action %q; name each action", where, a)
			}
			if !slices.Contains(awsActions, a) {
				t.Errorf("%s: grants %q, which the provider does not call", where, a)
			}
			granted[a] = true
			service, _, _ := strings.Cut(a, ":")
			for _, r := range s.Resource {
				if r != "*" && !strings.HasPrefix(r, "arn:aws:"+service+":") {
					t.Errorf("%s: resource %q is not an ARN of %s, which %q acts on", where, r, service, a)
				}
			}
		}
		for op, keys := range s.Condition {
			if len(keys) == 0 {
				t.Errorf("%s: empty condition operator %s", where, op)
			}
		}
		if len(s.Condition) == 0 {
			for _, a := range s.Action {
				for _, r := range s.Resource {
					if !readOnly(a) && !unconditioned[a+" "+r] {
						t.Errorf("%s: %s on %s has no condition; scope it to what the swarm owns (or, if AWS offers "+
							"no condition there, add it to unconditioned with the reason)", where, a, r)
					}
				}
			}
		}
	}
	// The conditions the issue asked for, where AWS supports them.
	for _, want := range []struct{ action, resource, key string }{
		{"ec2:RunInstances", "arn:aws:ec2:*:*:instance/*", "ec2:MetadataHttpTokens"},
		{"ec2:RunInstances", "arn:aws:ec2:*:*:instance/*", "ec2:InstanceType"},
		{"ec2:RunInstances", "arn:aws:ec2:*:*:volume/*", "ec2:Encrypted"},
		{"ec2:ImportKeyPair", "arn:aws:ec2:*:*:key-pair/*", "aws:RequestTag/minibroker:swarm"},
		{"ec2:DeleteKeyPair", "arn:aws:ec2:*:*:key-pair/*", "ec2:ResourceTag/minibroker:swarm"},
	} {
		found := false
		for _, s := range p.Statement {
			if slices.Contains(s.Action, want.action) && slices.Contains(s.Resource, want.resource) {
				for _, keys := range s.Condition {
					_, ok := keys[want.key]
					found = found || ok
				}
			}
		}
		if !found {
			t.Errorf("no statement grants %s on %s under a condition on %s", want.action, want.resource, want.key)
		}
	}
	for _, a := range awsActions {
		if !granted[a] {
			t.Errorf("the policy does not grant %s, which the provider calls", a)
		}
	}

	// The resource's documentation shows this very file.
	tmpl, err := os.ReadFile(filepath.Join(repoRoot(t), "templates/resources/swarm.md.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(tmpl), `codefile "json" "examples/resources/minibroker_swarm/iam-policy.json"`) {
		t.Error("templates/resources/swarm.md.tmpl does not include examples/resources/minibroker_swarm/iam-policy.json")
	}
}

// readOnly tells the actions that change nothing.
func readOnly(action string) bool {
	_, name, _ := strings.Cut(action, ":")
	return strings.HasPrefix(name, "Describe") || strings.HasPrefix(name, "Get")
}

// unconditioned are the grants of a changing action that carry no
// condition, and why: RunInstances names an AMI, subnet and key pair the
// user chose and creates a network interface, none of which carries a tag
// of ours; CreateSecurityGroup needs the VPC it creates the group in.
var unconditioned = map[string]bool{
	"ec2:RunInstances arn:aws:ec2:*::image/*":              true,
	"ec2:RunInstances arn:aws:ec2:*:*:subnet/*":            true,
	"ec2:RunInstances arn:aws:ec2:*:*:network-interface/*": true,
	"ec2:RunInstances arn:aws:ec2:*:*:key-pair/*":          true,
	"ec2:CreateSecurityGroup arn:aws:ec2:*:*:vpc/*":        true,
}

// awsCallDirs hold the code that calls AWS (through the SDK's ec2 and ssm
// clients, held in fields named ec2 and ssm).
var awsCallDirs = []string{"internal/awsfleet", "provider"}

var (
	reClientCall = regexp.MustCompile(`\.(ec2|ssm)\.([A-Z][A-Za-z0-9]*)\(`)
	rePaginator  = regexp.MustCompile(`\b(ec2|ssm)\.New([A-Z][A-Za-z0-9]*)Paginator\(`)
	reWaiter     = regexp.MustCompile(`\b(ec2|ssm)\.New([A-Z][A-Za-z0-9]*)Waiter\(`)
)

// waiterActions maps the SDK's waiters to the action they poll with.
var waiterActions = map[string]string{
	"ec2:InstanceExists":      "ec2:DescribeInstances",
	"ec2:InstanceRunning":     "ec2:DescribeInstances",
	"ec2:InstanceStopped":     "ec2:DescribeInstances",
	"ec2:InstanceTerminated":  "ec2:DescribeInstances",
	"ec2:InstanceStatusOk":    "ec2:DescribeInstanceStatus",
	"ec2:SystemStatusOk":      "ec2:DescribeInstanceStatus",
	"ec2:SecurityGroupExists": "ec2:DescribeSecurityGroups",
	"ec2:KeyPairExists":       "ec2:DescribeKeyPairs",
	"ec2:ImageAvailable":      "ec2:DescribeImages",
	"ec2:ImageExists":         "ec2:DescribeImages",
}

// TestIAMPolicyCoversProviderCalls reads the provider's source for AWS SDK
// calls and checks that awsActions, and so the documented policy, names
// each of them: a new call fails here rather than with AccessDenied in a
// user's account.
func TestIAMPolicyCoversProviderCalls(t *testing.T) {
	called := map[string]string{} // action -> first file calling it
	for _, dir := range awsCallDirs {
		files, err := filepath.Glob(filepath.Join(repoRoot(t), dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(repoRoot(t), f)
			note := func(action string) {
				if _, ok := called[action]; !ok {
					called[action] = rel
				}
			}
			for _, m := range reClientCall.FindAllStringSubmatch(string(b), -1) {
				note(m[1] + ":" + m[2])
			}
			for _, m := range rePaginator.FindAllStringSubmatch(string(b), -1) {
				note(m[1] + ":" + m[2])
			}
			for _, m := range reWaiter.FindAllStringSubmatch(string(b), -1) {
				a, ok := waiterActions[m[1]+":"+m[2]]
				if !ok {
					t.Errorf("%s: waiter %s.%s: add the action it polls with to waiterActions", rel, m[1], m[2])
					continue
				}
				note(a)
			}
		}
	}
	if len(called) == 0 {
		t.Fatalf("found no AWS SDK calls in %v; update awsCallDirs and the patterns", awsCallDirs)
	}
	for action, file := range called {
		if !slices.Contains(awsActions, action) {
			t.Errorf("%s calls %s, which awsActions and the documented IAM policy lack", file, action)
		}
	}
	for _, a := range awsActions {
		if _, ok := called[a]; !ok {
			t.Logf("%s is granted but not called by the code scanned (kept for the provider's documented contract)", a)
		}
	}
}
