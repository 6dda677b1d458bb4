"""Avro Object Container Files written by fastavro, an Avro implementation
this project did not write, carrying the invalid schema defaults that real
alert archives from other tools carry (internal/testbed/outsideavro).

usage: outside_ocf.py OUTDIR

Writes to OUTDIR:
  good.avro         fastavro's file of the records below under GOOD, a valid
                    schema (deflate codec, several blocks)
  bad.avro          the same bytes but for the header's avro.schema: BAD,
                    GOOD with an invalid default on 7 fields (as older
                    writers, e.g. Java Avro 1.8, left them). fastavro itself
                    refuses its schema at parse time, so the header is
                    rewritten rather than written by fastavro's writer: same
                    header encoding, same sync marker, same blocks.
  enumdefault.avro  the same again under GOOD with an enum type's own
                    default not among its symbols
  records.json      the records as fastavro reads them back from bad.avro
                    (given GOOD as its reader schema, fastavro's own way of
                    reading files with bad defaults), tagged so that JSON
                    keeps them exact: a float is {"$double": float.hex()},
                    bytes {"$bytes": hex}

Exits non-zero if fastavro reads bad.avro without a reader schema (the
fixture would not be bad), or reads other records from bad.avro than from
good.avro.
"""
import copy
import io
import json
import math
import os
import sys

import fastavro

DIASOURCE = {
    "type": "record", "name": "diaSource", "namespace": "lsst.v7_0",
    "fields": [
        {"name": "diaSourceId", "type": "long"},
        {"name": "visit", "type": "long"},
        {"name": "band", "type": ["null", "string"], "default": None},
        {"name": "x", "type": ["null", "double"], "default": None},
        {"name": "y", "type": ["double", "null"], "default": 0.0},
        {"name": "detector", "type": "int", "default": 0},
        {"name": "flags", "type": {"type": "enum", "name": "quality", "symbols": ["GOOD", "BAD"]}, "default": "GOOD"},
        {"name": "psf", "type": {"type": "fixed", "name": "psfHash", "size": 4}, "default": "\u0000\u0000\u0000\u0000"},
        {"name": "snr", "type": "float"},
        {"name": "blob", "type": ["null", "bytes"], "default": None},
    ],
}

GOOD = {
    "type": "record", "name": "alert", "namespace": "lsst.v7_0",
    "fields": [
        {"name": "diaSourceId", "type": "long"},
        {"name": "diaSource", "type": DIASOURCE},
        {"name": "prvDiaSources", "type": ["null", {"type": "array", "items": "lsst.v7_0.diaSource"}], "default": None},
        {"name": "position", "type": {"type": "record", "name": "point",
                                      "fields": [{"name": "ra", "type": "double"}, {"name": "dec", "type": "double"}]},
         "default": {"ra": 0.0, "dec": 0.0}},
        {"name": "extra", "type": {"type": "map", "values": "string"}, "default": {}},
        {"name": "stamp", "type": "bytes", "default": ""},
    ],
}


def field(schema, *names):
    for name in names:
        if isinstance(schema.get("type"), dict):
            schema = schema["type"]
        schema = next(f for f in schema["fields"] if f["name"] == name)
    return schema


# The invalid defaults; internal/testbed/outsideavro.BadDefaults lists the
# same fields.
BAD = copy.deepcopy(GOOD)
field(BAD, "diaSource", "x")["default"] = 1.5         # union: not its first branch (null)
field(BAD, "diaSource", "y")["default"] = None        # union: null is not its first branch (double)
field(BAD, "diaSource", "detector")["default"] = "1"  # int written as a string
field(BAD, "diaSource", "flags")["default"] = "UNKNOWN"  # enum field: not a symbol
field(BAD, "diaSource", "psf")["default"] = 7         # fixed: not a string
field(BAD, "position")["default"] = []                # record: not an object
field(BAD, "stamp")["default"] = 12                   # bytes: not a string

ENUM_DEFAULT = copy.deepcopy(GOOD)
field(ENUM_DEFAULT, "diaSource", "flags")["type"]["default"] = "UNKNOWN"  # the enum type's own default

HEADER = {
    "type": "record", "name": "org.apache.avro.file.Header",
    "fields": [
        {"name": "magic", "type": {"type": "fixed", "name": "Magic", "size": 4}},
        {"name": "meta", "type": {"type": "map", "values": "bytes"}},
        {"name": "sync", "type": {"type": "fixed", "name": "Sync", "size": 16}},
    ],
}


def source(i, j):
    return {
        "diaSourceId": 1000 * i + j,
        "visit": 1 + i // 4,
        "band": ["g", "r", "i", None][(i + j) % 4],
        "x": [None, 1.25, float("nan"), -0.0][(i + j) % 4],
        "y": [0.5, None, float("inf"), -float("inf")][i % 4],
        "detector": i * 17 - 50,
        "flags": ["GOOD", "BAD"][i % 2],
        "psf": bytes([i, 255, 0, 128]),
        "snr": [41.1, float("nan"), 5.5e-3, -1e30][i % 4],
        "blob": None if i % 3 else bytes(range(256)),
    }


def records():
    out = []
    for i in range(12):
        out.append({
            "diaSourceId": (1 << 62) + i if i % 2 else -i,
            "diaSource": source(i, 0),
            "prvDiaSources": None if i % 3 == 0 else [source(i, j) for j in range(1, 1 + i % 4)],
            "position": {"ra": 351.570546978 + i, "dec": -0.126 * i},
            "extra": {} if i % 2 else {"note": "caf\u00e9 \u2713", "i": str(i)},
            "stamp": bytes((i * k) % 256 for k in range(40 * i)),
        })
    return out


def tag(v):
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return {"$double": v.hex()}
    if isinstance(v, (bytes, bytearray)):
        return {"$bytes": bytes(v).hex()}
    if isinstance(v, dict):
        return {k: tag(x) for k, x in v.items()}
    if isinstance(v, list):
        return [tag(x) for x in v]
    raise TypeError(f"unexpected {type(v)}")


def with_schema(data, schema):
    """data with its header's avro.schema replaced by schema."""
    header = fastavro.schemaless_reader(io.BytesIO(data), HEADER, None)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, HEADER, header)
    head = buf.getvalue()
    if not data.startswith(head):
        raise SystemExit("re-encoding fastavro's header did not give its bytes back")
    header["meta"]["avro.schema"] = json.dumps(schema).encode()
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, HEADER, header)
    return buf.getvalue() + data[len(head):]


def main():
    out = sys.argv[1]
    buf = io.BytesIO()
    fastavro.writer(buf, fastavro.parse_schema(copy.deepcopy(GOOD)), records(), codec="deflate", sync_interval=1500)
    good = buf.getvalue()
    paths = {name: os.path.join(out, name) for name in ("good.avro", "bad.avro", "enumdefault.avro", "records.json")}
    with open(paths["good.avro"], "wb") as f:
        f.write(good)
    with open(paths["bad.avro"], "wb") as f:
        f.write(with_schema(good, BAD))
    with open(paths["enumdefault.avro"], "wb") as f:
        f.write(with_schema(good, ENUM_DEFAULT))

    try:
        with open(paths["bad.avro"], "rb") as f:
            fastavro.reader(f)
        raise SystemExit("fastavro accepted bad.avro's schema without a reader schema: its defaults are not invalid")
    except fastavro.schema.SchemaParseException:
        pass
    with open(paths["bad.avro"], "rb") as f:
        got = [tag(r) for r in fastavro.reader(f, reader_schema=copy.deepcopy(GOOD))]
    with open(paths["good.avro"], "rb") as f:
        want = [tag(r) for r in fastavro.reader(f)]
    if json.dumps(got) != json.dumps(want):
        raise SystemExit("fastavro read other records from bad.avro than from good.avro")
    with open(paths["records.json"], "w") as f:
        json.dump(got, f, allow_nan=False)
    print(f"wrote {len(got)} records in {len(good)} bytes to {out}")


if __name__ == "__main__":
    main()
