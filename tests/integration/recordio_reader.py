#!/usr/bin/env python3
"""An independent dmlc RecordIO reader, to check what trainfeed writes (sagemaker-contract §9).

Written from the format description alone (standard library only, no project code), so a bug in
trainfeed's writer cannot hide behind the same bug in its reader.

    recordio_reader.py FILE_OR_FIFO|- [--dump-dir D]   one line per record: <index> <length> <sha256>
    recordio_reader.py --self-test                      the byte-exact examples of §9; non-zero on mismatch

Framing is checked strictly: magic 0xCED7230A (little-endian) at every header, cflag 0 for a whole
record or 1, 2.., 3 for a multipart one, only the last part of a record unaligned, zero padding to
4 bytes, and the data ending on a record boundary. Continuation parts are joined with the magic
re-inserted between them, as dmlc's reader does. On bad framing it prints one line naming the byte
offset and exits 1. --dump-dir writes record N to D/record-NNNNNNNN.

As a module: read_records(fileobj) yields each record's payload (bytes); encode_record(payload)
returns its framing.
"""
import argparse
import hashlib
import os
import struct
import sys

MAGIC = 0xCED7230A
MAGIC_BYTES = struct.pack("<I", MAGIC)
LENGTH_MASK = (1 << 29) - 1


class RecordIOError(Exception):
    """Bad framing; the message starts with the byte offset."""

    def __init__(self, offset, why):
        super().__init__(f"byte offset {offset}: {why}")
        self.offset = offset


def _pad(length):
    return (4 - length % 4) % 4


def _read_exact(f, n):
    """Up to n bytes: fewer only at EOF (pipes return short reads, so loop)."""
    chunks = []
    while n > 0:
        chunk = f.read(n)
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_records(f):
    """Yields the payload of every record in the binary file object `f`; RecordIOError on bad framing."""
    offset = 0
    while True:
        record = bytearray()
        first = True
        while True:
            header = _read_exact(f, 8)
            if not header and first:
                return
            if len(header) < 8:
                where = "inside a multipart record" if not first else "in a header"
                raise RecordIOError(offset, f"truncated header ({len(header)} of 8 bytes) {where}")
            magic, lrec = struct.unpack("<II", header)
            if magic != MAGIC:
                raise RecordIOError(offset, f"bad magic 0x{magic:08X}")
            cflag, length = lrec >> 29, lrec & LENGTH_MASK
            if first and cflag not in (0, 1):
                raise RecordIOError(offset, f"cflag {cflag} at the start of a record")
            if not first and cflag not in (2, 3):
                raise RecordIOError(offset, f"cflag {cflag} inside a multipart record")
            if cflag in (1, 2) and length % 4:
                raise RecordIOError(offset, f"non-final part of unaligned length {length}")
            body = _read_exact(f, length + _pad(length))
            if len(body) < length + _pad(length):
                raise RecordIOError(offset, f"truncated part: {length} bytes + padding announced, "
                                            f"{len(body)} present")
            for i in range(length, len(body)):
                if body[i]:
                    raise RecordIOError(offset + 8 + i, "non-zero padding byte")
            record += body[:length]
            offset += 8 + len(body)
            if cflag in (0, 3):
                break
            record += MAGIC_BYTES
            first = False
        yield bytes(record)


def encode_record(payload):
    """The framing of one record: split at every 4-byte-aligned magic, cflag 0 if there is none."""
    parts, start = [], 0
    for pos in range(0, len(payload) - 3, 4):
        if payload[pos:pos + 4] == MAGIC_BYTES:
            parts.append(payload[start:pos])
            start = pos + 4
    parts.append(payload[start:])
    out = bytearray()
    for i, part in enumerate(parts):
        if len(parts) == 1:
            cflag = 0
        else:
            cflag = 1 if i == 0 else 3 if i == len(parts) - 1 else 2
        if len(part) > LENGTH_MASK:
            raise ValueError(f"record part of {len(part)} bytes exceeds RecordIO's limit")
        out += struct.pack("<II", MAGIC, (cflag << 29) | len(part)) + part + b"\0" * _pad(len(part))
    return bytes(out)


def self_test():
    import io
    cases = [
        # §9.1: payload "abcde"; the empty payload.
        (b"abcde", "0A 23 D7 CE 05 00 00 00 61 62 63 64 65 00 00 00"),
        (b"", "0A 23 D7 CE 00 00 00 00"),
        # §9.2: 41 42 43 44 | magic | 45 46.
        (b"ABCD" + MAGIC_BYTES + b"EF",
         "0A 23 D7 CE 04 00 00 20 41 42 43 44 0A 23 D7 CE 02 00 00 60 45 46 00 00"),
    ]
    failures = 0
    for payload, hex_framing in cases:
        framing = bytes.fromhex(hex_framing)
        got = list(read_records(io.BytesIO(framing)))
        if got != [payload]:
            print(f"self-test: reading {hex_framing} gave {got!r}, expected {[payload]!r}", file=sys.stderr)
            failures += 1
        if encode_record(payload) != framing:
            print(f"self-test: encoding {payload!r} gave {encode_record(payload).hex(' ').upper()}",
                  file=sys.stderr)
            failures += 1
    # Bad framing must be refused with the right offset.
    good = bytes.fromhex(cases[0][1])
    for data, offset in [(good + b"\x0b\x23\xd7\xce" + bytes(4), 16), (good[:-1], 0),
                         (good[:13] + b"x" + good[14:], 13), (bytes.fromhex(cases[2][1])[:12], 12)]:
        try:
            list(read_records(io.BytesIO(data)))
            print(f"self-test: {data.hex()} was accepted", file=sys.stderr)
            failures += 1
        except RecordIOError as e:
            if e.offset != offset:
                print(f"self-test: {data.hex()}: {e} (expected offset {offset})", file=sys.stderr)
                failures += 1
    print("self-test: " + ("ok" if failures == 0 else f"{failures} failure(s)"))
    return 1 if failures else 0


def main():
    parser = argparse.ArgumentParser(description="Read and check a dmlc RecordIO stream.")
    parser.add_argument("path", nargs="?", help="file or FIFO to read, '-' for stdin")
    parser.add_argument("--dump-dir", help="write record N to DIR/record-NNNNNNNN")
    parser.add_argument("--self-test", action="store_true", help="check the contract's examples")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    if not args.path:
        parser.error("a file, FIFO or '-' is required")
    if args.dump_dir:
        os.makedirs(args.dump_dir, exist_ok=True)
    f = sys.stdin.buffer if args.path == "-" else open(args.path, "rb", buffering=1 << 20)
    index = 0
    try:
        for payload in read_records(f):
            print(f"{index} {len(payload)} {hashlib.sha256(payload).hexdigest()}", flush=False)
            if args.dump_dir:
                with open(os.path.join(args.dump_dir, f"record-{index:08d}"), "wb") as out:
                    out.write(payload)
            index += 1
    except RecordIOError as e:
        sys.stdout.flush()
        print(f"recordio_reader: {args.path}: {e} (after {index} good records)", file=sys.stderr)
        return 1
    finally:
        if f is not sys.stdin.buffer:
            f.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
