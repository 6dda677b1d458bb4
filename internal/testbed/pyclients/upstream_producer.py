"""An upstream alert stream, written as a community broker's source writes
it, with clients this project did not write: Python's confluent-kafka
producer and AvroSerializer (which looks the schema up in the upstream's
schema registry and frames each alert with its id), over SASL/SCRAM and TLS.

usage: upstream_producer.py KAFKA_PROPERTIES REGISTRY_PROPERTIES TOPIC SAMPLE.avro VISIT:COUNT ...

Each alert is Rubin's sample (read with fastavro) with a new diaSourceId,
the visit, and a pseudo-random diaSource.snr. The records carry no headers.
The schema is not registered here: it must already be in the registry
(under Rubin's id). Prints one JSON line per alert written:
{"diaSourceId": ..., "visit": ..., "snr": ...}.
"""
import copy
import json
import random
import sys

import fastavro
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext


def properties(path):
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and line[0] not in "#!":
                key, _, value = line.partition("=")
                out[key.strip()] = value.strip()
    return out


def main():
    kafka_conf, registry_conf, topic, sample = sys.argv[1:5]
    visits = [tuple(int(x) for x in arg.split(":")) for arg in sys.argv[5:]]
    with open(sample, "rb") as f:
        reader = fastavro.reader(f)
        schema = reader.metadata["avro.schema"]
        base = next(iter(reader))
    serialize = AvroSerializer(SchemaRegistryClient(properties(registry_conf)), schema,
                               conf={"auto.register.schemas": False, "use.latest.version": False})
    producer = Producer(properties(kafka_conf))
    failed = []
    rng = random.Random(11)
    for visit, count in visits:
        for i in range(count):
            rec = copy.deepcopy(base)
            source_id = visit * 100000 + i
            rec["diaSourceId"] = source_id
            rec["diaSource"]["diaSourceId"] = source_id
            rec["diaSource"]["visit"] = visit
            rec["diaSource"]["snr"] = round(rng.uniform(0, 100), 3)
            value = serialize(rec, SerializationContext(topic, MessageField.VALUE))
            producer.produce(topic, key=str(source_id).encode(), value=value,
                             on_delivery=lambda err, msg: err and failed.append(err))
            producer.poll(0)
            print(json.dumps({"diaSourceId": source_id, "visit": visit, "snr": rec["diaSource"]["snr"]}))
        producer.flush(60)
    if producer.flush(60) or failed:
        print(f"not delivered: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
