#!/usr/bin/env bash
# trainfeed advise on three contrasting datasets gives three different recommendations; --probe
# measures positive rates against the real server; bad input fails with one clear line.
source "$(dirname "$0")/lib.sh"

bucket=$(new_bucket advise)

note "datasets: small files that fit, large files that do not, many small files that do not"
make_small_files "$WORK/fits" 200 16384
mkdir -p "$WORK/large" "$WORK/many"
head -c 51M /dev/urandom >"$WORK/large/a.bin"
head -c 52M /dev/urandom >"$WORK/large/b.bin"
make_small_files "$WORK/many" 400 8192
"$TF" -q upload "$WORK/fits" "s3://$bucket/fits/" || fail "upload fits"
"$TF" -q upload "$WORK/large" "s3://$bucket/large/" || fail "upload large"
"$TF" -q upload "$WORK/many" "s3://$bucket/many/" || fail "upload many"

# json_get FILE EXPR: evaluates a Python expression on the parsed document `d`.
json_get() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

advise_json() {  # advise_json NAME ARGS...: runs advise --json into $WORK/NAME.json
  local name=$1; shift
  "$TF" advise --json "$@" >"$WORK/$name.json" 2>"$WORK/$name.err" || { cat "$WORK/$name.err"; fail "advise $name"; }
}

note "small files with plenty of disk -> File"
advise_json fits "s3://$bucket/fits/" --disk-free 10GB
[[ $(json_get "$WORK/fits.json" 'd["recommendation"]') = File ]] || { cat "$WORK/fits.json"; fail "fits: expected File"; }
[[ $(json_get "$WORK/fits.json" 'd["stats"]["objects"]') = 200 ]] || fail "fits: object count"
[[ $(json_get "$WORK/fits.json" 'd["stats"]["bytes"]') = $(find "$WORK/fits" -type f -printf '%s\n' | awk '{s+=$1} END {print s}') ]] \
  || fail "fits: total bytes differ from the uploaded tree"
[[ $(json_get "$WORK/fits.json" 'd["input_data_config"]["DataSource"]["S3DataSource"]["S3Uri"]') = "s3://$bucket/fits/" ]] \
  || fail "fits: channel S3Uri"
[[ $(json_get "$WORK/fits.json" 'd["probe"] is None and d["rates"]["source"] == "defaults"') = True ]] \
  || fail "fits: without --probe the defaults must be used and said"

note "large files, disk smaller than the dataset -> FastFile (URI made a folder)"
advise_json large "s3://$bucket/large" --disk-free 50MB
[[ $(json_get "$WORK/large.json" 'd["recommendation"]') = FastFile ]] || { cat "$WORK/large.json"; fail "large: expected FastFile"; }
[[ $(json_get "$WORK/large.json" 'd["input_data_config"]["DataSource"]["S3DataSource"]["S3Uri"]') = "s3://$bucket/large/" ]] \
  || fail "large: the FastFile S3Uri must end in '/'"
[[ $(json_get "$WORK/large.json" 'd["stats"]["largest"]["key"]') = large/b.bin ]] || fail "large: largest key"
[[ $(json_get "$WORK/large.json" 'd["stats"]["small_files"]["objects"]') = 0 ]] || fail "large: no small file expected"

note "many small files, disk smaller than the dataset -> pack-then-FastFile"
advise_json many "s3://$bucket/many/" --disk-free 100KB
[[ $(json_get "$WORK/many.json" 'd["recommendation"]') = pack-then-FastFile ]] || { cat "$WORK/many.json"; fail "many: expected pack-then-FastFile"; }
[[ $(json_get "$WORK/many.json" 'd["input_data_config"]["DataSource"]["S3DataSource"]["S3Uri"]') = "s3://$bucket/many-packed/" ]] \
  || fail "many: the channel must point at the packed destination"
[[ $(json_get "$WORK/many.json" 'd["pack_command"]') = "trainfeed pack s3://$bucket/many/ s3://$bucket/many-packed/ --shard-size 150MB --format tar" ]] \
  || fail "many: pack command"
[[ $(json_get "$WORK/many.json" 'd["stats"]["fan_out"]["max_depth"]') = 2 ]] || fail "many: depth (shard-N/subM/obj)"

note "the same data under other constraints: --no-pack -> FSxLustre, --sequential-only -> Pipe"
advise_json nopack "s3://$bucket/many/" --disk-free 100KB --no-pack
[[ $(json_get "$WORK/nopack.json" 'd["recommendation"]') = FSxLustre ]] || fail "--no-pack: expected FSxLustre"
advise_json seq "s3://$bucket/large/" --disk-free 50MB --sequential-only --channel images
[[ $(json_get "$WORK/seq.json" 'd["recommendation"]') = Pipe ]] || fail "--sequential-only: expected Pipe"
[[ $(json_get "$WORK/seq.json" 'd["input_data_config"]["ChannelName"]') = images ]] || fail "--channel"

note "--probe measures this machine against the server"
advise_json probe "s3://$bucket/large/" --disk-free 50MB --probe
"$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d["probe"], d["rates"])' <"$WORK/probe.json" >&2
[[ $(json_get "$WORK/probe.json" 'd["rates"]["source"]') = probe ]] || fail "probe: rates not from the probe"
[[ $(json_get "$WORK/probe.json" 'd["probe"]["large_measured"] and d["probe"]["large_bytes"] == 103*1024*1024') = True ]] \
  || fail "probe: both large objects should be read in full (103 MiB < 256 MiB)"
[[ $(json_get "$WORK/probe.json" 'all(d["rates"][k] > 0 for k in ("objects_per_second", "object_latency_seconds", "bytes_per_second"))') = True ]] \
  || fail "probe: rates must be positive"
advise_json probe_small "s3://$bucket/many/" --disk-free 100KB --probe
[[ $(json_get "$WORK/probe_small.json" 'd["probe"]["small_gets"]') = 64 ]] || fail "probe: 64 small GETs expected"

note "text report"
"$TF" advise "s3://$bucket/fits/" --disk-free 10GB --training-hours 2 >"$WORK/fits.txt" || fail "text advise"
cat "$WORK/fits.txt"
for part in "200 objects" "objects by size" "recommendation: File" "InputDataConfig channel" '"InputMode":"File"'; do
  grep -qF "$part" "$WORK/fits.txt" || fail "text report lacks '$part'"
done

note "errors: missing bucket, empty prefix, bad URI, bad flag value -> one line, exit 1 (2 for usage)"
check_error() {  # check_error NAME EXPECTED_TEXT ARGS...
  local name=$1 expected=$2 rc=0; shift 2
  "$TF" advise "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || rc=$?
  [[ $rc = 1 ]] || { cat "$WORK/$name.err"; fail "$name: exit $rc, expected 1"; }
  [[ $(wc -l <"$WORK/$name.err") = 1 ]] || { cat "$WORK/$name.err"; fail "$name: expected one line"; }
  grep -qF -- "$expected" "$WORK/$name.err" || { cat "$WORK/$name.err"; fail "$name: message"; }
  [[ ! -s $WORK/$name.out ]] || fail "$name: printed a report despite the error"
}
check_error missing "NoSuchBucket" "s3://no-such-bucket-$RANDOM/x/"
check_error empty "no objects match s3://$bucket/nothing/" "s3://$bucket/nothing/"
check_error baduri "expected s3://bucket/prefix or file:///path" "http://example.com/x"
check_error badchannel "--channel 'a b'" "s3://$bucket/fits/" --channel "a b"
rc=0; "$TF" advise "s3://$bucket/fits/" --disk-free lots 2>"$WORK/usage.err" || rc=$?
[[ $rc = 2 ]] || fail "a bad --disk-free is a usage error (exit 2), got $rc"

echo "advise_test: ok"
