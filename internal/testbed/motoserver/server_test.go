package motoserver

import (
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// TestServer starts moto, creates and describes a VPC through the SDK, then
// checks that Close stops the server.
func TestServer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs moto_server; skipped under -short")
	}
	if _, err := Binary(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	began := time.Now()
	s, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t.Logf("moto at %s, answering after %s", s.URL(), time.Since(began).Round(time.Millisecond))
	u, err := url.Parse(s.URL())
	if err != nil || u.Hostname() != "127.0.0.1" || u.Port() == "" || u.Port() == "0" {
		t.Fatalf("URL %q: want http://127.0.0.1:<port> (%v)", s.URL(), err)
	}

	env := map[string]string{}
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for k, want := range map[string]string{
		"AWS_ENDPOINT_URL":          s.URL(),
		"AWS_ACCESS_KEY_ID":         "testing",
		"AWS_SECRET_ACCESS_KEY":     "testing",
		"AWS_REGION":                "us-east-1",
		"AWS_EC2_METADATA_DISABLED": "true",
	} {
		if env[k] != want {
			t.Errorf("Env %s=%q, want %q", k, env[k], want)
		}
	}
	for _, k := range []string{"AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"} {
		fi, err := os.Stat(env[k])
		if err != nil || fi.Size() != 0 {
			t.Errorf("Env %s=%q: want an existing empty file (%v)", k, env[k], err)
		}
	}

	// Variables that would redirect LoadDefaultConfig must not matter.
	t.Setenv("AWS_ENDPOINT_URL_EC2", "http://127.0.0.1:1")
	t.Setenv("AWS_PROFILE", "no-such-profile")
	cfg, err := s.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	client := ec2.NewFromConfig(cfg)
	out, err := client.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.77.0.0/16")})
	if err != nil {
		t.Fatalf("CreateVpc: %v", err)
	}
	id := aws.ToString(out.Vpc.VpcId)
	desc, err := client.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{id}})
	if err != nil {
		t.Fatalf("DescribeVpcs: %v", err)
	}
	if len(desc.Vpcs) != 1 || aws.ToString(desc.Vpcs[0].CidrBlock) != "10.77.0.0/16" {
		t.Fatalf("DescribeVpcs(%s) = %+v, want one VPC with 10.77.0.0/16", id, desc.Vpcs)
	}
	if !strings.Contains(s.LogTail(50), "POST /") {
		t.Errorf("moto's log shows no request:\n%s", s.LogTail(50))
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if c, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Close", u.Host)
	}
	if _, err := os.Stat(filepath.Dir(env["AWS_CONFIG_FILE"])); !os.IsNotExist(err) {
		t.Errorf("temp dir still there after Close (%v)", err)
	}
}

// TestBinaryMissing checks that a missing moto says how to install it.
func TestBinaryMissing(t *testing.T) {
	t.Setenv(EnvServer, filepath.Join(t.TempDir(), "moto_server"))
	_, err := Binary()
	if err == nil || !strings.Contains(err.Error(), "make moto") {
		t.Fatalf("Binary() error = %v, want one that says make moto", err)
	}
}
