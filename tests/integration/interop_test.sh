#!/usr/bin/env bash
# Interop with the aws cli on the same server: what the aws cli uploads, trainfeed downloads
# byte-identical; what trainfeed uploads (multipart included), the aws cli reads back identical.
source "$(dirname "$0")/lib.sh"

mkdir -p "$WORK/src/nested/deeper"
make_small_files "$WORK/src/many" 200 20000
head -c 40M /dev/urandom >"$WORK/src/nested/forty-mib.bin"     # 5 parts of 8 MiB
head -c 5M /dev/urandom >"$WORK/src/nested/deeper/five-mib.bin"
printf 'odd names\n' >"$WORK/src/nested/a b+c=d~e.txt"
printf 'unicode\n' >"$WORK/src/nested/é-ü-日本.txt"
: >"$WORK/src/nested/empty"
bucket=$(new_bucket interop)

note "aws cli uploads, trainfeed downloads"
aws_s3 s3 cp --recursive --only-show-errors "$WORK/src" "s3://$bucket/by-aws/" || fail "aws upload"
"$TF" -q download "s3://$bucket/by-aws/" "$WORK/from-aws" || fail "trainfeed download"
diff <(tree_sums "$WORK/src") <(tree_sums "$WORK/from-aws") || fail "trainfeed's copy of aws's upload differs"

note "trainfeed uploads (multipart for 40 MiB), aws cli downloads"
"$TF" -q upload "$WORK/src" "s3://$bucket/by-tf/" || fail "trainfeed upload"
etag=$(aws_s3 s3api head-object --bucket "$bucket" --key by-tf/nested/forty-mib.bin --query ETag --output text)
[[ $etag == *-5\" ]] || fail "expected a 5-part multipart ETag, got $etag"
aws_s3 s3 cp --recursive --only-show-errors "s3://$bucket/by-tf/" "$WORK/from-tf" || fail "aws download"
diff <(tree_sums "$WORK/src") <(tree_sums "$WORK/from-tf") || fail "aws's copy of trainfeed's upload differs"

note "listing agrees with the aws cli"
aws_s3 s3api list-objects-v2 --bucket "$bucket" --prefix by-tf/ --query 'Contents[].[Key,Size]' --output text | LC_ALL=C sort >"$WORK/aws-ls"
"$TF" ls -r "s3://$bucket/by-tf/" | awk 'NF>=4 && $1 ~ /^[0-9-]+$/ {key=$4; for (i=5;i<=NF;i++) key=key" "$i; print key"\t"$3}' | LC_ALL=C sort >"$WORK/tf-ls"
diff "$WORK/aws-ls" "$WORK/tf-ls" || fail "trainfeed ls and aws s3api list-objects-v2 disagree"
echo "PASS"
