#!/usr/bin/env bash
# Installs the outside Kafka clients the tests read the mini-broker with,
# clients this project did not write: Python's confluent-kafka (pinned
# below, a wheel with its own librdkafka and OpenSSL, with its schema
# registry client and Avro serializers) and fastavro, into a virtualenv at
# .cache/pyclients. A no-op while the pinned versions are installed.
#
# Needs: python3 with the venv module and ensurepip (Debian: python3-venv).
set -euo pipefail
cd "$(dirname "$0")/.."

confluent=2.16.2
fastavro=1.13.1
dir=.cache/pyclients
python=${PYTHON:-python3}

installed() {
  "$dir/bin/python" -c 'import importlib.metadata as m, sys
import confluent_kafka.schema_registry.avro
sys.exit(m.version("confluent-kafka") != sys.argv[1] or m.version("fastavro") != sys.argv[2])' "$confluent" "$fastavro" 2>/dev/null
}
if installed; then
  exit 0
fi

"$python" -c 'import venv, ensurepip' 2>/dev/null || {
  echo "fetch-pyclients: $python cannot create a virtualenv (Debian: apt-get install python3-venv)" >&2
  exit 1
}
if [[ -x $dir/bin/python ]]; then
  # An older set: upgrade in place rather than download everything again.
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "confluent-kafka[schemaregistry,avro]==$confluent" "fastavro==$fastavro"
  installed && exit 0
fi
rm -rf "$dir"
mkdir -p "$(dirname "$dir")"
echo "installing confluent-kafka==$confluent and fastavro==$fastavro into $dir"
trap 'rm -rf "$dir"' ERR
"$python" -m venv "$dir"
"$dir/bin/python" -m pip install --quiet --disable-pip-version-check "confluent-kafka[schemaregistry,avro]==$confluent" "fastavro==$fastavro"
trap - ERR
installed || { echo "fetch-pyclients: clients not importable from $dir after install" >&2; exit 1; }
"$dir/bin/python" -c 'import importlib.metadata as m, confluent_kafka as c; print("confluent-kafka", m.version("confluent-kafka"), "with librdkafka", c.libversion()[0])'
