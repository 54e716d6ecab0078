#!/usr/bin/env bash
# trainfeed download of 3000 small objects plus a 1 GiB object is byte-identical; a rerun skips
# every complete file; bad input fails with one clear line.
source "$(dirname "$0")/lib.sh"

src=$WORK/src
mkdir -p "$src/big"
make_small_files "$src/small" 3000
head -c 1G /dev/urandom >"$src/big/one-gib.bin"
bucket=$(new_bucket download)

note "upload (multipart for the large file)"
"$TF" upload "$src" "s3://$bucket/data/" || fail "upload"

note "download"
start=$(date +%s.%N)
"$TF" download "s3://$bucket/data/" "$WORK/dst" 2>"$WORK/download.log" || { cat "$WORK/download.log"; fail "download"; }
end=$(date +%s.%N)
cat "$WORK/download.log"
echo "download took $(echo "$end - $start" | bc) s"
diff <(tree_sums "$src") <(tree_sums "$WORK/dst") || fail "downloaded tree differs from the source"
[[ $(find "$WORK/dst" -name '*.tfpart' | wc -l) = 0 ]] || fail "temporary files left behind"
[[ -f $WORK/dst/small/obj-00000.bin && ! -s $WORK/dst/small/obj-00000.bin ]] || fail "empty object not kept"

note "rerun skips complete files"
touch -d '2001-01-01' "$WORK/stamp"
"$TF" download "s3://$bucket/data/" "$WORK/dst" 2>"$WORK/rerun.log" || fail "rerun"
cat "$WORK/rerun.log"
grep -q "3001 already complete" "$WORK/rerun.log" || fail "rerun did not skip all 3001 files"

note "a truncated local file is fetched again"
[[ -s $WORK/dst/small/obj-00005.bin ]] || fail "test data: obj-00005.bin should be non-empty"
truncate -s 3 "$WORK/dst/small/obj-00005.bin"
"$TF" download "s3://$bucket/data/" "$WORK/dst" 2>"$WORK/rerun2.log" || fail "rerun 2"
diff <(tree_sums "$src") <(tree_sums "$WORK/dst") || fail "tree differs after repair"

note "prefix naming: a partial name keeps its last component (SageMaker's rule)"
"$TF" -q download "s3://$bucket/data/small/obj-0000" "$WORK/partial" || fail "partial prefix"
[[ -f $WORK/partial/obj-00000.bin && -f $WORK/partial/obj-00005.bin ]] || fail "partial-prefix names: $(ls "$WORK/partial" | head)"

note "errors: missing bucket, missing prefix, bad credentials"
expect_fail "missing bucket" "$TF" -q download "s3://no-such-bucket-$RANDOM/x/" "$WORK/e1" 2>"$WORK/e1.log"
grep -q "NoSuchBucket: bucket 'no-such-bucket-" "$WORK/e1.log" || { cat "$WORK/e1.log"; fail "missing-bucket message"; }
expect_fail "empty prefix" "$TF" -q download "s3://$bucket/nothing-here/" "$WORK/e2" 2>"$WORK/e2.log"
grep -q "no objects match" "$WORK/e2.log" || { cat "$WORK/e2.log"; fail "empty-prefix message"; }
AWS_SECRET_ACCESS_KEY=not-the-secret-XYZZY expect_fail "bad secret" "$TF" -v -v download "s3://$bucket/data/" "$WORK/e3" 2>"$WORK/e3.log"
grep -q "SignatureDoesNotMatch" "$WORK/e3.log" || { cat "$WORK/e3.log"; fail "bad-credentials message"; }
! grep -q "XYZZY" "$WORK/e3.log" || fail "the secret appeared in the output"
! grep -q "$AWS_SECRET_ACCESS_KEY" "$WORK/e3.log" || fail "the real secret appeared in the output"
[[ $(find "$WORK/e3" -type f 2>/dev/null | wc -l) = 0 ]] || fail "files written despite bad credentials"
note "hostile keys are refused by name; nothing is written outside the destination"
hb=$(new_bucket hostile)
printf 'x' >"$WORK/x"
for key in "p/../../escaped-by-tf" "p//abs-by-tf" "p/./dot" "p/ok.txt"; do
  "$TF" -q upload "$WORK/x" "s3://$hb/$key" || fail "upload of key '$key'"
done
mkdir -p "$WORK/jail"
expect_fail "hostile keys" "$TF" -q download "s3://$hb/p/" "$WORK/jail/dst" 2>"$WORK/hostile.log"
cat "$WORK/hostile.log"
grep -q "key 'p/../../escaped-by-tf' has a '..' component" "$WORK/hostile.log" || fail "'..' key not named"
grep -q "key 'p//abs-by-tf' maps to an absolute path" "$WORK/hostile.log" || fail "absolute key not named"
grep -q "3 of 4 objects failed" "$WORK/hostile.log" || fail "hostile summary"
[[ $(cat "$WORK/jail/dst/ok.txt") = x ]] || fail "the safe key should still arrive"
[[ -z $(find / -xdev -name 'escaped-by-tf' -o -xdev -name 'abs-by-tf' 2>/dev/null | head -1) ]] || fail "a hostile key was written somewhere"
[[ $(find "$WORK/jail" -type f | wc -l) = 1 ]] || fail "only ok.txt may exist"
echo "PASS"
