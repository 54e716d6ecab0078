// `trainfeed pack`: many small objects into ~shard-size tar or RecordIO shards with an index, in
// parallel, streaming, resumable.
//
// Pipeline. The source is listed and planned (pack_plan.h). Shards are written concurrency/8 at
// a time (at least one); each streams its members in plan order into a ShardWriter feeding a
// multipart upload, while up to 8 of its next small members (<= 1 MiB) are already being fetched
// by a shared pool of `concurrency` GETs; larger members stream straight from their GET into the
// shard. Memory: per shard in progress two parts (2 x part_size) plus 8 MiB read ahead.
//
// Resume. A shard is done when its index object (shard-NNNNNN.idx.json) exists, names this
// run's plan fingerprint, and the shard object it describes is there with the recorded size and
// ETag; those shards are kept, every other one is (re)written, so a rerun after a crash neither
// loses nor duplicates a member. A multipart upload records its id in shard-NNNNNN.EXT.upload
// until it completes; a rerun aborts the uploads such markers name. If the destination holds
// shards or a manifest of another plan (the source or the arguments changed), Pack refuses unless
// `force`, which rebuilds everything and removes shards beyond the new plan's last.
// The manifest index.json is written last, only when every shard is complete.
// One run per destination at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "pack/pack_plan.h"
#include "store/object_store.h"
#include "store/store_uri.h"
#include "transfer/downloader.h"

namespace trainfeed {

struct PackOptions {
  PackPlanOptions plan;
  // Source GETs in flight over all shards; shards written at once = max(1, concurrency / 8).
  int concurrency = 32;
  // Multipart part size (S3: >= 5 MiB, <= 10,000 parts per shard); one part uploads while the
  // next fills. Shards no larger than one part go up as a single PUT.
  uint64_t part_size = 8ull << 20;
  bool force = false;
  const std::atomic<bool>* cancel = nullptr;
  // Live counters for a progress line (may be null): objects/bytes queued, done, skipped (in
  // shards kept from an earlier run) and received.
  DownloadProgress* progress = nullptr;
};

struct PackReport {
  uint64_t shards = 0, shards_kept = 0, shards_written = 0;
  uint64_t members = 0, member_bytes = 0;  // the whole plan
  uint64_t bytes_read = 0;                 // source bytes fetched this run
  uint64_t shard_bytes_written = 0;        // shard bytes uploaded this run
  uint64_t aborted_uploads = 0;            // dangling uploads of an earlier run
  uint64_t removed_stale = 0;              // objects of an older plan removed (force)
  std::string fingerprint;
  bool writing_started = false;  // planning and the resume checks passed
  Status fatal;  // why the pack is incomplete; OK when the manifest was written
  std::chrono::duration<double> elapsed{};
  bool ok() const { return fatal.ok(); }
};

// The destination prefix as a folder: "" or ending in '/'.
std::string PackDestinationPrefix(const StoreUri& destination);

PackReport Pack(ObjectStore& source_store, const StoreUri& source, ObjectStore& dest_store,
                const StoreUri& destination, const PackOptions& options);

}  // namespace trainfeed
