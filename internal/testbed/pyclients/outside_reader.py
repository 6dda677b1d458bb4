"""A filter's owner reading their stream from outside the swarm with a
client this project did not write: Python's confluent-kafka, configured
only from the properties block minibroker_filter_group.readers gives.

usage: outside_reader.py PROPERTIES TOPIC [--registry FILE] [key=value ...]

Reads TOPIC from its beginning, in the group the properties name, until
nothing new arrives for a while, and prints one JSON line per alert with
its visit and id (the mb-visit and mb-id headers). With --registry, FILE
holds minibroker_swarm.schema_registry_properties: each alert is decoded
with confluent-kafka's AvroDeserializer, which looks its schema id up in
the swarm's schema registry, and the line also gives the decoded
diaSourceId and the schema id. The key=value arguments override the
properties (a wrong password, PLAINTEXT).
Exit codes: 0 read; 3 Kafka refused (the error's name on stderr, e.g.
TOPIC_AUTHORIZATION_FAILED); 4 nothing read in time.
"""
import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext


def properties(path):
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#!":
                continue
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def main():
    conf = properties(sys.argv[1])
    topic = sys.argv[2]
    rest = sys.argv[3:]
    deserialize = None
    if rest[:1] == ["--registry"]:
        deserialize = AvroDeserializer(SchemaRegistryClient(properties(rest[1])))
        rest = rest[2:]
    for kv in rest:
        key, _, value = kv.partition("=")
        conf[key] = value
    conf.update({"auto.offset.reset": "earliest", "enable.auto.commit": False})
    errors = []

    def on_error(err):
        errors.append(err)

    conf["error_cb"] = on_error
    consumer = Consumer(conf)
    consumer.subscribe([topic])
    deadline, idle_since, n = time.time() + 60, None, 0
    try:
        while time.time() < deadline:
            msg = consumer.poll(0.5)
            for err in errors:
                if err.code() in (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED,
                                  KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED,
                                  KafkaError._ALL_BROKERS_DOWN, KafkaError._SSL):
                    print(err.name(), err.str(), file=sys.stderr)
                    return 3
            if msg is None:
                if n and idle_since and time.time() - idle_since > 8:
                    return 0
                continue
            if msg.error():
                print(msg.error().name(), msg.error().str(), file=sys.stderr)
                return 3
            headers = dict(msg.headers() or [])
            line = {"visit": int(headers["mb-visit"]), "id": headers["mb-id"].decode()}
            if deserialize:
                alert = deserialize(msg.value(), SerializationContext(topic, MessageField.VALUE))
                line.update(decoded=str(alert["diaSourceId"]), schema_id=int.from_bytes(msg.value()[1:5], "big"))
            print(json.dumps(line), flush=True)
            n, idle_since = n + 1, time.time()
    except KafkaException as e:
        print(e.args[0].name(), e, file=sys.stderr)
        return 3
    finally:
        consumer.close()
    return 0 if n else 4


if __name__ == "__main__":
    sys.exit(main())
