#!/usr/bin/python3
"""The FastFile workloads' reader: run as its own process against a mount, so a hung mount can be
killed without the harness, and timed inside, so interpreter start-up is not measured. Prints one
JSON object on stdout.

  ffread.py seq FILE            sequential 1 MiB buffered reads to the end: bytes, seconds
  ffread.py small ROOT LIST --threads 8 --seed 1
                                every file named in LIST (paths relative to ROOT, one a line),
                                in a seeded shuffled order, each read fully by a pool of threads
  ffread.py ttfb FILE           open + read of one byte: seconds, the byte
  ffread.py evict FILE...       drops the files' cached pages (posix_fadvise DONTNEED)
  ffread.py sha256 FILE...      the SHA-256 of each file, read in 1 MiB pieces
"""
import argparse
import concurrent.futures
import hashlib
import json
import os
import random
import sys
import time

CHUNK = 1 << 20


def read_sequential(path):
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    total = 0
    start = time.monotonic()
    with open(path, "rb", buffering=0) as f:
        while True:
            n = f.readinto(view)
            if not n:
                break
            total += n
    return {"bytes": total, "seconds": time.monotonic() - start}


def read_small(root, list_path, threads, seed):
    with open(list_path) as f:
        names = [line.rstrip("\n") for line in f if line.strip()]
    random.Random(seed).shuffle(names)

    def read_one(name):
        with open(os.path.join(root, name), "rb", buffering=0) as f:
            n = 0
            while True:
                chunk = f.read(CHUNK)
                if not chunk:
                    return n
                n += len(chunk)

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        total = sum(pool.map(read_one, names))
    return {"files": len(names), "bytes": total, "seconds": time.monotonic() - start}


def first_byte(path):
    start = time.monotonic()
    fd = os.open(path, os.O_RDONLY)
    try:
        byte = os.read(fd, 1)
        seconds = time.monotonic() - start
    finally:
        os.close(fd)
    return {"seconds": seconds, "byte": byte[0] if byte else None}


def evict(paths):
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return {"evicted": len(paths)}


def sha256(paths):
    out = {}
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    for path in paths:
        h = hashlib.sha256()
        with open(path, "rb", buffering=0) as f:
            while True:
                n = f.readinto(view)
                if not n:
                    break
                h.update(view[:n])
        out[path] = h.hexdigest()
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("seq").add_argument("file")
    small = sub.add_parser("small")
    small.add_argument("root")
    small.add_argument("list")
    small.add_argument("--threads", type=int, default=8)
    small.add_argument("--seed", type=int, default=1)
    sub.add_parser("ttfb").add_argument("file")
    sub.add_parser("evict").add_argument("files", nargs="+")
    sub.add_parser("sha256").add_argument("files", nargs="+")
    a = p.parse_args()
    if a.cmd == "seq":
        result = read_sequential(a.file)
    elif a.cmd == "small":
        result = read_small(a.root, a.list, a.threads, a.seed)
    elif a.cmd == "ttfb":
        result = first_byte(a.file)
    elif a.cmd == "evict":
        result = evict(a.files)
    else:
        result = sha256(a.files)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
