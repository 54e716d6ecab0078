#!/usr/bin/env bash
# kill -9 in the middle of a download, then run it again: every file under its final name is
# complete at all times, and the rerun finishes the job without fetching finished files again.
source "$(dirname "$0")/lib.sh"

make_small_files "$WORK/src" 40 5000000
bucket=$(new_bucket resume)
"$TF" -q upload "$WORK/src" "s3://$bucket/r/" || fail "upload"
# 4 streams of 4 MB/s each: the download takes ~10 s, so a kill after 3 s lands mid-way.
start_proxy --bandwidth 4000000

"$TF" -q --endpoint-url "$PROXY_URL" download --concurrency 4 "s3://$bucket/r/" "$WORK/dst" &
pid=$!
sleep 3
kill -9 $pid
wait $pid 2>/dev/null || true

note "after kill -9: every file under its final name is complete"
finished=0
while IFS= read -r -d '' f; do
  rel=${f#"$WORK/dst/"}
  cmp -s "$f" "$WORK/src/$rel" || fail "'$rel' is under its final name but incomplete"
  finished=$((finished + 1))
done < <(find "$WORK/dst" -type f ! -name '.*.tfpart' -print0)
partial=$(find "$WORK/dst" -name '.*.tfpart' | wc -l)
echo "finished before the kill: $finished of 40; partial: $partial"
((finished > 0 && finished < 40)) || fail "the kill should land mid-way (finished=$finished)"

note "rerun completes and skips the finished files"
"$TF" download "s3://$bucket/r/" "$WORK/dst" 2>"$WORK/rerun.log" || { cat "$WORK/rerun.log"; fail "rerun"; }
cat "$WORK/rerun.log"
grep -q "$finished already complete" "$WORK/rerun.log" || fail "rerun should skip exactly the $finished finished files"
diff <(tree_sums "$WORK/src") <(tree_sums "$WORK/dst") || fail "tree differs after the rerun"
[[ $(find "$WORK/dst" -name '.*.tfpart' | wc -l) = 0 ]] || fail "temporary files left after the rerun"
echo "PASS"
