package images

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultKafkaTag is the name the Kafka image is loaded under.
const DefaultKafkaTag = "minibroker/kafka:dev"

// The Kafka image's contract: the same paths and environment variables as the
// official apache/kafka image, so the provider runs either image with the
// same command (["/bin/sh", "-c", script]). There is no Entrypoint.
const (
	KafkaHome              = "/opt/kafka"                               // WorkingDir
	KafkaJavaHome          = "/opt/java/openjdk"                        // JAVA_HOME
	KafkaDataDir           = "/var/lib/kafka/data"                      // writable, for log.dirs
	KafkaStorageScript     = KafkaHome + "/bin/kafka-storage.sh"        // kafka.tools.StorageTool
	KafkaServerScript      = KafkaHome + "/bin/kafka-server-start.sh"   // kafka.Kafka
	KafkaMirrorMakerScript = KafkaHome + "/bin/connect-mirror-maker.sh" // org.apache.kafka.connect.mirror.MirrorMaker
	KafkaRunClassScript    = KafkaHome + "/bin/kafka-run-class.sh"      // any main class on /opt/kafka/libs/*
	// KafkaServerStartedLine is what the server logs (INFO, stdout) once it
	// serves; KafkaMirrorMakerStartedLine what MirrorMaker 2 logs once its
	// source connector runs.
	KafkaServerStartedLine      = "Kafka Server started"
	KafkaMirrorMakerStartedLine = "Started MirrorSourceConnector"
)

const (
	kafkaPath     = "/opt/kafka/bin:/opt/java/openjdk/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	defaultJDK    = "/usr/lib/jvm/java-17-openjdk-amd64"
	kafkaJarsHint = `run "make kafka" to fetch them`
	hostLocale    = "/usr/lib/locale/C.utf8" // Debian's libc-bin
)

// DefaultJREModules are the JDK modules jlink'd into the Kafka image's JRE:
// java.se (jdeps over the Kafka jars finds java.management, java.naming,
// java.sql, java.xml, java.desktop (java.beans), java.instrument,
// java.security.sasl, ...), jdk.unsupported (sun.misc.Unsafe for
// Kafka, Scala, Caffeine, zstd/lz4), jdk.management and
// jdk.management.agent (com.sun.management metrics; the local JMX agent
// that Kafka's scripts enable by default), jdk.crypto.ec (TLS with EC
// ciphers), jdk.zipfs, jdk.naming.dns, and jdk.security.auth /
// jdk.security.jgss (JAAS and Kerberos login modules for SASL).
var DefaultJREModules = []string{
	"java.se", "jdk.unsupported", "jdk.management", "jdk.management.agent", "jdk.crypto.ec",
	"jdk.zipfs", "jdk.naming.dns", "jdk.security.auth", "jdk.security.jgss",
}

// desktopNatives are JRE libraries that only AWT, Swing, Java2D fonts or
// sound load. Kafka runs headless and never loads them, so their system
// dependencies (X11, freetype, ALSA, libjpeg, ...) are not collected.
var desktopNatives = map[string]bool{
	"libawt_xawt.so": true, "libsplashscreen.so": true, "libjsound.so": true, "libfontmanager.so": true,
	"libjavajpeg.so": true, "liblcms.so": true, "libjawt.so": true,
}

//go:embed kafka/bin/*.sh kafka/config/*.yaml
var kafkaFiles embed.FS

// KafkaOptions configures BuildKafka. Zero values mean the defaults.
type KafkaOptions struct {
	Tag string // default DefaultKafkaTag
	// JDK is a JDK home with bin/jlink and jmods/. Default: the Debian JDK 17
	// (/usr/lib/jvm/java-17-openjdk-amd64), else $JAVA_HOME.
	JDK string
	// Libs holds the Kafka jars. Default $MINIBROKER_KAFKA_LIBS, else
	// <repo>/.cache/kafka/libs (`make kafka`).
	Libs string
	// Busybox is a statically linked busybox. Default /bin/busybox, else
	// /usr/bin/busybox (Debian's busybox-static).
	Busybox string
	// Modules are the JRE's modules. Default DefaultJREModules.
	Modules []string
	Logf    Logf
}

// BuildKafka writes the Kafka image archive to out: a JRE jlink'd from the
// local JDK at /opt/java/openjdk, the glibc libraries it needs (found with
// ldd), busybox as /bin/sh and its applets, the Kafka jars in /opt/kafka/libs
// and the scripts and log4j2 configs of kafka/ in /opt/kafka/{bin,config}.
func BuildKafka(ctx context.Context, o KafkaOptions, out string) (Result, error) {
	began := time.Now()
	if o.Tag == "" {
		o.Tag = DefaultKafkaTag
	}
	if len(o.Modules) == 0 {
		o.Modules = DefaultJREModules
	}
	jdk, err := findJDK(o.JDK)
	if err != nil {
		return Result{}, err
	}
	libs, jars, err := findKafkaJars(o.Libs)
	if err != nil {
		return Result{}, err
	}
	busybox, err := findBusybox(o.Busybox)
	if err != nil {
		return Result{}, err
	}
	applets, err := busyboxApplets(ctx, busybox)
	if err != nil {
		return Result{}, err
	}

	tmp, err := os.MkdirTemp("", "minibroker-kafka-image-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(tmp)
	jre := filepath.Join(tmp, "jre")
	if err := jlink(ctx, jdk, o.Modules, jre, o.Logf); err != nil {
		return Result{}, err
	}

	// The libraries every native part needs: the java launcher, the JVM,
	// the JRE's JNI libraries and those the jars unpack at run time.
	natives := []string{filepath.Join(jre, "bin", "java")}
	for _, pattern := range []string{"lib/*.so", "lib/server/*.so"} {
		m, _ := filepath.Glob(filepath.Join(jre, pattern))
		for _, so := range m {
			if !desktopNatives[filepath.Base(so)] {
				natives = append(natives, so)
			}
		}
	}
	nativeDir := filepath.Join(tmp, "jar-natives")
	if err := os.Mkdir(nativeDir, 0o755); err != nil {
		return Result{}, err
	}
	jarNatives, err := extractJarNatives(jars, nativeDir)
	if err != nil {
		return Result{}, err
	}
	natives = append(natives, jarNatives...)
	sysLibs, err := sharedLibs(ctx, natives,
		filepath.Join(jre, "lib")+":"+filepath.Join(jre, "lib", "server"), jre, nativeDir)
	if err != nil {
		return Result{}, err
	}
	o.Logf.printf("images: JRE needs %d system libraries: %s", len(sysLibs), strings.Join(sysLibs, " "))

	locale := hostLocale
	if _, err := os.Stat(filepath.Join(locale, "LC_CTYPE")); err != nil {
		o.Logf.printf("images: no %s on this host: Java in the image will default to ASCII file names", locale)
		locale = ""
	}

	img, err := KafkaImage(KafkaInputs{Tag: o.Tag, JRE: jre, Jars: jars, Busybox: busybox, Applets: applets,
		SystemLibs: sysLibs, Locale: locale})
	if err != nil {
		return Result{}, err
	}
	o.Logf.printf("images: writing %s (jars from %s)", out, libs)
	return writeResult(out, img, began)
}

// KafkaInputs are the host files a Kafka image is made of.
type KafkaInputs struct {
	Tag        string
	JRE        string   // a JRE directory (jlink output), copied to /opt/java/openjdk
	Jars       []string // Kafka jars, copied to /opt/kafka/libs
	Busybox    string   // static busybox, copied to /bin/busybox
	Applets    []string // applet paths relative to / ("bin/sh", "usr/bin/env"), linked to /bin/busybox
	SystemLibs []string // host shared libraries, copied to the same paths
	// Locale is glibc's compiled C.UTF-8 locale directory, copied to
	// /usr/lib/locale/C.utf8 so that LANG=C.UTF-8 gives Java UTF-8
	// file.encoding and sun.jnu.encoding (glibc 2.36 does not build it
	// in). Empty leaves it out.
	Locale string
}

// KafkaImage assembles the Kafka image from in. Layers, bottom first: base
// system (busybox, glibc, /etc, directories), JRE, jars, scripts and configs,
// so a rebuild after a script change only changes the top layer.
func KafkaImage(in KafkaInputs) (Image, error) {
	base := []Entry{
		HostFile("/bin/busybox", 0o755, in.Busybox),
		Dir("/tmp", 0o1777),
		Dir("/root", 0o700),
		Dir(KafkaDataDir, 0o755),
		File("/etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")),
		File("/etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")),
		File("/etc/nsswitch.conf", 0o644, []byte("passwd: files\ngroup: files\nhosts: files dns\n")),
	}
	seen := map[string]bool{"/bin/busybox": true}
	applets := slices.Clone(in.Applets)
	if !slices.Contains(applets, "bin/sh") {
		applets = append(applets, "bin/sh")
	}
	for _, a := range applets {
		p := path.Clean("/" + a)
		if seen[p] {
			continue
		}
		seen[p] = true
		base = append(base, Symlink(p, "/bin/busybox"))
	}
	for _, lib := range in.SystemLibs {
		if !strings.HasPrefix(lib, "/") {
			return Image{}, fmt.Errorf("images: system library %q is not an absolute path", lib)
		}
		p := path.Clean(filepath.ToSlash(lib))
		if seen[p] {
			continue
		}
		seen[p] = true
		base = append(base, HostFile(p, 0o755, lib))
	}

	if in.Locale != "" {
		locale, err := hostFilesUnder(in.Locale, "/usr/lib/locale/C.utf8")
		if err != nil {
			return Image{}, err
		}
		base = append(base, locale...)
	}

	jre, err := hostFilesUnder(in.JRE, KafkaJavaHome)
	if err != nil {
		return Image{}, err
	}

	var jars []Entry
	version := ""
	for _, jar := range in.Jars {
		name := filepath.Base(jar)
		jars = append(jars, HostFile(KafkaHome+"/libs/"+name, 0o644, jar))
		if v, ok := strings.CutPrefix(name, "kafka_2.13-"); ok {
			version = strings.TrimSuffix(v, ".jar")
		}
	}

	scripts := []Entry{Dir(KafkaHome+"/logs", 0o755)}
	err = fs.WalkDir(kafkaFiles, "kafka", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := kafkaFiles.ReadFile(p)
		if err != nil {
			return err
		}
		mode := int64(0o644)
		if strings.HasSuffix(p, ".sh") {
			mode = 0o755
		}
		scripts = append(scripts, File(KafkaHome+strings.TrimPrefix(p, "kafka"), mode, data))
		return nil
	})
	if err != nil {
		return Image{}, err
	}

	labels := map[string]string{"org.opencontainers.image.title": "minibroker Kafka (KRaft broker, storage tool, MirrorMaker 2)"}
	if version != "" {
		labels["org.opencontainers.image.version"] = version
	}
	return Image{
		RepoTags: []string{in.Tag},
		Config: Config{
			Env:        []string{"PATH=" + kafkaPath, "JAVA_HOME=" + KafkaJavaHome, "LANG=C.UTF-8"},
			Cmd:        []string{"/bin/sh"},
			WorkingDir: KafkaHome,
			Labels:     labels,
		},
		Layers: []Layer{
			{Comment: "busybox, glibc and the system libraries of the JRE", Entries: base},
			{Comment: "JRE (jlink) in " + KafkaJavaHome, Entries: jre},
			{Comment: "Kafka " + version + " jars in " + KafkaHome + "/libs", Entries: jars},
			{Comment: "Kafka scripts and log4j2 configs in " + KafkaHome, Entries: scripts},
		},
	}, nil
}

// findJDK returns a JDK home that has jlink and jmods.
func findJDK(jdk string) (string, error) {
	candidates := []string{jdk}
	if jdk == "" {
		candidates = []string{defaultJDK, os.Getenv("JAVA_HOME")}
	}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		_, err1 := os.Stat(filepath.Join(c, "bin", "jlink"))
		_, err2 := os.Stat(filepath.Join(c, "jmods", "java.base.jmod"))
		if err1 == nil && err2 == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("images: no JDK with bin/jlink and jmods/ among %q (set -jdk; Debian: openjdk-17-jdk-headless)", candidates)
}

// jdkMajor returns the JDK's feature version from its release file.
func jdkMajor(jdk string) int {
	data, err := os.ReadFile(filepath.Join(jdk, "release"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "JAVA_VERSION="); ok {
			v = strings.Trim(v, `"`)
			major, _, _ := strings.Cut(v, ".")
			n, _ := strconv.Atoi(major)
			return n
		}
	}
	return 0
}

func jlink(ctx context.Context, jdk string, modules []string, out string, logf Logf) error {
	compress := "--compress=2"
	if jdkMajor(jdk) >= 21 {
		compress = "--compress=zip-6"
	}
	args := []string{"--add-modules", strings.Join(modules, ","), "--strip-debug", "--no-header-files",
		"--no-man-pages", compress, "--output", out}
	logf.printf("images: jlink %s", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, filepath.Join(jdk, "bin", "jlink"), args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("images: jlink: %w\n%s", err, b)
	}
	return nil
}

// EnvKafkaLibs names the environment variable that says where the Kafka
// jars of `make kafka` are, for the Kafka image and the Kafka test bed.
const EnvKafkaLibs = "MINIBROKER_KAFKA_LIBS"

// KafkaLibsDir is where the Kafka jars are: $MINIBROKER_KAFKA_LIBS, else
// .cache/kafka/libs under the repository root, where `make kafka` puts
// them.
func KafkaLibsDir() (string, error) {
	if dir := os.Getenv(EnvKafkaLibs); dir != "" {
		return dir, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", fmt.Errorf("%w; set %s to the Kafka libs directory", err, EnvKafkaLibs)
	}
	return filepath.Join(root, ".cache", "kafka", "libs"), nil
}

// findKafkaJars returns the jars directory and its jars, sorted, checking that
// the broker, MirrorMaker 2 and the log4j2 YAML support are there.
func findKafkaJars(libs string) (string, []string, error) {
	if libs == "" {
		var err error
		if libs, err = KafkaLibsDir(); err != nil {
			return "", nil, err
		}
	}
	jars, _ := filepath.Glob(filepath.Join(libs, "*.jar"))
	slices.Sort(jars)
	for _, want := range []string{"kafka_2.13-*.jar", "connect-mirror-[0-9]*.jar", "connect-runtime-*.jar",
		"log4j-core-*.jar", "log4j-slf4j-impl-*.jar", "jackson-dataformat-yaml-*.jar"} {
		if m, _ := filepath.Glob(filepath.Join(libs, want)); len(m) == 0 {
			return "", nil, fmt.Errorf("images: no %s in %s: %s", want, libs, kafkaJarsHint)
		}
	}
	return libs, jars, nil
}

func findBusybox(bb string) (string, error) {
	candidates := []string{bb}
	if bb == "" {
		candidates = []string{"/bin/busybox", "/usr/bin/busybox"}
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err != nil {
			continue
		}
		if err := CheckStatic(c); err != nil {
			return "", fmt.Errorf("%w (install busybox-static)", err)
		}
		return c, nil
	}
	return "", fmt.Errorf("images: no busybox among %q (apt-get install busybox-static)", candidates)
}

// busyboxApplets returns the applets of busybox with their install paths
// ("bin/sh", "usr/bin/env", ...), sorted.
func busyboxApplets(ctx context.Context, busybox string) ([]string, error) {
	out, err := exec.CommandContext(ctx, busybox, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("images: %s --list-full: %w", busybox, err)
	}
	var applets []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		a := strings.TrimSpace(sc.Text())
		// Only the usual directories: this leaves out linuxrc (and the
		// busybox binary itself, should a build list it).
		dir := path.Dir(a)
		if a == "" || path.Base(a) == "busybox" ||
			(dir != "bin" && dir != "sbin" && dir != "usr/bin" && dir != "usr/sbin") {
			continue
		}
		applets = append(applets, a)
	}
	slices.Sort(applets)
	return applets, nil
}
