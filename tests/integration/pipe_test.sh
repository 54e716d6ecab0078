#!/usr/bin/env bash
# `trainfeed pipe` against the real S3 server, with real FIFOs and reader processes in Python and
# C++: each epoch's bytes are exactly the expected objects in the expected order (listing order,
# or the documented seeded permutation, recomputed here independently), every host of a sharded
# channel gets each item exactly once per epoch, RecordIO framing passes an independent reader
# (an aligned magic included), gzip objects arrive inflated, augmented manifests stream -ref
# objects and values, a reader may close an epoch early, two channels stream at once, and bad
# input fails with one line, a non-zero exit and no FIFO left behind.
source "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
READER=${TRAINFEED_PIPE_READER:?the C++ pipe reader (tf-pipe-reader) is missing}
[[ -x $READER ]] || fail "pipe reader '$READER' is not built"

PIDS=()
cleanup() { local p; for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# The model: the documented permutation (dataset/sharding.h), listing order, sharding, and the
# expected bytes of an epoch, computed from the local copy of the data.
cat >"$WORK/model.py" <<'PY'
import hashlib, os, sys
M = (1 << 64) - 1
def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return z ^ (z >> 31)
def epoch_order(n, seed, epoch):
    order = list(range(n))
    if seed is None or n < 2:
        return order
    state = mix64(mix64(seed & M) ^ epoch)
    def nxt():
        nonlocal state
        state = (state + 0x9E3779B97F4A7C15) & M
        return mix64(state)
    def bounded(r):
        m = nxt() * r
        if (m & M) < r:
            t = ((1 << 64) - r) % r
            while (m & M) < t:
                m = nxt() * r
        return m >> 64
    for i in range(n - 1, 0, -1):
        j = bounded(i + 1)
        order[i], order[j] = order[j], order[i]
    return order
def objects(root):  # (key relative to root, path) in S3 listing order
    out = []
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            out.append((os.path.relpath(p, root), p))
    return sorted(out, key=lambda kv: kv[0].encode())
def host_items(n, seed, epoch, host, hosts):
    order = epoch_order(n, seed, epoch)
    return [order[i] for i in range(n) if i % hosts == host]
if __name__ == "__main__":
    # model.py ROOT SEED|none EPOCH HOST HOSTS -> "bytes B sha256 H"
    root, seed, epoch, host, hosts = sys.argv[1:6]
    seed = None if seed == "none" else int(seed)
    objs = objects(root)
    h = hashlib.sha256(); total = 0
    for i in host_items(len(objs), seed, int(epoch), int(host), int(hosts)):
        data = open(objs[i][1], "rb").read()
        h.update(data); total += len(data)
    print(f"bytes {total} sha256 {h.hexdigest()}")
PY

# A Python reader: polls for <dir>/<channel>_<N>, reads it to EOF, prints what the C++ one does.
cat >"$WORK/py_reader.py" <<'PY'
import hashlib, os, sys, time
d, ch, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
save = sys.argv[4] if len(sys.argv) > 4 else None
for e in range(epochs):
    path = f"{d}/{ch}_{e}"
    deadline = time.time() + 120
    while not os.path.exists(path):
        if time.time() > deadline: sys.exit(f"{path} never appeared")
        time.sleep(0.001)
    h = hashlib.sha256(); total = 0
    out = open(f"{save}{e}", "wb") if save else None
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(1 << 20)
            if not b: break
            h.update(b); total += len(b)
            if out: out.write(b)
    if out: out.close()
    print(f"epoch {e} bytes {total} sha256 {h.hexdigest()}", flush=True)
PY

expected() {  # expected ROOT SEED EPOCH HOST HOSTS -> "epoch E bytes B sha256 H"
  echo "epoch $3 $("$PY" "$WORK/model.py" "$@")"
}
no_fifos() { [[ -z $(find "$1" -maxdepth 1 -type p 2>/dev/null) ]]; }

note "test data: objects of many sizes (one in several ranged parts, one empty)"
data=$WORK/data
"$PY" - "$data" <<'PY'
import os, random, struct, sys
root = sys.argv[1]
rng = random.Random(7)
os.makedirs(os.path.join(root, "sub"), exist_ok=True)
for i in range(24):
    size = [0, 1, 3, 4096, 65537][i] if i < 5 else rng.randint(1, 400_000)
    name = f"obj-{i:03d}.bin" if i % 4 else f"sub/obj-{i:03d}.bin"
    with open(os.path.join(root, name), "wb") as f:
        f.write(rng.randbytes(size))
# 20 MiB: three 8 MiB ranged GETs.
with open(os.path.join(root, "big.bin"), "wb") as f:
    f.write(rng.randbytes(20 << 20))
# The RecordIO magic at 4-byte-aligned offsets: the record must be split (contract §9.2).
magic = struct.pack("<I", 0xCED7230A)
with open(os.path.join(root, "magic.bin"), "wb") as f:
    f.write(b"ABCD" + magic + b"EFGH" + magic + magic + b"xy")
PY
bucket=$(new_bucket pipe)
"$TF" -q upload "$data" "s3://$bucket/data/" || fail "upload"

note "listing order, 2 epochs, C++ reader"
out=$WORK/p1
"$TF" pipe "s3://$bucket/data/" "$out" --channel train --epochs 2 2>"$WORK/p1.log" &
tfpid=$!
"$READER" "$out" train 2 >"$WORK/p1.cpp" || fail "C++ reader"
wait "$tfpid" || { cat "$WORK/p1.log"; fail "trainfeed pipe exited non-zero"; }
{ expected "$data" none 0 0 1; expected "$data" none 1 0 1; } >"$WORK/p1.want"
diff "$WORK/p1.want" "$WORK/p1.cpp" || fail "epochs differ from the objects in listing order"
no_fifos "$out" || fail "FIFOs left behind: $(ls "$out")"
grep -q "epoch 1: 26 objects" "$WORK/p1.log" || { cat "$WORK/p1.log"; fail "no per-epoch report"; }
grep -q "first byte .* after open" "$WORK/p1.log" || fail "report lacks the first-byte time"
grep -Eq "input waited on training|training was starved of input" "$WORK/p1.log" || fail "no verdict"

note "same with a Python reader"
"$TF" -q pipe "s3://$bucket/data/" "$out" --channel train --epochs 2 2>"$WORK/p2.log" &
tfpid=$!
"$PY" "$WORK/py_reader.py" "$out" train 2 >"$WORK/p2.py" || fail "Python reader"
wait "$tfpid" || { cat "$WORK/p2.log"; fail "trainfeed pipe (Python reader)"; }
diff "$WORK/p1.want" "$WORK/p2.py" || fail "the Python reader got other bytes"

note "seeded shuffle: the documented permutation per epoch, identical across runs"
for run in 1 2; do
  "$TF" -q pipe "s3://$bucket/data/" "$out" --channel train --epochs 3 --shuffle-seed 1234 \
    --concurrency 7 --buffer-size 9MiB 2>"$WORK/s$run.log" &
  tfpid=$!
  "$READER" "$out" train 3 >"$WORK/s$run.got" || fail "reader, run $run"
  wait "$tfpid" || { cat "$WORK/s$run.log"; fail "shuffled run $run"; }
done
{ for e in 0 1 2; do expected "$data" 1234 "$e" 0 1; done; } >"$WORK/s.want"
diff "$WORK/s.want" "$WORK/s1.got" || fail "shuffled epochs differ from the documented permutation"
diff "$WORK/s1.got" "$WORK/s2.got" || fail "two runs with the same seed differ"
[[ $(sed -n 1p "$WORK/s1.got" | cut -d' ' -f6) != $(sed -n 2p "$WORK/s1.got" | cut -d' ' -f6) ]] ||
  fail "epochs 0 and 1 came in the same order"

note "3 hosts x 2 epochs, ShardedByS3Key + seed: each host its share, every item once per epoch"
for h in 1 2 3; do
  "$TF" -q pipe "s3://$bucket/data/" "$WORK/h$h" --channel train --epochs 2 --shuffle-seed 99 \
    --distribution ShardedByS3Key --hosts algo-1,algo-2,algo-3 --current-host "algo-$h" \
    2>"$WORK/h$h.log" &
  PIDS+=($!)
  "$READER" "$WORK/h$h" train 2 --save "$WORK/h$h.epoch" >"$WORK/h$h.got" &
  PIDS+=($!)
done
for p in "${PIDS[@]}"; do wait "$p" || fail "a sharded pipe or its reader failed: $(cat "$WORK"/h*.log)"; done
PIDS=()
for h in 1 2 3; do
  { expected "$data" 99 0 $((h - 1)) 3; expected "$data" 99 1 $((h - 1)) 3; } >"$WORK/h$h.want"
  diff "$WORK/h$h.want" "$WORK/h$h.got" || fail "host algo-$h got other bytes than its shard"
done
"$PY" - "$WORK" "$data" <<'PY' || fail "shards do not cover every item exactly once"
import sys
sys.path.insert(0, sys.argv[1])
from model import objects, host_items
objs = objects(sys.argv[2])
for e in range(2):
    seen = sorted(i for h in range(3) for i in host_items(len(objs), 99, e, h, 3))
    assert seen == list(range(len(objs))), (e, seen)
    total = sum(len(open(f"{sys.argv[1]}/h{h}.epoch{e}", "rb").read()) for h in (1, 2, 3))
    assert total == sum(len(open(p, "rb").read()) for _, p in objs), (e, total)
PY

note "RecordIO: one record per object, checked by an independent reader"
"$TF" -q pipe "s3://$bucket/data/" "$out" --channel rec --epochs 1 --record-wrapper RecordIO \
  2>"$WORK/r.log" &
tfpid=$!
"$READER" "$out" rec 1 --save "$WORK/rec.epoch" >/dev/null || fail "RecordIO reader"
wait "$tfpid" || { cat "$WORK/r.log"; fail "RecordIO pipe"; }
"$PY" "$here/recordio_reader.py" "$WORK/rec.epoch0" >"$WORK/rec.got" || fail "bad RecordIO framing"
"$PY" - "$WORK" "$data" >"$WORK/rec.want" <<'PY'
import hashlib, sys
sys.path.insert(0, sys.argv[1])
from model import objects
for i, (_, p) in enumerate(objects(sys.argv[2])):
    b = open(p, "rb").read()
    print(i, len(b), hashlib.sha256(b).hexdigest())
PY
diff "$WORK/rec.want" "$WORK/rec.got" || fail "RecordIO records differ from the objects"
# magic.bin's first part: magic, lrec = cflag 1 | length 4, "ABCD" (contract §9.2).
od -An -v -tx1 "$WORK/rec.epoch0" | tr -d ' \n' | grep -q "0a23d7ce0400002041424344" ||
  fail "the object with an aligned magic was not split into parts"

note "Gzip: objects arrive inflated (and then wrapped)"
gz=$WORK/gz
mkdir -p "$gz"
for f in obj-001.bin obj-005.bin big.bin magic.bin; do gzip -c "$data/$f" >"$gz/$f.gz"; done
"$TF" -q upload "$gz" "s3://$bucket/gz/" || fail "upload gz"
"$TF" -q pipe "s3://$bucket/gz/" "$out" --channel gz --epochs 1 --compression Gzip 2>"$WORK/g.log" &
tfpid=$!
"$PY" "$WORK/py_reader.py" "$out" gz 1 "$WORK/gz.epoch" >/dev/null || fail "gzip reader"
wait "$tfpid" || { cat "$WORK/g.log"; fail "gzip pipe"; }
cat "$data/big.bin" "$data/magic.bin" "$data/obj-001.bin" "$data/obj-005.bin" | cmp - "$WORK/gz.epoch0" ||
  fail "gzip objects did not arrive inflated, in order"
"$TF" -q pipe "s3://$bucket/gz/" "$out" --channel gz --epochs 1 --compression Gzip \
  --record-wrapper RecordIO 2>"$WORK/g2.log" &
tfpid=$!
"$READER" "$out" gz 1 --save "$WORK/gzr.epoch" >/dev/null || fail "gzip+RecordIO reader"
wait "$tfpid" || { cat "$WORK/g2.log"; fail "gzip+RecordIO pipe"; }
"$PY" "$here/recordio_reader.py" "$WORK/gzr.epoch0" | cut -d' ' -f3 >"$WORK/gzr.got" || fail "gzip+RecordIO framing"
for f in big.bin magic.bin obj-001.bin obj-005.bin; do sha256sum "$data/$f" | cut -d' ' -f1; done >"$WORK/gzr.want"
diff "$WORK/gzr.want" "$WORK/gzr.got" || fail "gzip+RecordIO records differ"

note "augmented manifest: -ref objects (another bucket) and values, one record each, line order"
imgs=$(new_bucket pipe-img)
"$TF" -q upload "$data/sub" "s3://$imgs/img/" || fail "upload images"
"$PY" - "$data/sub" "$imgs" >"$WORK/aug.jsonl" <<'PY'
import json, os, sys
for i, f in enumerate(sorted(os.listdir(sys.argv[1]))):
    print(json.dumps({"meta": {"i": i}, "source-ref": f"s3://{sys.argv[2]}/img/{f}",
                      "class": i * 10, "name": f"n{i}"}))
    if i == 1: print()
PY
aws_s3 s3 cp --quiet "$WORK/aug.jsonl" "s3://$bucket/manifests/aug.jsonl" || fail "upload manifest"
"$TF" -q pipe "s3://$bucket/manifests/aug.jsonl" "$out" --channel aug --epochs 1 \
  --data-type AugmentedManifestFile --attribute-names source-ref,class --record-wrapper RecordIO \
  2>"$WORK/a.log" &
tfpid=$!
"$READER" "$out" aug 1 --save "$WORK/aug.epoch" >/dev/null || fail "augmented reader"
wait "$tfpid" || { cat "$WORK/a.log"; fail "augmented manifest pipe"; }
"$PY" "$here/recordio_reader.py" "$WORK/aug.epoch0" | cut -d' ' -f3 >"$WORK/aug.got" || fail "augmented framing"
"$PY" - "$data/sub" >"$WORK/aug.want" <<'PY'
import hashlib, os, sys
for i, f in enumerate(sorted(os.listdir(sys.argv[1]))):
    print(hashlib.sha256(open(os.path.join(sys.argv[1], f), "rb").read()).hexdigest())
    print(hashlib.sha256(str(i * 10).encode()).hexdigest())
PY
diff "$WORK/aug.want" "$WORK/aug.got" || fail "augmented records differ"

note "a reader that closes epoch 0 early, then reads epoch 1 whole"
"$TF" pipe "s3://$bucket/data/" "$out" --channel early --epochs 2 2>"$WORK/e.log" &
tfpid=$!
"$READER" "$out" early 2 --close-after 100000 --close-epoch 0 >"$WORK/e.got" || fail "early reader"
wait "$tfpid" || { cat "$WORK/e.log"; fail "pipe with an early close"; }
grep -q "^epoch 0 bytes 100000 " "$WORK/e.got" || fail "epoch 0 should have stopped at 100000 bytes"
[[ $(sed -n 2p "$WORK/e.got") == "$(expected "$data" none 1 0 1)" ]] || fail "epoch 1 after an early close"
grep -q "closed it early" "$WORK/e.log" || { cat "$WORK/e.log"; fail "early close not reported"; }

note "two channels streamed and read at once"
"$TF" -q pipe "s3://$bucket/data/" "$out" --channel one --epochs 2 2>"$WORK/c1.log" &
t1=$!
"$TF" -q pipe "s3://$bucket/data/" "$out" --channel two --epochs 2 --shuffle-seed 5 2>"$WORK/c2.log" &
t2=$!
"$READER" "$out" one 2 >"$WORK/c1.got" &
r1=$!
"$PY" "$WORK/py_reader.py" "$out" two 2 >"$WORK/c2.got" &
r2=$!
for p in $t1 $t2 $r1 $r2; do wait "$p" || fail "concurrent channels: $(cat "$WORK"/c?.log)"; done
diff "$WORK/p1.want" "$WORK/c1.got" || fail "channel one"
{ expected "$data" 5 0 0 1; expected "$data" 5 1 0 1; } | diff - "$WORK/c2.got" || fail "channel two"
no_fifos "$out" || fail "FIFOs left after the concurrent channels"

note "2,500 objects, unshuffled: the listing streams in page by page while 2 sharded hosts read"
many=$WORK/many
"$PY" - "$many" <<'PY'
import os, sys
root = sys.argv[1]
for i in range(2500):
    d = os.path.join(root, f"d{i % 7}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"o{i:05d}"), "w") as f:
        f.write(f"object {i}\n" * (1 + i % 5))
PY
"$TF" -q upload "$many" "s3://$bucket/many/" || fail "upload 2,500 objects"
for h in 1 2; do
  "$TF" pipe "s3://$bucket/many/" "$WORK/m$h" --channel train --epochs 2 \
    --distribution ShardedByS3Key --hosts algo-1,algo-2 --current-host "algo-$h" \
    2>"$WORK/m$h.log" &
  PIDS+=($!)
  "$PY" "$WORK/py_reader.py" "$WORK/m$h" train 2 >"$WORK/m$h.got" &
  PIDS+=($!)
done
for p in "${PIDS[@]}"; do wait "$p" || fail "a streamed-listing pipe or its reader failed: $(cat "$WORK"/m*.log)"; done
PIDS=()
for h in 1 2; do
  { expected "$many" none 0 $((h - 1)) 2; expected "$many" none 1 $((h - 1)) 2; } >"$WORK/m$h.want"
  diff "$WORK/m$h.want" "$WORK/m$h.got" || fail "host algo-$h: not its shard of the listing, in order"
  grep -q "listing; the first" "$WORK/m$h.log" ||
    { cat "$WORK/m$h.log"; fail "the listing did not stream: the first FIFO waited for all pages"; }
  grep -q "epoch 1: 1250 objects" "$WORK/m$h.log" || { cat "$WORK/m$h.log"; fail "host algo-$h: want 1250 objects"; }
done

note "a manifest of 300 entries: its HEADs stream in behind the first 32, in manifest order"
"$PY" - "$bucket" "$many" "$WORK/m300" <<'PY'
import hashlib, json, sys
bucket, root, out = sys.argv[1:4]
keys = [f"d{i % 7}/o{i:05d}" for i in range(299, -1, -1)]  # reversed: not listing order
json.dump([{"prefix": f"s3://{bucket}/many/"}] + keys, open(out + ".json", "w"))
h = hashlib.sha256(); n = 0
for k in keys:
    b = open(f"{root}/{k}", "rb").read(); h.update(b); n += len(b)
open(out + ".want", "w").write(f"epoch 0 bytes {n} sha256 {h.hexdigest()}\n")
keys.insert(200, "d0/missing")
json.dump([{"prefix": f"s3://{bucket}/many/"}] + keys, open(out + "-bad.json", "w"))
PY
aws_s3 s3 cp --quiet "$WORK/m300.json" "s3://$bucket/manifests/m300.json" || fail "upload manifest"
aws_s3 s3 cp --quiet "$WORK/m300-bad.json" "s3://$bucket/manifests/m300-bad.json" || fail "upload manifest"
"$TF" pipe "s3://$bucket/manifests/m300.json" "$WORK/mf" --channel mf --epochs 1 \
  --data-type ManifestFile 2>"$WORK/mf.log" &
tfpid=$!
"$PY" "$WORK/py_reader.py" "$WORK/mf" mf 1 >"$WORK/mf.got" || fail "manifest reader"
wait "$tfpid" || { cat "$WORK/mf.log"; fail "manifest pipe"; }
diff "$WORK/m300.want" "$WORK/mf.got" || fail "the manifest's objects did not arrive in manifest order"
grep -q "listing; the first 32 items" "$WORK/mf.log" ||
  { cat "$WORK/mf.log"; fail "the first FIFO waited for every HEAD"; }
# Nobody reads: the missing entry (past the first 32) must still fail the channel, at once.
rc=0
timeout 60 "$TF" pipe "s3://$bucket/manifests/m300-bad.json" "$WORK/mfbad" --channel mf \
  --data-type ManifestFile 2>"$WORK/mfbad.log" || rc=$?
[[ $rc -ne 0 && $rc -ne 124 ]] || { cat "$WORK/mfbad.log"; fail "missing manifest entry: exit $rc, want a failure (124: it waited for a reader)"; }
grep -q "d0/missing" "$WORK/mfbad.log" || { cat "$WORK/mfbad.log"; fail "the error should name the key"; }
[[ $(grep -c . "$WORK/mfbad.log") -le 2 ]] || { cat "$WORK/mfbad.log"; fail "want the start line and one error line"; }
no_fifos "$WORK/mfbad" || fail "FIFO left after a missing manifest entry"

note "resume: a reader takes 300,000 bytes, the pipe is stopped; --resume continues at that byte"
st=$WORK/resume.state
"$TF" -q pipe "s3://$bucket/data/" "$WORK/r" --channel r --epochs 2 --shuffle-seed 8 \
  --state-file "$st" 2>"$WORK/r1.log" &
tfpid=$!
# Takes exactly N bytes, then holds the FIFO open without reading, like a job about to be killed.
"$PY" - "$WORK/r/r_0" 300000 "$WORK/r.part1" <<'PY' &
import os, sys, time
path, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
while not os.path.exists(path): time.sleep(0.001)
fd = os.open(path, os.O_RDONLY); got = b""
while len(got) < n:
    b = os.read(fd, n - len(got))
    if not b: break
    got += b
open(out, "wb").write(got); open(out + ".done", "w").close()
time.sleep(600)
PY
rpid=$!
for _ in $(seq 600); do [[ -e $WORK/r.part1.done ]] && break; sleep 0.05; done
[[ -e $WORK/r.part1.done ]] || fail "the first reader never got 300,000 bytes"
kill -TERM "$tfpid"
wait "$tfpid" || { cat "$WORK/r1.log"; fail "the stopped pipe should exit 0"; }
kill "$rpid" 2>/dev/null; wait "$rpid" 2>/dev/null || true
token=$(head -1 "$st")
[[ $token =~ ^e0\.p[0-9]+\.b[0-9]+\.[0-9a-f]{8}$ ]] || fail "state file holds '$token', want an epoch-0 token"
"$TF" -q pipe "s3://$bucket/data/" "$WORK/r" --channel r --epochs 2 --shuffle-seed 8 \
  --state-file "$st" --resume "$token" 2>"$WORK/r2.log" &
tfpid=$!
"$PY" "$WORK/py_reader.py" "$WORK/r" r 2 "$WORK/r.rest" >/dev/null || fail "resumed reader"
wait "$tfpid" || { cat "$WORK/r2.log"; fail "resumed pipe"; }
{ expected "$data" 8 0 0 1; expected "$data" 8 1 0 1; } >"$WORK/r.want"
{ echo "epoch 0 $(cat "$WORK/r.part1" "$WORK/r.rest0" | "$PY" -c 'import hashlib,sys; b=sys.stdin.buffer.read(); print(f"bytes {len(b)} sha256 {hashlib.sha256(b).hexdigest()}")')"
  echo "epoch 1 $("$PY" -c 'import hashlib,sys; b=open(sys.argv[1],"rb").read(); print(f"bytes {len(b)} sha256 {hashlib.sha256(b).hexdigest()}")' "$WORK/r.rest1")"
} >"$WORK/r.got"
diff "$WORK/r.want" "$WORK/r.got" || fail "300,000 bytes + the resumed stream differ from the epochs"
# A token whose item no longer matches (another check) is refused: the data changed.
expect_fail "stale token" "$TF" pipe "s3://$bucket/data/" "$WORK/r" --channel r --shuffle-seed 8 \
  --resume "${token%.*}.00000001" 2>"$WORK/r3.log"
grep -q "data changed" "$WORK/r3.log" || { cat "$WORK/r3.log"; fail "stale token: say the data changed"; }
no_fifos "$WORK/r" || fail "FIFOs left after resuming"

note "unlimited epochs stop cleanly on SIGTERM, FIFOs removed"
"$TF" -q pipe "s3://$bucket/data/" "$out" --channel forever 2>"$WORK/f.log" &
tfpid=$!
"$READER" "$out" forever 3 >/dev/null || fail "reader of an unlimited channel"
for _ in $(seq 100); do [[ -p $out/forever_3 ]] && break; sleep 0.05; done
[[ -p $out/forever_3 ]] || fail "forever_3 was not offered"
kill -TERM "$tfpid"
wait "$tfpid" || fail "SIGTERM should stop the pipe cleanly (exit 0)"
no_fifos "$out" || fail "FIFOs left after SIGTERM: $(ls "$out")"

note "bad input: one line, non-zero exit, no FIFO left"
bad=$WORK/bad
expect_fail "missing bucket" "$TF" pipe "s3://no-such-bucket-$RANDOM/x/" "$bad" --channel c 2>"$WORK/bad1.log"
[[ $(wc -l <"$WORK/bad1.log") -eq 1 ]] || { cat "$WORK/bad1.log"; fail "missing bucket: want one line"; }
grep -q "no-such-bucket" "$WORK/bad1.log" || fail "missing bucket: the message should name it"
no_fifos "$bad" || fail "FIFO left after a missing bucket"
expect_fail "empty prefix" "$TF" pipe "s3://$bucket/nothing-here/" "$bad" --channel c 2>"$WORK/bad2.log"
grep -q "no objects" "$WORK/bad2.log" || { cat "$WORK/bad2.log"; fail "empty prefix message"; }
printf '[{"prefix": "s3://%s/data/"}, "obj-001.bin", "no-such-key.bin"]' "$bucket" >"$WORK/m.json"
aws_s3 s3 cp --quiet "$WORK/m.json" "s3://$bucket/manifests/m.json" || fail "upload manifest"
expect_fail "bad key" "$TF" pipe "s3://$bucket/manifests/m.json" "$bad" --channel c \
  --data-type ManifestFile 2>"$WORK/bad3.log"
[[ $(wc -l <"$WORK/bad3.log") -eq 1 ]] || { cat "$WORK/bad3.log"; fail "bad key: want one line"; }
grep -q "no-such-key.bin" "$WORK/bad3.log" || fail "bad key: the message should name the key"
no_fifos "$bad" || fail "FIFO left after a bad key"
# Corrupt gzip fails mid-stream: the reader gets what came before, the pipe names the object.
mkdir -p "$WORK/badgz"
gzip -c "$data/obj-005.bin" >"$WORK/badgz/a.gz"
gzip -c "$data/big.bin" >"$WORK/big.gz"
head -c 100000 "$WORK/big.gz" >"$WORK/badgz/b.gz"
"$TF" -q upload "$WORK/badgz" "s3://$bucket/badgz/" || fail "upload bad gzip"
"$TF" -q pipe "s3://$bucket/badgz/" "$bad" --channel c --compression Gzip 2>"$WORK/bad4.log" &
tfpid=$!
"$READER" "$bad" c 1 >/dev/null || fail "reader of the corrupt channel"
if wait "$tfpid"; then fail "corrupt gzip: expected a non-zero exit"; fi
[[ $(wc -l <"$WORK/bad4.log") -eq 1 ]] || { cat "$WORK/bad4.log"; fail "corrupt gzip: want one line"; }
grep -q "b.gz" "$WORK/bad4.log" || { cat "$WORK/bad4.log"; fail "corrupt gzip: name the object"; }
no_fifos "$bad" || fail "FIFO left after corrupt gzip: $(ls "$bad")"
echo "pipe_test: OK"
