package images

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// installScripts writes the embedded kafka/ tree to dir (bin/, config/, an
// empty libs/) and a fake JDK whose java prints its arguments one per line.
func installScripts(t *testing.T) (home, javaHome string) {
	t.Helper()
	root := t.TempDir()
	root, _ = filepath.EvalSymlinks(root)
	home = filepath.Join(root, "kafka")
	err := fs.WalkDir(kafkaFiles, "kafka", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(root, p)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := kafkaFiles.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o755)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(home, "libs"), 0o755); err != nil {
		t.Fatal(err)
	}
	javaHome = filepath.Join(root, "jdk")
	if err := os.MkdirAll(filepath.Join(javaHome, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	fake := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n"
	if err := os.WriteFile(filepath.Join(javaHome, "bin", "java"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	return home, javaHome
}

// shells are the shells the scripts are tried with: the host's /bin/sh and,
// when installed, busybox sh (the image's shell).
func shells(t *testing.T) [][]string {
	out := [][]string{{"/bin/sh"}}
	for _, bb := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if _, err := os.Stat(bb); err == nil {
			out = append(out, []string{bb, "sh"})
			break
		}
	}
	return out
}

func runScript(t *testing.T, shell []string, script string, env []string, args ...string) ([]string, int) {
	t.Helper()
	cmd := exec.Command(shell[0], append(append(shell[1:], script), args...)...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, env...)
	// A directory with files: an unquoted * in the options would glob here.
	cmd.Dir = filepath.Dir(script)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v %s: %v", shell, script, err)
	}
	out := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	if stderr.Len() > 0 {
		t.Logf("%s stderr: %s", filepath.Base(script), stderr.String())
	}
	return out, code
}

const perfDefaults = "-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true"
const jmxDefaults = "-Dcom.sun.management.jmxremote=true -Dcom.sun.management.jmxremote.authenticate=false -Dcom.sun.management.jmxremote.ssl=false"

func TestKafkaScripts(t *testing.T) {
	home, javaHome := installScripts(t)
	bin := filepath.Join(home, "bin")
	logs := "-Dkafka.logs.dir=" + home + "/logs"
	cp := []string{"-cp", home + "/libs/*"}
	fields := strings.Fields
	join := func(parts ...[]string) []string { return slices.Concat(parts...) }
	jh := "JAVA_HOME=" + javaHome

	cases := []struct {
		name   string
		script string
		env    []string
		args   []string
		want   []string
	}{
		{"server defaults", "kafka-server-start.sh", []string{jh}, []string{"/cfg/server.properties"},
			join([]string{"-Xmx1G", "-Xms1G"}, fields(perfDefaults), fields(jmxDefaults),
				[]string{logs, "-Dlog4j2.configurationFile=" + bin + "/../config/log4j2.yaml"}, cp,
				[]string{"kafka.Kafka", "/cfg/server.properties"})},
		{"server with the provider's env", "kafka-server-start.sh",
			[]string{jh, "KAFKA_HEAP_OPTS=-Xmx512m -Xms512m", "KAFKA_OPTS=-Dfoo=bar -Dglob=*",
				"KAFKA_JVM_PERFORMANCE_OPTS=-XX:+UseZGC", "KAFKA_LOG4J_OPTS=-Dlog4j2.configurationFile=/x.yaml"},
			[]string{"/cfg/server.properties", "--override", "a=b c"},
			join([]string{"-Xmx512m", "-Xms512m", "-XX:+UseZGC"}, fields(jmxDefaults),
				[]string{logs, "-Dlog4j2.configurationFile=/x.yaml"}, cp,
				[]string{"-Dfoo=bar", "-Dglob=*", "kafka.Kafka", "/cfg/server.properties", "--override", "a=b c"})},
		{"server -loggc and JMX_PORT", "kafka-server-start.sh",
			[]string{jh, "EXTRA_ARGS=-name kafkaServer -loggc", "JMX_PORT=9999"}, []string{"/cfg/s.properties"},
			join([]string{"-Xmx1G", "-Xms1G"}, fields(perfDefaults),
				[]string{"-Xlog:gc*:file=" + home + "/logs/kafkaServer-gc.log:time,tags:filecount=10,filesize=100M"},
				fields(jmxDefaults), []string{"-Dcom.sun.management.jmxremote.port=9999", "-Dcom.sun.management.jmxremote.rmi.port=9999"},
				[]string{logs, "-Dlog4j2.configurationFile=" + bin + "/../config/log4j2.yaml"}, cp,
				[]string{"kafka.Kafka", "/cfg/s.properties"})},
		{"storage format", "kafka-storage.sh", []string{jh},
			[]string{"format", "--ignore-formatted", "-t", "MkU3OEVBNTcwNTJENDM2Qk", "-c", "/tmp/server.properties"},
			join([]string{"-Xmx256M"}, fields(perfDefaults), fields(jmxDefaults),
				[]string{logs, "-Dlog4j2.configurationFile=" + home + "/config/tools-log4j2.yaml"}, cp,
				[]string{"kafka.tools.StorageTool", "format", "--ignore-formatted", "-t", "MkU3OEVBNTcwNTJENDM2Qk", "-c", "/tmp/server.properties"})},
		{"storage with heap", "kafka-storage.sh", []string{jh, "KAFKA_HEAP_OPTS=-Xmx512m -Xms512m"}, []string{"random-uuid"},
			join([]string{"-Xmx512m", "-Xms512m"}, fields(perfDefaults), fields(jmxDefaults),
				[]string{logs, "-Dlog4j2.configurationFile=" + home + "/config/tools-log4j2.yaml"}, cp,
				[]string{"kafka.tools.StorageTool", "random-uuid"})},
		{"mirror maker defaults", "connect-mirror-maker.sh", []string{jh}, []string{"/tmp/mm2.properties"},
			join([]string{"-Xms256M", "-Xmx2G"}, fields(perfDefaults), fields(jmxDefaults),
				[]string{logs, "-Dlog4j2.configurationFile=" + bin + "/../config/connect-log4j2.yaml"}, cp,
				[]string{"org.apache.kafka.connect.mirror.MirrorMaker", "/tmp/mm2.properties"})},
		{"mirror maker with heap and CLASSPATH", "connect-mirror-maker.sh",
			[]string{jh, "KAFKA_HEAP_OPTS=-Xmx512m -Xms512m", "CLASSPATH=/extra/*"}, []string{"/tmp/mm2.properties"},
			join([]string{"-Xmx512m", "-Xms512m"}, fields(perfDefaults), fields(jmxDefaults),
				[]string{logs, "-Dlog4j2.configurationFile=" + bin + "/../config/connect-log4j2.yaml"},
				[]string{"-cp", "/extra/*:" + home + "/libs/*"},
				[]string{"org.apache.kafka.connect.mirror.MirrorMaker", "/tmp/mm2.properties"})},
	}
	for _, sh := range shells(t) {
		for _, c := range cases {
			got, code := runScript(t, sh, filepath.Join(bin, c.script), c.env, c.args...)
			if code != 0 || !slices.Equal(got, c.want) {
				t.Errorf("%v %s: exit %d, java got\n  %q\nwant\n  %q", sh, c.name, code, got, c.want)
			}
		}
		// Without JAVA_HOME the java on PATH runs.
		if err := os.Symlink(filepath.Join(javaHome, "bin", "java"), filepath.Join(bin, "java")); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
		got, code := runScript(t, sh, filepath.Join(bin, "kafka-storage.sh"), []string{"PATH=" + bin + ":/usr/bin:/bin"}, "info")
		if code != 0 || len(got) == 0 || got[len(got)-1] != "info" {
			t.Errorf("%v java from PATH: exit %d, %q", sh, code, got)
		}
		// Usage errors exit 1, like Kafka's.
		for _, s := range []string{"kafka-server-start.sh", "connect-mirror-maker.sh", "kafka-run-class.sh"} {
			out, code := runScript(t, sh, filepath.Join(bin, s), []string{jh})
			if code != 1 {
				t.Errorf("%v %s without arguments: exit %d (%q), want 1", sh, s, code, out)
			}
		}
	}
}

func TestEmbeddedKafkaFiles(t *testing.T) {
	want := []string{"kafka/bin/connect-mirror-maker.sh", "kafka/bin/kafka-run-class.sh", "kafka/bin/kafka-server-start.sh",
		"kafka/bin/kafka-storage.sh", "kafka/config/connect-log4j2.yaml", "kafka/config/log4j2.yaml", "kafka/config/tools-log4j2.yaml"}
	var got []string
	_ = fs.WalkDir(kafkaFiles, "kafka", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			got = append(got, p)
		}
		return err
	})
	if !slices.Equal(got, want) {
		t.Fatalf("embedded files %q, want %q", got, want)
	}
	for _, p := range got {
		data, _ := kafkaFiles.ReadFile(p)
		if strings.HasSuffix(p, ".sh") && !strings.HasPrefix(string(data), "#!/bin/sh\n") {
			t.Errorf("%s does not start with #!/bin/sh", p)
		}
	}
}

// imageFiles writes img and returns, per path in the image, the entry's tar
// type, mode and symlink target or content, merged over all layers.
func imageFiles(t *testing.T, img Image) (map[string]outerEntry, imageConfig) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := Write(&buf, img); err != nil {
		t.Fatal(err)
	}
	outer := entryMap(readTar(t, buf.Bytes()))
	var manifest []manifestEntry
	if err := json.Unmarshal(outer["manifest.json"].data, &manifest); err != nil {
		t.Fatal(err)
	}
	var cfg imageConfig
	if err := json.Unmarshal(outer[manifest[0].Config].data, &cfg); err != nil {
		t.Fatal(err)
	}
	files := map[string]outerEntry{}
	for _, l := range manifest[0].Layers {
		for _, e := range readTar(t, outer[l].data) {
			files["/"+strings.TrimSuffix(e.hdr.Name, "/")] = e
		}
	}
	return files, cfg
}

func TestKafkaImageContract(t *testing.T) {
	dir := t.TempDir()
	write := func(p string, mode os.FileMode) string {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(p), mode); err != nil {
			t.Fatal(err)
		}
		return full
	}
	write("jre/bin/java", 0o755)
	write("jre/lib/server/libjvm.so", 0o644)
	write("jre/legal/java.base/LICENSE", 0o644)
	if err := os.MkdirAll(filepath.Join(dir, "jre/legal/java.se"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../java.base/LICENSE", filepath.Join(dir, "jre/legal/java.se/LICENSE")); err != nil {
		t.Fatal(err)
	}
	jar := write("libs/kafka_2.13-4.3.1.jar", 0o600)
	bb := write("busybox", 0o755)
	libc := write("lib/x86_64-linux-gnu/libc.so.6", 0o644)
	write("locale/LC_CTYPE", 0o644)

	img, err := KafkaImage(KafkaInputs{Tag: DefaultKafkaTag, JRE: filepath.Join(dir, "jre"), Jars: []string{jar}, Busybox: bb,
		Applets: []string{"bin/ls", "usr/bin/env", "bin/sh"}, SystemLibs: []string{libc}, Locale: filepath.Join(dir, "locale")})
	if err != nil {
		t.Fatal(err)
	}
	files, cfg := imageFiles(t, img)

	type want struct {
		typ    byte
		mode   int64
		target string
	}
	const reg, dirT, sym = '0', '5', '2'
	for p, w := range map[string]want{
		"/bin/sh":                                 {sym, 0o777, "/bin/busybox"},
		"/bin/ls":                                 {sym, 0o777, "/bin/busybox"},
		"/usr/bin/env":                            {sym, 0o777, "/bin/busybox"},
		"/bin/busybox":                            {reg, 0o755, ""},
		"/tmp":                                    {dirT, 0o1777, ""},
		"/var/lib/kafka/data":                     {dirT, 0o755, ""},
		"/opt/kafka/logs":                         {dirT, 0o755, ""},
		"/opt/kafka/bin/kafka-storage.sh":         {reg, 0o755, ""},
		"/opt/kafka/bin/kafka-server-start.sh":    {reg, 0o755, ""},
		"/opt/kafka/bin/connect-mirror-maker.sh":  {reg, 0o755, ""},
		"/opt/kafka/bin/kafka-run-class.sh":       {reg, 0o755, ""},
		"/opt/kafka/config/log4j2.yaml":           {reg, 0o644, ""},
		"/opt/kafka/config/tools-log4j2.yaml":     {reg, 0o644, ""},
		"/opt/kafka/config/connect-log4j2.yaml":   {reg, 0o644, ""},
		"/opt/kafka/libs/kafka_2.13-4.3.1.jar":    {reg, 0o644, ""},
		"/opt/java/openjdk/bin/java":              {reg, 0o755, ""},
		"/opt/java/openjdk/lib/server/libjvm.so":  {reg, 0o644, ""},
		"/opt/java/openjdk/legal/java.se/LICENSE": {sym, 0o777, "../java.base/LICENSE"},
		dir + "/lib/x86_64-linux-gnu/libc.so.6":   {reg, 0o755, ""},
		"/usr/lib/locale/C.utf8/LC_CTYPE":         {reg, 0o644, ""},
		"/etc/passwd":                             {reg, 0o644, ""},
		"/etc/nsswitch.conf":                      {reg, 0o644, ""},
	} {
		e, ok := files[p]
		if !ok {
			t.Errorf("%s missing from the image", p)
			continue
		}
		if e.hdr.Typeflag != w.typ || e.hdr.Mode != w.mode || e.hdr.Linkname != w.target {
			t.Errorf("%s: type %c mode %#o target %q, want %c %#o %q", p, e.hdr.Typeflag, e.hdr.Mode, e.hdr.Linkname, w.typ, w.mode, w.target)
		}
	}
	if !strings.HasPrefix(string(files["/etc/passwd"].data), "root:x:0:0:") {
		t.Errorf("/etc/passwd = %q", files["/etc/passwd"].data)
	}

	c := cfg.Config
	if len(c.Entrypoint) != 0 || c.WorkingDir != KafkaHome || !slices.Equal(c.Cmd, []string{"/bin/sh"}) {
		t.Errorf("config: Entrypoint %q WorkingDir %q Cmd %q", c.Entrypoint, c.WorkingDir, c.Cmd)
	}
	env := map[string]string{}
	for _, kv := range c.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	path := ":" + env["PATH"] + ":"
	if env["JAVA_HOME"] != KafkaJavaHome || !strings.Contains(path, ":/opt/kafka/bin:") ||
		!strings.Contains(path, ":/opt/java/openjdk/bin:") || !strings.Contains(path, ":/bin:") || env["LANG"] != "C.UTF-8" {
		t.Errorf("Env = %q", c.Env)
	}
	if c.Labels["org.opencontainers.image.version"] != "4.3.1" {
		t.Errorf("Labels = %v", c.Labels)
	}
	if len(cfg.RootFS.DiffIDs) != 4 {
		t.Errorf("%d layers, want 4 (base, JRE, jars, scripts)", len(cfg.RootFS.DiffIDs))
	}
}

func TestWorkloadsImage(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "minibroker")
	if err := os.WriteFile(bin, []byte("\x7fELF..."), 0o700); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(t.TempDir(), "bundle.crt")
	if err := os.WriteFile(bundle, []byte("-----BEGIN CERTIFICATE-----"), 0o600); err != nil {
		t.Fatal(err)
	}
	files, cfg := imageFiles(t, WorkloadsImage(DefaultWorkloadsTag, bin, bundle))
	if e := files[CABundle]; e.hdr == nil || e.hdr.Mode != 0o644 || string(e.data) != "-----BEGIN CERTIFICATE-----" {
		t.Errorf("%s: %+v", CABundle, e.hdr)
	}
	if e := files["/minibroker"]; e.hdr == nil || e.hdr.Mode != 0o755 || string(e.data) != "\x7fELF..." {
		t.Errorf("/minibroker: %+v", e.hdr)
	}
	if e := files["/tmp"]; e.hdr == nil || e.hdr.Mode != 0o1777 {
		t.Errorf("/tmp: %+v", e.hdr)
	}
	if !slices.Equal(cfg.Config.Entrypoint, []string{"/minibroker"}) || !slices.Equal(cfg.Config.Cmd, []string{"help"}) {
		t.Errorf("config %+v", cfg.Config)
	}
}
