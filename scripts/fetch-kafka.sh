#!/usr/bin/env bash
# Fetch the Apache Kafka jars (broker, MirrorMaker 2, perf tools, log4j2) that
# internal/testbed/kafkabed runs, from Maven Central, into <repo>/.cache/kafka/libs.
#
# Idempotent: the jar set is keyed by the sha256 of tools/kafka/pom.xml, stored
# in .cache/kafka/libs/.stamp. A second run with an unchanged POM does nothing;
# after a POM change the libs directory is rebuilt from scratch (so no jar of an
# old Kafka version lingers on the classpath).
#
# Needs: mvn, java (17+), sha256sum. Works with an empty ~/.m2 (Maven then
# downloads the pinned maven-dependency-plugin first).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pom="$repo/tools/kafka/pom.xml"
libs="$repo/.cache/kafka/libs"
stamp="$libs/.stamp"

for tool in mvn java sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || { echo "fetch-kafka: '$tool' not found on PATH" >&2; exit 1; }
done

want="$(sha256sum "$pom" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "Kafka jars up to date: $libs"
  exit 0
fi

echo "Fetching Kafka jars from Maven Central (pom sha256 $want)..." >&2
mkdir -p "$repo/.cache/kafka"
tmp="$(mktemp -d "$repo/.cache/kafka/libs.tmp.XXXXXX")"
chmod 755 "$tmp" # mktemp makes it 0700
trap 'rm -rf "$tmp"' EXIT

# -B: no colour/progress noise; -q: errors only. includeScope=runtime keeps
# test-only artifacts out; the POM's packaging is "pom", so nothing is built.
if ! mvn -B -q -f "$pom" dependency:copy-dependencies \
    -DoutputDirectory="$tmp" -DincludeScope=runtime >"$tmp.log" 2>&1; then
  cat "$tmp.log" >&2
  rm -f "$tmp.log"
  echo "fetch-kafka: mvn failed (see above)" >&2
  exit 1
fi
rm -f "$tmp.log"

count="$(find "$tmp" -maxdepth 1 -name '*.jar' | wc -l)"
ls "$tmp"/kafka_2.13-*.jar "$tmp"/connect-mirror-[0-9]*.jar "$tmp"/kafka-tools-[0-9]*.jar >/dev/null 2>&1 || {
  echo "fetch-kafka: expected kafka_2.13, connect-mirror and kafka-tools jars in $tmp" >&2
  exit 1
}

echo "$want" >"$tmp/.stamp"
rm -rf "$libs"
mv "$tmp" "$libs"
trap - EXIT
echo "Fetched $count Kafka jars: $libs"
