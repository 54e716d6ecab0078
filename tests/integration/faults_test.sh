#!/usr/bin/env bash
# Faults between trainfeed and a real server, injected by a proxy: every case ends with identical
# bytes or a clear error, never a silently wrong file.
source "$(dirname "$0")/lib.sh"

make_small_files "$WORK/src/small" 60 50000
mkdir -p "$WORK/src/large"
head -c 24M /dev/urandom >"$WORK/src/large/24mib.bin"   # three 8 MiB ranged parts
bucket=$(new_bucket faults)
"$TF" -q upload "$WORK/src" "s3://$bucket/d/" || fail "upload"
start_proxy

# run_case NAME PLAN: a download through the proxy under PLAN must end byte-identical.
run_case() {
  note "$1"
  set_plan "$2"
  rm -rf "$WORK/dst"
  "$TF" --endpoint-url "$PROXY_URL" download "s3://$bucket/d/" "$WORK/dst" 2>"$WORK/case.log" ||
    { cat "$WORK/case.log"; fail "$1: download failed"; }
  diff <(tree_sums "$WORK/src") <(tree_sums "$WORK/dst") || fail "$1: bytes differ"
  curl -sf "$PROXY_URL/__fault/stats" | grep -q '"faults": [1-9]' ||
    { curl -s "$PROXY_URL/__fault/stats"; fail "$1: the proxy injected no fault"; }
}

run_case "503 SlowDown burst" \
  '{"rules":[{"match":{"method":"GET","path_contains":"/d/"},"times":12,"action":{"status":503}}]}'
run_case "500 InternalError on listing" \
  '{"rules":[{"match":{"method":"GET","query_contains":"list-type"},"times":2,"action":{"status":500}}]}'
run_case "connection reset mid-body of ranged parts (resume from the last byte)" \
  '{"rules":[{"match":{"method":"GET","ranged":true},"times":3,"action":{"reset_after_bytes":3000000}}]}'
run_case "body shorter than Content-Length" \
  '{"rules":[{"match":{"method":"GET","path_contains":"24mib"},"times":2,"action":{"truncate_after_bytes":1048576}}]}'
run_case "truncated small objects" \
  '{"rules":[{"match":{"method":"GET","path_contains":"obj-000"},"times":4,"action":{"truncate_after_bytes":100}}]}'
run_case "slow first byte" \
  '{"rules":[{"match":{"method":"GET","path_contains":"/d/"},"times":6,"action":{"delay_first_byte_ms":400}}]}'

note "a 503 storm on one object: a clear error naming it, nothing under its name"
set_plan '{"rules":[{"match":{"method":"GET","path_contains":"obj-00007"},"times":100000,"action":{"status":503}}]}'
rm -rf "$WORK/dst"
expect_fail "503 storm" "$TF" --endpoint-url "$PROXY_URL" download "s3://$bucket/d/" "$WORK/dst" 2>"$WORK/storm.log"
cat "$WORK/storm.log"
grep -q "obj-00007.bin.*SlowDown.*gave up after" "$WORK/storm.log" || fail "storm: no clear line naming the object"
grep -q "1 of 61 objects failed" "$WORK/storm.log" || fail "storm: summary line"
[[ -z $(find "$WORK/dst" -name 'obj-00007.bin*' -o -name '.obj-00007.bin*') ]] || fail "storm: a file was left for the failed object"
[[ $(find "$WORK/dst" -type f | wc -l) = 60 ]] || fail "storm: the other 60 objects should be complete"

note "a 503 storm on listing: one clear line"
set_plan '{"rules":[{"match":{"query_contains":"list-type"},"times":100000,"action":{"status":503}}]}'
expect_fail "list storm" "$TF" -q --endpoint-url "$PROXY_URL" download "s3://$bucket/d/" "$WORK/dst2" 2>"$WORK/list.log"
cat "$WORK/list.log"
[[ $(wc -l <"$WORK/list.log") = 1 ]] || fail "list storm: expected exactly one line"
grep -q "ListObjectsV2.*SlowDown" "$WORK/list.log" || fail "list storm: message"
echo "PASS"
