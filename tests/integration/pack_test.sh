#!/usr/bin/env bash
# trainfeed pack: 20,000 small objects into 8 MiB shards. The index locates every member (ranged
# GETs, and offsets into the downloaded shards), `tar -x` of the shards gives back the source tree,
# --verify passes and then catches a damaged shard, a kill -9 mid-run resumes without losing or
# duplicating a member, and the RecordIO format reads back one record per object.
source "$(dirname "$0")/lib.sh"

src=$WORK/src
note "20,000 objects: varied sizes, nested folders, samples sharing a basename"
"$PY" - "$src" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(7)
n = 0
for i in range(19600):
    d = os.path.join(root, f"class{i % 5}", f"part{i % 7}") if i % 4 else os.path.join(root, "flat")
    os.makedirs(d, exist_ok=True)
    size = 0 if i % 1999 == 0 else rng.randint(1, 4000)
    if i in (100, 5000, 12000):
        size = 1536 * 1024  # larger than the 1 MiB read-ahead limit: streamed into the shard
    with open(os.path.join(d, f"sample-{i:05d}.bin"), "wb") as f:
        f.write(rng.randbytes(size))
    n += 1
    if i % 49 == 0:  # 400 samples with a second file of the same basename (WebDataset style)
        with open(os.path.join(d, f"sample-{i:05d}.json"), "w") as f:
            f.write('{"label": %d}' % (i % 10))
        n += 1
assert n == 20000, n
PY
bucket=$(new_bucket pack)
"$TF" upload --concurrency 32 "$src" "s3://$bucket/src/" || fail "upload"

note "pack into 8 MiB tar shards"
"$TF" pack "s3://$bucket/src/" "s3://$bucket/packed/" --shard-size 8MiB --concurrency 64 \
  2>"$WORK/pack.log" ||
  { cat "$WORK/pack.log"; fail "pack"; }
cat "$WORK/pack.log"
grep -q "pack: 20000 members" "$WORK/pack.log" || fail "summary should count 20000 members"
"$TF" -q download "s3://$bucket/packed/" "$WORK/packed" || fail "download the shards"
shards=$(ls "$WORK/packed" | grep -c '^shard-[0-9]*\.tar$' || true)
((shards >= 5)) || fail "expected several 8 MiB shards, got $shards"
[[ $(ls "$WORK/packed" | grep -c '\.idx\.json$') = "$shards" ]] || fail "one index per shard"
[[ -f $WORK/packed/index.json ]] || fail "no manifest"
[[ $(ls "$WORK/packed" | grep -c '\.upload$' || true) = 0 ]] || fail "upload markers left behind"

note "the index: every member once, its bytes at offset/length, shards within the size"
"$PY" - "$WORK/packed" "$src" <<'PY' || fail "index check"
import json, os, sys
packed, src = sys.argv[1], sys.argv[2]
manifest = json.load(open(os.path.join(packed, "index.json")))
assert manifest["format"] == "tar" and manifest["members"] == 20000, manifest["members"]
seen = {}
for s in manifest["shards"]:
    idx = json.load(open(os.path.join(packed, s["index"])))
    assert idx["plan_fingerprint"] == manifest["plan_fingerprint"]
    shard = open(os.path.join(packed, s["name"]), "rb").read()
    assert len(shard) == s["bytes"] == idx["shard_bytes"], s["name"]
    big = any(m["size"] > 8 * 1024 * 1024 for m in idx["members"])
    assert len(shard) <= 8 * 1024 * 1024 or big, (s["name"], len(shard))
    stems = [m["name"].rsplit(".", 1)[0] for m in idx["members"]]
    for m in idx["members"]:
        assert m["key"] not in seen, ("twice", m["key"])
        seen[m["key"]] = s["name"]
        data = open(os.path.join(src, m["name"]), "rb").read()
        assert m["key"] == "src/" + m["name"] and m["size"] == len(data) == m["length"]
        assert shard[m["offset"]:m["offset"] + m["length"]] == data, m["key"]
    # A sample's files are adjacent in the shard.
    for i, m in enumerate(idx["members"]):
        if m["name"].endswith(".json"):
            assert stems[i - 1] == stems[i], m["name"]
files = sum(len(f) for _, _, f in os.walk(src))
assert len(seen) == files == 20000, (len(seen), files)
print(f"{len(seen)} members in {len(manifest['shards'])} shards checked against the source")
PY

note "ranged GETs of offset/length read single members"
"$PY" - "$WORK/packed" <<'PY' >"$WORK/ranges.txt" || fail "pick members"
import json, os, sys
packed = sys.argv[1]
manifest = json.load(open(os.path.join(packed, "index.json")))
picked = 0
for s in manifest["shards"]:
    idx = json.load(open(os.path.join(packed, s["index"])))
    for m in idx["members"][::997]:
        if m["length"] > 0 and picked < 6:
            print(s["name"], m["offset"], m["offset"] + m["length"] - 1, m["name"])
            picked += 1
PY
while read -r shard first last name; do
  aws_s3 s3api get-object --bucket "$bucket" --key "packed/$shard" --range "bytes=$first-$last" \
    "$WORK/range.out" >/dev/null || fail "ranged GET of $shard"
  cmp "$WORK/range.out" "$src/$name" || fail "ranged GET $first-$last of $shard is not $name"
done <"$WORK/ranges.txt"
[[ $(wc -l <"$WORK/ranges.txt") -ge 5 ]] || fail "too few ranged GETs"

note "tar -x of the shards gives back the source tree"
mkdir -p "$WORK/untar"
for f in "$WORK"/packed/shard-*.tar; do tar -xf "$f" -C "$WORK/untar" || fail "tar -x $f"; done
diff <(tree_sums "$src") <(tree_sums "$WORK/untar") || fail "untarred tree differs from the source"

note "--verify passes"
"$TF" pack --verify --concurrency 64 "s3://$bucket/src/" "s3://$bucket/packed/" 2>"$WORK/verify.log" ||
  { cat "$WORK/verify.log"; fail "verify of a good pack"; }
cat "$WORK/verify.log"
grep -q "20000 members" "$WORK/verify.log" && grep -q ": OK" "$WORK/verify.log" || fail "verify summary"

note "kill -9 mid-run, then resume: every member exactly once"
# Through a proxy at 1.5 MB/s per connection, so a 5 MiB part takes seconds to go up and the kill
# lands while a multipart upload is open.
start_proxy --bandwidth 1500000
"$TF" -q --endpoint-url "$PROXY_URL" pack "s3://$bucket/src/" "s3://$bucket/resume/" \
  --shard-size 8MiB --part-size 5MiB --concurrency 16 2>"$WORK/killed.log" &
pid=$!
killed=""
for _ in $(seq 600); do
  # Frozen while we look, so what the listing shows is what the kill leaves.
  kill -STOP $pid 2>/dev/null || break
  listing=$("$TF" -q ls -r "s3://$bucket/resume/" 2>/dev/null || true)
  # At least one shard done and another one's multipart upload under way.
  if grep -q '\.idx\.json$' <<<"$listing" && grep -q '\.upload$' <<<"$listing"; then
    kill -9 $pid; killed=yes; break
  fi
  kill -CONT $pid 2>/dev/null || break
  sleep 0.1
done
wait $pid 2>/dev/null || true
[[ $killed = yes ]] || { cat "$WORK/killed.log"; fail "the pack ended before it could be killed mid-way"; }
listing=$("$TF" -q ls -r "s3://$bucket/resume/")
if grep -q '/index\.json$' <<<"$listing"; then fail "manifest written by a killed run"; fi
done_before=$(grep -c '\.idx\.json$' <<<"$listing")
open_uploads=$(grep -c '\.upload$' <<<"$listing" || true)
echo "shards indexed before the kill: $done_before; multipart uploads left open: $open_uploads"
((open_uploads >= 1)) || fail "the kill should leave an open multipart upload"
"$TF" pack "s3://$bucket/src/" "s3://$bucket/resume/" --shard-size 8MiB --part-size 5MiB \
  --concurrency 64 2>"$WORK/resumed.log" || { cat "$WORK/resumed.log"; fail "resume"; }
cat "$WORK/resumed.log"
grep -q "$done_before kept" "$WORK/resumed.log" || fail "the rerun should keep the $done_before finished shards"
# Each marker names an upload the rerun aborts, unless that upload's completion was already on
# the wire when the process froze (then there is nothing left to abort). Either way none may
# remain open on the server (checked next).
aborted=$(sed -n 's/.*, \([0-9]*\) unfinished uploads aborted.*/\1/p' "$WORK/resumed.log")
echo "uploads aborted by the rerun: ${aborted:-0} of $open_uploads"
(( ${aborted:-0} <= open_uploads )) || fail "the rerun aborted more uploads than were left open"
pending=$(aws_s3 s3api list-multipart-uploads --bucket "$bucket" --prefix resume/ --query 'length(Uploads || `[]`)')
[[ $pending = 0 ]] || fail "$pending multipart uploads left"
"$TF" -q download "s3://$bucket/resume/" "$WORK/resume" || fail "download resumed pack"
"$PY" - "$WORK/resume" "$WORK/packed" <<'PY' || fail "resumed pack"
import json, os, sys
d, first = sys.argv[1], sys.argv[2]
manifest = json.load(open(os.path.join(d, "index.json")))
keys = [m["key"] for s in manifest["shards"] for m in json.load(open(os.path.join(d, s["index"])))["members"]]
assert len(keys) == len(set(keys)) == 20000, (len(keys), len(set(keys)))
names = sorted(f for f in os.listdir(d) if f.endswith(".tar"))
assert names == [s["name"] for s in manifest["shards"]], "shards beyond the manifest"
assert not [f for f in os.listdir(d) if f.endswith(".upload")], "upload markers left"
# Same plan as the first pack: byte-identical shards.
for n in names:
    assert open(os.path.join(d, n), "rb").read() == open(os.path.join(first, n), "rb").read(), n
print(f"{len(keys)} members once each in {len(names)} shards")
PY

note "a changed source is refused unless --force"
echo changed >"$WORK/changed.bin"
aws_s3 s3 cp --quiet "$WORK/changed.bin" "s3://$bucket/src/flat/sample-00000.bin" || fail "change"
if "$TF" pack "s3://$bucket/src/" "s3://$bucket/resume/" --shard-size 8MiB 2>"$WORK/stale.log"; then
  fail "pack over a changed source should be refused"
fi
cat "$WORK/stale.log"
grep -q "another plan.*--force" "$WORK/stale.log" || fail "stale-plan message"

note "RecordIO: one record per object, named by its header (the flat/ folder)"
"$TF" -q pack --format recordio --concurrency 64 "s3://$bucket/src/flat/" "s3://$bucket/rec/" \
  --shard-size 2MiB || fail "recordio pack"
"$TF" -q download "s3://$bucket/rec/" "$WORK/rec" || fail "download recordio"
cp "$WORK/changed.bin" "$src/flat/sample-00000.bin"
"$PY" - "$WORK/rec" "$src/flat" "$(dirname "$0")" <<'PY' || fail "recordio check"
import json, os, struct, sys
d, src = sys.argv[1], sys.argv[2]
sys.path.insert(0, sys.argv[3])
from recordio_reader import read_records
manifest = json.load(open(os.path.join(d, "index.json")))
assert manifest["format"] == "recordio" and len(manifest["shards"]) > 1
names = set()
for s in manifest["shards"]:
    assert s["name"].endswith(".rec")
    with open(os.path.join(d, s["name"]), "rb") as f:
        for payload in read_records(f):
            (n,) = struct.unpack_from("<I", payload)
            name = payload[4:4 + n].decode()
            assert payload[4 + n:] == open(os.path.join(src, name), "rb").read(), name
            assert name not in names, name
            names.add(name)
files = os.listdir(src)
assert names == set(files) and len(names) == manifest["members"], (len(names), len(files))
print(f"{len(names)} records in {len(manifest['shards'])} shards")
PY

note "--verify of the RecordIO pack passes, then catches a damaged shard"
"$TF" pack --verify --concurrency 64 "s3://$bucket/src/flat/" "s3://$bucket/rec/" 2>"$WORK/verify-rec.log" ||
  { cat "$WORK/verify-rec.log"; fail "verify of a good RecordIO pack"; }
cat "$WORK/verify-rec.log"
cp "$WORK/rec/shard-000001.rec" "$WORK/damaged.rec"
"$PY" - "$WORK/damaged.rec" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(100000)
    b = bytearray(f.read(64))
    f.seek(100000)
    f.write(bytes(x ^ 0xFF for x in b))
PY
aws_s3 s3 cp --quiet "$WORK/damaged.rec" "s3://$bucket/rec/shard-000001.rec" || fail "overwrite"
if "$TF" pack --verify --concurrency 64 "s3://$bucket/src/flat/" "s3://$bucket/rec/" \
  2>"$WORK/verify-bad.log"; then
  cat "$WORK/verify-bad.log"; fail "verify passed a damaged shard"
fi
cat "$WORK/verify-bad.log"
grep -q "error: shard-000001.rec: 'src/flat/.*the index says" "$WORK/verify-bad.log" ||
  fail "verify should name the damaged member"
grep -q "error: shard-000001.rec: ETag .* replaced after packing" "$WORK/verify-bad.log" ||
  fail "verify should see the shard was replaced"

note "bad input: one clear line"
expect_fail "bad format" "$TF" pack --format zip "s3://$bucket/src/" "s3://$bucket/x/"
"$TF" pack "s3://$bucket/src/" "s3://$bucket/src/packed/" 2>"$WORK/inside.log" && fail "destination inside the source"
grep -q "inside the source" "$WORK/inside.log" || fail "inside message: $(cat "$WORK/inside.log")"
"$TF" pack "s3://$bucket/nothing-here/" "s3://$bucket/y/" 2>"$WORK/empty.log" && fail "empty source"
[[ $(wc -l <"$WORK/empty.log") -le 2 ]] || fail "empty source: $(cat "$WORK/empty.log")"
echo "PASS"
