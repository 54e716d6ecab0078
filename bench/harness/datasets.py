"""The benchmark datasets and how they are put on a server.

  L    16 x 256 MiB        large objects: bandwidth-bound
  S    16,384 x 128 KiB    small objects: request-rate-bound
  S2k  2,048 x 128 KiB     S at 1/8 of the count: peak memory must not grow with the count
  T    100,000 x 4 KiB     tiny objects: listing- and metadata-bound
  XL   1 x 2 GiB           one large object read sequentially through a mount (FastFile mode)

--scale shrinks counts (S, S2k, T) and the object sizes of L and XL for quick runs. T spreads
about 250 objects per folder over 2 to 100 folders (100 from --scale 0.25 up), so that a tiny run
is not a folder per object. Contents are distinct per object (a unique header, then a slice of a
random pool) so nothing can be deduplicated.
"""
import hashlib
import os
import subprocess
from dataclasses import dataclass

KiB, MiB = 1 << 10, 1 << 20
BUCKET = "bench"
BASE_MTIME = 1_700_000_000  # the fast server's ETags derive from mtime: stable, distinct


@dataclass(frozen=True)
class Dataset:
    name: str
    count: int
    size: int
    folders: int  # objects are spread over this many folders, as real datasets are

    @property
    def total_bytes(self):
        return self.count * self.size

    @property
    def prefix(self):
        return self.name + "/"

    def keys(self):
        for i in range(self.count):
            if self.folders > 1:
                yield f"{self.name}/part{i % self.folders:03d}/obj{i:06d}.bin"
            else:
                yield f"{self.name}/obj{i:06d}.bin"

    def describe(self):
        return f"{self.count:,} x {fmt_bytes(self.size)}"


def fmt_bytes(n):
    for unit, size in (("GiB", 1 << 30), ("MiB", MiB), ("KiB", KiB)):
        if n >= size:
            v = n / size
            return f"{v:.0f} {unit}" if v == int(v) else f"{v:.1f} {unit}"
    return f"{n} B"


def make_datasets(scale, names):
    scaled = lambda n, low: max(low, int(n * scale))
    all_sets = {
        "L": Dataset("L", 16, max(MiB, int(256 * MiB * scale) // MiB * MiB), 1),
        "S": Dataset("S", scaled(16384, 64), 128 * KiB, 16),
        "S2k": Dataset("S2k", scaled(2048, 16), 128 * KiB, 16),
        "T": Dataset("T", scaled(100_000, 100), 4 * KiB,
                     min(100, max(2, scaled(100_000, 100) // 250))),
        "XL": Dataset("XL", 1, max(8 * MiB, int(2048 * MiB * scale) // MiB * MiB), 1),
    }
    return [all_sets[n] for n in names]


class ContentPool:
    """64 MiB of random bytes; object i is a 16-byte unique header plus a slice of the pool."""

    def __init__(self):
        self.pool = os.urandom(64 * MiB)

    def chunks(self, index, size):
        """The bytes of object `index` of `size` bytes, in pieces of at most 8 MiB."""
        header = f"{index:015d}\n".encode()[:size]
        yield header
        left, offset = size - len(header), (index * 7919 * 4096) % len(self.pool)
        while left > 0:
            chunk = self.pool[offset:offset + min(left, 8 * MiB)]
            yield chunk
            left -= len(chunk)
            offset = (offset + len(chunk)) % len(self.pool)

    def write(self, path, index, size):
        with open(path, "wb") as f:
            for chunk in self.chunks(index, size):
                f.write(chunk)

    def sha256(self, index, size):
        """The SHA-256 (hex) of what write() puts in object `index`, without writing it."""
        h = hashlib.sha256()
        for chunk in self.chunks(index, size):
            h.update(chunk)
        return h.hexdigest()


def write_fast_layout(dataset, data_dir, pool):
    """Objects in s3rver's on-disk layout, written directly (no server round trips). The ETag file
    holds nginx's validator for the file (hex mtime-size) so that listing ETags and the ETags of
    nginx's sendfile GETs agree, and If-Match works on both paths. Each object gets its own
    mtime so that ETags are distinct: s3cmd copies objects with equal ETags locally instead of
    downloading them."""
    for i, key in enumerate(dataset.keys()):
        path = os.path.join(data_dir, BUCKET, key + "._S3rver_object")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        pool.write(path, i, dataset.size)
        mtime = BASE_MTIME + i
        os.utime(path, (mtime, mtime))
        with open(path + ".md5", "w") as f:
            f.write(f"{mtime:x}-{dataset.size:x}")


def upload_with_trainfeed(dataset, staging_dir, trainfeed, env, pool):
    """Objects written to a staging folder, uploaded with trainfeed itself, staging removed."""
    root = os.path.join(staging_dir, dataset.name)
    for i, key in enumerate(dataset.keys()):
        path = os.path.join(staging_dir, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        pool.write(path, i, dataset.size)
    subprocess.run([trainfeed, "-q", "upload", root, f"s3://{BUCKET}/{dataset.prefix}"],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["rm", "-rf", root], check=True)


def tree_totals(root):
    """(file count, byte total) of a downloaded tree, ignoring nothing: leftovers would count."""
    files = size = 0
    for dirpath, _, names in os.walk(root):
        for n in names:
            files += 1
            size += os.lstat(os.path.join(dirpath, n)).st_size
    return files, size
