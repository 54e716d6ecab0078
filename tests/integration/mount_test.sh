#!/usr/bin/env bash
# trainfeed mount (FastFile mode), a real FUSE mount of an S3 prefix: the tree and every byte match
# the source, random and concurrent reads are exact, writes fail with EROFS, a second read with
# --cache comes from the local disk cache without a GET (also after a remount), and the mount goes
# away cleanly on SIGTERM, on SIGKILL and with `trainfeed unmount`, without ever hanging a reader.
# Needs root (or /dev/fuse access) like any FUSE mount.
source "$(dirname "$0")/lib.sh"

MNT=$WORK/mnt
mkdir -p "$MNT"
DAEMON_PID=
TMPFS=

# Never leave a mount or a daemon behind, whatever failed.
cleanup() {
  if [[ -n $DAEMON_PID ]]; then kill -TERM "$DAEMON_PID" 2>/dev/null || true; fi
  "$TF" unmount "$MNT" 2>/dev/null || fusermount3 -u -z "$MNT" 2>/dev/null || true
  "$TF" unmount "$WORK/mnt2" 2>/dev/null || true
  if [[ -n $DAEMON_PID ]]; then kill -KILL "$DAEMON_PID" 2>/dev/null || true; fi
  if [[ -n $TMPFS ]]; then umount "$TMPFS" 2>/dev/null || true; fi
}
trap cleanup EXIT

# Waits up to 10 s for process $1 to end. Its zombie counts as ended: the daemon's parent has
# exited, so whoever adopted it reaps it whenever it likes.
wait_gone() {
  for _ in $(seq 100); do
    [[ -e /proc/$1 ]] || return 0
    [[ $(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null) != Z ]] || return 0
    sleep 0.1
  done
  return 1
}

# Mounts s3://$bucket/data/ at $MNT as a daemon, logging to $1 (further arguments are mount flags);
# sets DAEMON_PID.
mount_daemon() {
  local log=$1
  shift
  "$TF" mount "$@" "s3://$bucket/data/" "$MNT" 2>"$log" || { cat "$log"; fail "mount"; }
  mountpoint -q "$MNT" || { cat "$log"; fail "mount returned 0 but $MNT is not a mount point"; }
  DAEMON_PID=$(sed -n 's/.*(pid \([0-9]*\)).*/\1/p' "$log" | head -1)
  [[ -n $DAEMON_PID ]] || { cat "$log"; fail "the mount log names no daemon pid"; }
}

# Asks the daemon for its counters (SIGUSR1) and prints the new line of log $1.
counters_now() {
  local log=$1 before
  before=$(grep -c "GETs fetched" "$log" || true)
  kill -USR1 "$DAEMON_PID"
  for _ in $(seq 50); do
    (( $(grep -c "GETs fetched" "$log" || true) > before )) && break
    sleep 0.1
  done
  grep "GETs fetched" "$log" | tail -1
}
gets_in() { sed -n 's/.* \([0-9]*\) GETs fetched.*/\1/p' <<<"$1"; }
# "12.5 MiB" (as the counters line writes sizes) in bytes.
to_bytes() {
  awk -v n="$1" -v u="$2" 'BEGIN { split("B KiB MiB GiB TiB", units, " ")
    for (i = 1; i <= 5; i++) if (units[i] == u) { printf "%.0f", n * 1024 ^ (i - 1); exit } }'
}
served_in() { to_bytes $(sed -n 's/.*served \([0-9.]*\) \([A-Za-z]*\) in .*/\1 \2/p' <<<"$1"); }
fetched_in() {
  to_bytes $(sed -n 's/.* GETs fetched \([0-9.]*\) \([A-Za-z]*\) .*/\1 \2/p' <<<"$1")
}

note "test data: small files, an empty one, nested folders, 64 MiB and 1 GiB files, a folder marker"
src=$WORK/src
mkdir -p "$src/small" "$src/nested/deep/er" "$src/big"
printf 'hello\n' >"$src/small/a.txt"
head -c 1000 /dev/urandom >"$src/small/b.bin"
: >"$src/small/empty"
printf 'spaces\n' >"$src/small/name with spaces.txt"
head -c 70001 /dev/urandom >"$src/nested/deep/er/x.bin"
printf 'y\n' >"$src/nested/y.txt"
head -c $((64 * 1024 * 1024 + 12345)) /dev/urandom >"$src/big/big.bin"
# Past 1 GiB: offsets and sizes beyond 32 bits in every layer (the tree, FUSE, ranged GETs).
mkdir -p "$src/huge"
head -c $((1024 * 1024 * 1024 + 777)) /dev/urandom >"$src/huge/huge.bin"
bucket=$(new_bucket mount)
"$TF" -q upload "$src" "s3://$bucket/data/" || fail "upload"
aws_s3 s3api put-object --bucket "$bucket" --key data/empty-folder/ >/dev/null || fail "folder marker"
aws_s3 s3api put-object --bucket "$bucket" --key data/small/ >/dev/null || fail "folder marker"
# Keys with no faithful path: a file named like a folder (the folder wins) and a '//' key.
printf 'shadowed\n' >"$WORK/one"
"$TF" -q upload "$WORK/one" "s3://$bucket/data/nested" || fail "upload of the shadowed key"
"$TF" -q upload "$WORK/one" "s3://$bucket/data/bad//name" || fail "upload of the '//' key"

note "mount as a daemon"
mount_daemon "$WORK/mount.log"
cat "$WORK/mount.log"
grep -q "1 objects are hidden because a folder has the same name.*'data/nested'" "$WORK/mount.log" ||
  fail "no warning about the shadowed key"
grep -q "1 keys are not shown.*'data/bad//name'" "$WORK/mount.log" ||
  fail "no warning about the '//' key"
expect_fail "a second mount on the same directory" \
  "$TF" mount "s3://$bucket/data/" "$MNT" 2>"$WORK/again.log"
grep -q "already at" "$WORK/again.log" || { cat "$WORK/again.log"; fail "second-mount message"; }

note "the tree"
diff <({ find "$src" | sed "s|^$src|$MNT|"; echo "$MNT/empty-folder"; } | LC_ALL=C sort) \
     <(find "$MNT" | LC_ALL=C sort) || fail "the mounted tree differs from the source"
attrs=$(stat -c '%a %s %F' "$MNT/small/a.txt")
[[ $attrs == "444 6 regular file" ]] || fail "file attributes: $attrs"
attrs=$(stat -c '%a %F' "$MNT/nested")
[[ $attrs == "555 directory" ]] || fail "folder attributes: $attrs"
[[ $(stat -c '%s' "$MNT/big/big.bin") == $((64 * 1024 * 1024 + 12345)) ]] || fail "big file size"
[[ ! -s $MNT/small/empty && -f $MNT/small/empty ]] || fail "the empty object"
[[ -d $MNT/empty-folder && -z $(ls -A "$MNT/empty-folder") ]] || fail "the folder marker's empty folder"
[[ ! -e $MNT/nothing-here ]] || fail "a missing name exists"

note "8 concurrent readers of the big file (cold cache)"
want=$(sha256sum <"$src/big/big.bin" | cut -d' ' -f1)
for i in $(seq 8); do
  (cat "$MNT/big/big.bin" | sha256sum | cut -d' ' -f1 >"$WORK/cat.$i") &
done
wait
for i in $(seq 8); do
  [[ $(cat "$WORK/cat.$i") == "$want" ]] || fail "concurrent reader $i got different bytes"
done

note "SIGUSR1 prints the counters and keeps the mount; the 8 readers fetched the file about once"
kill -USR1 "$DAEMON_PID"
for _ in $(seq 50); do grep -q "GETs fetched" "$WORK/mount.log" && break; sleep 0.1; done
counters=$(grep "GETs fetched" "$WORK/mount.log") || fail "no counters line after SIGUSR1"
echo "$counters"
mountpoint -q "$MNT" || fail "SIGUSR1 unmounted"
ratio=$(sed -n 's/.*over-fetch \([0-9.]*\)x.*/\1/p' <<<"$counters")
[[ -n $ratio ]] && (( $(echo "$ratio < 1.5" | bc) )) ||
  fail "8 readers of one file fetched ${ratio:-?}x its size"

note "random reads at odd offsets: exact, and fetching about what they read"
dd if="$MNT/big/big.bin" iflag=nocache count=0 status=none  # drop its cached pages: read via FUSE
before=$(counters_now "$WORK/mount.log")
"$PY" - "$MNT" "$src" <<'PY' || fail "random reads differ from the source"
import os, random, sys
mnt, src = sys.argv[1], sys.argv[2]
rng = random.Random(7)
for rel in ["big/big.bin", "nested/deep/er/x.bin", "small/b.bin"]:
    size = os.path.getsize(os.path.join(src, rel))
    with open(os.path.join(mnt, rel), "rb", buffering=0) as m, \
         open(os.path.join(src, rel), "rb") as s:
        for _ in range(150):
            offset = rng.randrange(0, size + 100) | 1
            n = rng.choice([1, 3, 4095, 4097, 65537, 1 << 20, 3 * (1 << 20) + 1])
            m.seek(offset)
            got = b""
            while len(got) < n:
                chunk = m.read(n - len(got))
                if not chunk:
                    break
                got += chunk
            s.seek(offset)
            want = s.read(n)
            if got != want:
                sys.exit(f"{rel}: {n} bytes at {offset}: got {len(got)} bytes that differ")
        # pread at the very end and past it
        fd = m.fileno()
        assert os.pread(fd, 10, size - 3) == open(os.path.join(src, rel), "rb").read()[-3:]
        assert os.pread(fd, 10, size) == b"" and os.pread(fd, 10, size + 12345) == b""
print("random reads ok")
PY
after=$(counters_now "$WORK/mount.log")
ratio=$(awk -v s0="$(served_in "$before")" -v s1="$(served_in "$after")" \
  -v f0="$(fetched_in "$before")" -v f1="$(fetched_in "$after")" \
  'BEGIN { printf "%.2f", (s1 > s0 ? (f1 - f0) / (s1 - s0) : 0) }')
echo "random reads fetched ${ratio}x the bytes they were served"
(( $(echo "$ratio > 0 && $ratio <= 1.5" | bc) )) ||
  fail "random reads fetched ${ratio}x what they read"

# After the random reads: once the 1 GiB file is read, the counters' rounded sizes are too coarse
# for the over-fetch check above.
note "every file's sha256 (the 1 GiB file included)"
diff <(tree_sums "$src") <(tree_sums "$MNT") || fail "file contents differ"

note "writes fail with EROFS"
expect_erofs() {
  local what=$1; shift
  if "$@" 2>"$WORK/erofs.log"; then fail "$what succeeded on the read-only mount"; fi
  grep -q "Read-only file system" "$WORK/erofs.log" ||
    { cat "$WORK/erofs.log"; fail "$what: expected EROFS"; }
}
expect_erofs "touch" touch "$MNT/x"
expect_erofs "overwrite" bash -c "echo > '$MNT/small/a.txt'"
expect_erofs "append" bash -c "echo >> '$MNT/small/a.txt'"
expect_erofs "mkdir" mkdir "$MNT/new-folder"
expect_erofs "rm" rm -f "$MNT/small/a.txt"
expect_erofs "mv" mv "$MNT/small/a.txt" "$MNT/small/moved.txt"
expect_erofs "chmod" chmod 600 "$MNT/small/a.txt"
[[ $(cat "$MNT/small/a.txt") == hello ]] || fail "a.txt changed"

note "SIGTERM unmounts and prints the counters"
kill -TERM "$DAEMON_PID"
wait_gone "$DAEMON_PID" || fail "the daemon did not exit within 10 s of SIGTERM"
DAEMON_PID=
! mountpoint -q "$MNT" || fail "still mounted after SIGTERM"
grep "unmounted $MNT: served" "$WORK/mount.log" ||
  { cat "$WORK/mount.log"; fail "no counters line at unmount"; }
timeout 10 ls "$MNT" >/dev/null || fail "ls after unmount"


note "--listing-snapshot: the first mount lists and saves, the next one loads it"
SNAP=$WORK/listing.snapshot
mount_daemon "$WORK/snap1.log" --listing-snapshot "$SNAP"
grep -q "listed in" "$WORK/snap1.log" || { cat "$WORK/snap1.log"; fail "first mount did not list"; }
[[ -s $SNAP ]] || fail "no snapshot was saved"
find "$MNT" | LC_ALL=C sort >"$WORK/tree1"
kill -TERM "$DAEMON_PID"; wait_gone "$DAEMON_PID" || fail "SIGTERM"; DAEMON_PID=
# An object added after the snapshot is not seen: that is the snapshot's promise (documented).
"$TF" -q upload "$WORK/one" "s3://$bucket/data/added-later" || fail "upload"
mount_daemon "$WORK/snap2.log" --listing-snapshot "$SNAP"
cat "$WORK/snap2.log"
grep -q "snapshot loaded in" "$WORK/snap2.log" || fail "the second mount did not use the snapshot"
diff "$WORK/tree1" <(find "$MNT" | LC_ALL=C sort) || fail "the tree from the snapshot differs"
[[ $(sha256sum <"$MNT/small/b.bin") == $(sha256sum <"$src/small/b.bin") ]] ||
  fail "read through a snapshot mount"
kill -TERM "$DAEMON_PID"; wait_gone "$DAEMON_PID" || fail "SIGTERM"; DAEMON_PID=
note "--listing-snapshot: a damaged snapshot is reported and replaced by a fresh listing"
printf 'garbage' | dd of="$SNAP" bs=1 seek=100 conv=notrunc status=none
mount_daemon "$WORK/snap3.log" --listing-snapshot "$SNAP"
grep -q "checksum mismatch.*listing again" "$WORK/snap3.log" ||
  { cat "$WORK/snap3.log"; fail "no warning about the damaged snapshot"; }
[[ -e $MNT/added-later ]] || fail "the fresh listing misses the object added later"
kill -TERM "$DAEMON_PID"; wait_gone "$DAEMON_PID" || fail "SIGTERM"; DAEMON_PID=
aws_s3 s3 rm "s3://$bucket/data/added-later" >/dev/null || fail "rm"

note "--cache: the second read of a file comes from the disk cache, without a GET"
CACHE=$WORK/cache
mount_daemon "$WORK/cache.log" --cache "$CACHE" --cache-size 256MiB
big_sum=$(sha256sum <"$src/big/big.bin" | cut -d' ' -f1)
[[ $(sha256sum <"$MNT/big/big.bin" | cut -d' ' -f1) == "$big_sum" ]] ||
  fail "the first read with --cache differs from the source"
# Blocks are written behind the reads: wait for all 65 (64 MiB + 12345 bytes in 1 MiB blocks).
written=0
for _ in $(seq 100); do
  line=$(counters_now "$WORK/cache.log")
  written=$(sed -n 's/.* \([0-9]*\) blocks written.*/\1/p' <<<"$line")
  (( ${written:-0} >= 65 )) && break
  sleep 0.1
done
echo "$line"
(( ${written:-0} >= 65 )) || fail "${written:-0} of 65 blocks were written to the cache"
gets_before=$(gets_in "$line")
dd if="$MNT/big/big.bin" iflag=nocache count=0 status=none  # drop its cached pages: read via FUSE
[[ $(sha256sum <"$MNT/big/big.bin" | cut -d' ' -f1) == "$big_sum" ]] ||
  fail "the second read with --cache differs from the source"
line=$(counters_now "$WORK/cache.log")
echo "$line"
[[ $(gets_in "$line") == "$gets_before" ]] ||
  fail "the second read issued $(( $(gets_in "$line") - gets_before )) GETs"
hits=$(sed -n 's/.*disk cache \([0-9]*\) hits.*/\1/p' <<<"$line")
(( ${hits:-0} >= 65 )) || fail "the second read took ${hits:-0} blocks from the cache"
(( $(du -sm "$CACHE" | cut -f1) <= 256 )) || fail "the cache folder outgrew --cache-size"

note "--cache: one mount per cache folder; a new mount reuses what the last one cached"
mkdir -p "$WORK/mnt2"
expect_fail "a second mount on the same cache folder" \
  "$TF" mount --cache "$CACHE" "s3://$bucket/data/" "$WORK/mnt2" 2>"$WORK/cache-busy.log"
grep -q "in use by another trainfeed mount" "$WORK/cache-busy.log" ||
  { cat "$WORK/cache-busy.log"; fail "busy cache folder message"; }
kill -TERM "$DAEMON_PID"
wait_gone "$DAEMON_PID" || fail "the daemon did not exit within 10 s of SIGTERM"
DAEMON_PID=
grep "unmounted $MNT: served.*disk cache" "$WORK/cache.log" || fail "no cache counters at unmount"
mount_daemon "$WORK/cache2.log" --cache "$CACHE" --cache-size 256MiB
grep -q "disk cache $CACHE: 65 blocks" "$WORK/cache2.log" ||
  { cat "$WORK/cache2.log"; fail "the new mount did not find the cached blocks"; }
[[ $(sha256sum <"$MNT/big/big.bin" | cut -d' ' -f1) == "$big_sum" ]] || fail "read after a remount"
line=$(counters_now "$WORK/cache2.log")
echo "$line"
[[ $(gets_in "$line") == 0 ]] || fail "the remounted read issued $(gets_in "$line") GETs"
kill -TERM "$DAEMON_PID"
wait_gone "$DAEMON_PID" || fail "the daemon did not exit within 10 s of SIGTERM"
DAEMON_PID=

note "SIGKILL: no mount stays behind, and 'trainfeed unmount' is safe to run anyway"
mount_daemon "$WORK/mount2.log"
kill -KILL "$DAEMON_PID"
wait_gone "$DAEMON_PID" || fail "SIGKILL"
DAEMON_PID=
rc=0; timeout 10 ls "$MNT" >/dev/null 2>&1 || rc=$?
[[ $rc != 124 ]] || fail "ls hung on the mount of a killed daemon"
"$TF" unmount "$MNT" || fail "unmount after SIGKILL"
! mountpoint -q "$MNT" || fail "still mounted after SIGKILL and unmount"
timeout 10 ls "$MNT" >/dev/null || fail "ls after unmount"

note "a dead mount (daemon and its auto-unmount watchdog killed) fails fast, then unmounts"
mount_daemon "$WORK/mount3.log"
watchdog=$(pgrep -P "$DAEMON_PID" -x fusermount3 || true)
if [[ -n $watchdog ]]; then kill -KILL "$watchdog"; fi
kill -KILL "$DAEMON_PID"
wait_gone "$DAEMON_PID" || fail "SIGKILL"
DAEMON_PID=
rc=0; timeout 10 ls "$MNT" >/dev/null 2>"$WORK/dead.log" || rc=$?
[[ $rc != 124 ]] || fail "ls hung on a dead mount"
mountpoint -q "$MNT" || fail "expected a dead mount to test 'trainfeed unmount' on"
grep -q "Transport endpoint is not connected" "$WORK/dead.log" ||
  { cat "$WORK/dead.log"; fail "dead mount: expected ENOTCONN"; }
"$TF" unmount "$MNT" || fail "unmount of a dead mount"
! mountpoint -q "$MNT" || fail "still mounted after 'trainfeed unmount'"
timeout 10 ls "$MNT" >/dev/null || fail "ls after unmounting a dead mount"
"$TF" unmount "$MNT" || fail "unmount of a directory with nothing mounted must succeed"

note "errors: a prefix inside a name, an empty prefix, a missing bucket, another file system"
expect_fail "prefix without '/'" "$TF" mount "s3://$bucket/data" "$MNT" 2>"$WORK/e1.log"
grep -q "ends inside a name" "$WORK/e1.log" || { cat "$WORK/e1.log"; fail "prefix message"; }
expect_fail "empty prefix" "$TF" mount "s3://$bucket/nothing-here/" "$MNT" 2>"$WORK/e2.log"
grep -q "no objects match" "$WORK/e2.log" || { cat "$WORK/e2.log"; fail "empty-prefix message"; }
expect_fail "missing bucket" "$TF" mount "s3://no-such-bucket-$RANDOM/x/" "$MNT" 2>"$WORK/e3.log"
grep -q "NoSuchBucket" "$WORK/e3.log" || { cat "$WORK/e3.log"; fail "missing-bucket message"; }
! mountpoint -q "$MNT" || fail "a failed mount left a mount behind"
TMPFS=$WORK/tmpfs
mkdir -p "$TMPFS"
mount -t tmpfs trainfeed-test "$TMPFS" || fail "cannot mount a tmpfs (run as root)"
expect_fail "unmount of a tmpfs" "$TF" unmount "$TMPFS" 2>"$WORK/e4.log"
grep -q "not a trainfeed mount" "$WORK/e4.log" ||
  { cat "$WORK/e4.log"; fail "foreign-mount message"; }
mountpoint -q "$TMPFS" || fail "trainfeed unmount removed a tmpfs"
umount "$TMPFS"
TMPFS=
echo "PASS"
