#include "store/testing/fake_object_store.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace trainfeed {
namespace {

constexpr int kMaxListKeys = 1000;
constexpr int kMaxPartNumber = 10000;
constexpr size_t kMaxKeyBytes = 1024;

// Not cryptographic: ETags only need to differ when contents differ, and hashing a 64 MiB test
// object must stay fast.
uint64_t Hash64(std::string_view data) {
  constexpr uint64_t kMul = 0x9e3779b97f4a7c15ULL;
  uint64_t h = 0xcbf29ce484222325ULL ^ (data.size() * kMul);
  size_t i = 0;
  for (; i + 8 <= data.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, data.data() + i, 8);
    h = (h ^ word) * kMul;
    h ^= h >> 29;
  }
  uint64_t tail = 0;
  std::memcpy(&tail, data.data() + i, data.size() - i);
  h = (h ^ tail) * kMul;
  // MurmurHash3's finalizer spreads every input bit over the output.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb93e53ca45ebULL;
  h ^= h >> 33;
  return h;
}

std::string HexEtag(std::string_view data) {
  static constexpr char kDigits[] = "0123456789abcdef";
  uint64_t h = Hash64(data);
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4) out[i] = kDigits[h & 15];
  return out;
}

std::string MemUri(const std::string& bucket, const std::string& key) {
  return "mem://" + bucket + "/" + key;
}

Status CheckKey(const ObjectRef& object) {
  if (object.key.empty()) {
    return InvalidArgumentError("empty key in bucket '" + object.bucket + "'");
  }
  if (object.key.size() > kMaxKeyBytes) {
    return InvalidArgumentError("KeyTooLongError: key of " + std::to_string(object.key.size()) +
                                " bytes in bucket '" + object.bucket + "'");
  }
  return OkStatus();
}

Status NoSuchBucket(const std::string& bucket) {
  return NotFoundError("NoSuchBucket: bucket '" + bucket + "' does not exist");
}

// Same meaning as in the local store: keys up to `bound` were returned, and with `skip_prefix`
// all keys that start with it.
struct ListCursor {
  std::string bound;
  bool skip_prefix = false;
};

std::string EncodeToken(const ListCursor& cursor) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string token = cursor.skip_prefix ? "fakeP" : "fakeK";
  for (unsigned char c : cursor.bound) {
    token += kDigits[c >> 4];
    token += kDigits[c & 15];
  }
  return token;
}

Result<ListCursor> DecodeToken(const std::string& token) {
  auto value = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  auto bad = [&] { return InvalidArgumentError("invalid continuation token '" + token + "'"); };
  if (token.size() < 5 || token.size() % 2 == 0 ||
      (token.compare(0, 5, "fakeK") != 0 && token.compare(0, 5, "fakeP") != 0)) {
    return bad();
  }
  ListCursor cursor;
  cursor.skip_prefix = token[4] == 'P';
  for (size_t i = 5; i < token.size(); i += 2) {
    int hi = value(token[i]);
    int lo = value(token[i + 1]);
    if (hi < 0 || lo < 0) return bad();
    cursor.bound += static_cast<char>(hi * 16 + lo);
  }
  return cursor;
}

// The first key after all keys that start with `prefix`, or end().
template <typename Map>
typename Map::const_iterator SkipPrefix(const Map& map, const std::string& prefix) {
  std::string next = prefix;
  while (!next.empty() && static_cast<unsigned char>(next.back()) == 0xff) next.pop_back();
  if (next.empty()) return map.end();
  next.back() = static_cast<char>(static_cast<unsigned char>(next.back()) + 1);
  return map.lower_bound(next);
}

}  // namespace

FakeObjectStore::FakeObjectStore(Clock* clock) : clock_(clock) {}

std::chrono::system_clock::time_point FakeObjectStore::Now() const {
  return clock_ != nullptr ? clock_->Now() : std::chrono::system_clock::now();
}

void FakeObjectStore::CreateBucket(const std::string& bucket) {
  std::lock_guard<std::mutex> lock(mu_);
  buckets_[bucket];
}

Result<std::string> FakeObjectStore::Store(const ObjectRef& object,
                                           std::shared_ptr<const std::string> data,
                                           std::string etag) {
  auto now = Now();
  std::lock_guard<std::mutex> lock(mu_);
  auto bucket = buckets_.find(object.bucket);
  if (bucket == buckets_.end()) return NoSuchBucket(object.bucket);
  bucket->second[object.key] = Object{std::move(data), etag, now};
  return etag;
}

Result<std::string> FakeObjectStore::PutRamp(const std::string& bucket, const std::string& key,
                                             uint64_t size, uint64_t seed) {
  auto data = std::make_shared<std::string>(RampBytes(seed, 0, size));
  std::string etag = HexEtag(*data);
  return Store({bucket, key}, std::move(data), std::move(etag));
}

std::string FakeObjectStore::RampBytes(uint64_t seed, uint64_t begin, uint64_t end) {
  std::string out(end > begin ? end - begin : 0, '\0');
  uint64_t value = (seed % 251 + begin % 251) % 251;
  for (char& c : out) {
    c = static_cast<char>(value);
    if (++value == 251) value = 0;
  }
  return out;
}

Result<std::string> FakeObjectStore::Contents(const ObjectRef& object) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto bucket = buckets_.find(object.bucket);
  if (bucket == buckets_.end()) return NoSuchBucket(object.bucket);
  auto it = bucket->second.find(object.key);
  if (it == bucket->second.end()) {
    return NotFoundError("NoSuchKey: " + MemUri(object.bucket, object.key));
  }
  return *it->second.data;
}

size_t FakeObjectStore::pending_uploads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return uploads_.size();
}

void FakeObjectStore::ResetCounters() {
  for (auto* counter : {&list_calls_, &head_calls_, &get_calls_, &put_calls_, &delete_calls_,
                        &create_multipart_calls_, &upload_part_calls_, &complete_multipart_calls_,
                        &abort_multipart_calls_, &get_bytes_}) {
    *counter = 0;
  }
}

Result<ListPage> FakeObjectStore::List(const ListRequest& request) {
  ++list_calls_;
  if (request.max_keys < 1) {
    return InvalidArgumentError("max_keys must be positive, not " +
                                std::to_string(request.max_keys));
  }
  const int max_keys = std::min(request.max_keys, kMaxListKeys);
  ListCursor cursor;
  if (!request.continuation_token.empty()) {
    TF_ASSIGN_OR_RETURN(cursor, DecodeToken(request.continuation_token));
  } else {
    cursor.bound = request.start_after;
  }
  const std::string& prefix = request.prefix;
  const std::string& delimiter = request.delimiter;

  std::lock_guard<std::mutex> lock(mu_);
  auto bucket_it = buckets_.find(request.bucket);
  if (bucket_it == buckets_.end()) return NoSuchBucket(request.bucket);
  const Bucket& bucket = bucket_it->second;
  auto it = cursor.bound < prefix ? bucket.lower_bound(prefix) : bucket.upper_bound(cursor.bound);
  // Keys in the range [bound, successor of bound) are contiguous and `it` is not before them.
  if (cursor.skip_prefix && it != bucket.end() && it->first.starts_with(cursor.bound)) {
    it = SkipPrefix(bucket, cursor.bound);
  }
  ListPage page;
  int count = 0;
  while (it != bucket.end() && it->first.starts_with(prefix)) {
    if (count == max_keys) {
      page.next_continuation_token = EncodeToken(cursor);
      break;
    }
    ++count;
    const std::string& key = it->first;
    size_t pos = delimiter.empty() ? std::string::npos : key.find(delimiter, prefix.size());
    if (pos != std::string::npos) {
      cursor = {key.substr(0, pos + delimiter.size()), true};
      page.common_prefixes.push_back(cursor.bound);
      it = SkipPrefix(bucket, cursor.bound);
      continue;
    }
    ObjectInfo info;
    info.key = key;
    info.size = it->second.data->size();
    info.etag = it->second.etag;
    info.last_modified = it->second.last_modified;
    page.objects.push_back(std::move(info));
    cursor = {key, false};
    ++it;
  }
  return page;
}

Result<ObjectInfo> FakeObjectStore::Head(const ObjectRef& object) {
  ++head_calls_;
  std::lock_guard<std::mutex> lock(mu_);
  auto bucket = buckets_.find(object.bucket);
  if (bucket == buckets_.end()) return NoSuchBucket(object.bucket);
  auto it = bucket->second.find(object.key);
  if (it == bucket->second.end()) {
    return NotFoundError("NoSuchKey: " + Describe(object));
  }
  ObjectInfo info;
  info.key = object.key;
  info.size = it->second.data->size();
  info.etag = it->second.etag;
  info.last_modified = it->second.last_modified;
  return info;
}

Result<GetResult> FakeObjectStore::Get(const GetRequest& request, ByteSink& sink) {
  ++get_calls_;
  const ObjectRef& object = request.object;
  std::shared_ptr<const std::string> data;
  std::string etag;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto bucket = buckets_.find(object.bucket);
    if (bucket == buckets_.end()) return NoSuchBucket(object.bucket);
    auto it = bucket->second.find(object.key);
    if (it == bucket->second.end()) return NotFoundError("NoSuchKey: " + Describe(object));
    data = it->second.data;
    etag = it->second.etag;
  }
  if (!request.if_match.empty() && request.if_match != etag) {
    return PreconditionFailedError("PreconditionFailed: " + Describe(object) + " has ETag " + etag +
                                   ", not " + request.if_match);
  }
  const uint64_t size = data->size();
  uint64_t begin = 0;
  uint64_t end = size;
  if (request.range) {
    if (request.range->begin >= request.range->end) {
      return InvalidArgumentError("empty byte range [" + std::to_string(request.range->begin) +
                                  ", " + std::to_string(request.range->end) + ") for " +
                                  Describe(object));
    }
    if (request.range->begin >= size) {
      return InvalidArgumentError("InvalidRange: range begins at " +
                                  std::to_string(request.range->begin) + ", past the end of the " +
                                  std::to_string(size) + "-byte object " + Describe(object));
    }
    begin = request.range->begin;
    end = std::min(request.range->end, size);
  }
  TF_RETURN_IF_ERROR(sink.Begin(GetResult{etag, size, 0}));
  const size_t chunk = get_chunk_size_;
  for (uint64_t pos = begin; pos < end;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(chunk, end - pos));
    TF_RETURN_IF_ERROR(sink.Append(data->data() + pos, n));
    get_bytes_ += static_cast<int64_t>(n);
    pos += n;
  }
  return GetResult{etag, size, end - begin};
}

Result<std::string> FakeObjectStore::Put(const ObjectRef& object, std::string_view body) {
  ++put_calls_;
  TF_RETURN_IF_ERROR(CheckKey(object));
  // Copy and hash before taking the lock: other calls need not wait for a large body.
  auto data = std::make_shared<const std::string>(body);
  std::string etag = HexEtag(body);
  return Store(object, std::move(data), std::move(etag));
}

Status FakeObjectStore::Delete(const ObjectRef& object) {
  ++delete_calls_;
  std::lock_guard<std::mutex> lock(mu_);
  auto bucket = buckets_.find(object.bucket);
  if (bucket == buckets_.end()) return NoSuchBucket(object.bucket);
  bucket->second.erase(object.key);  // a missing key is not an error, as on S3
  return OkStatus();
}

Result<std::string> FakeObjectStore::CreateMultipartUpload(const ObjectRef& object) {
  ++create_multipart_calls_;
  TF_RETURN_IF_ERROR(CheckKey(object));
  std::lock_guard<std::mutex> lock(mu_);
  if (buckets_.find(object.bucket) == buckets_.end()) return NoSuchBucket(object.bucket);
  std::string id = "fake-upload-" + std::to_string(next_upload_id_++);
  uploads_[id] = Upload{object.bucket, object.key, {}};
  return id;
}

Result<std::string> FakeObjectStore::UploadPart(const ObjectRef& object,
                                                const std::string& upload_id, int part_number,
                                                std::string_view body) {
  ++upload_part_calls_;
  if (part_number < 1 || part_number > kMaxPartNumber) {
    return InvalidArgumentError("part number " + std::to_string(part_number) + " of " +
                                Describe(object) + " is outside [1, 10000]");
  }
  auto data = std::make_shared<const std::string>(body);
  std::string etag = HexEtag(body);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = uploads_.find(upload_id);
  if (it == uploads_.end() || it->second.bucket != object.bucket || it->second.key != object.key) {
    return NotFoundError("NoSuchUpload: no upload '" + upload_id + "' for " + Describe(object));
  }
  it->second.parts[part_number] = Part{std::move(data), etag};
  return etag;
}

Result<std::string> FakeObjectStore::CompleteMultipartUpload(
    const ObjectRef& object, const std::string& upload_id,
    const std::vector<CompletedPart>& parts) {
  ++complete_multipart_calls_;
  std::vector<std::shared_ptr<const std::string>> bodies;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = uploads_.find(upload_id);
    if (it == uploads_.end() || it->second.bucket != object.bucket ||
        it->second.key != object.key) {
      return NotFoundError("NoSuchUpload: no upload '" + upload_id + "' for " + Describe(object));
    }
    if (parts.empty()) {
      return InvalidArgumentError("MalformedXML: no parts to complete " + Describe(object));
    }
    const std::map<int, Part>& uploaded = it->second.parts;
    for (size_t i = 0; i < parts.size(); ++i) {
      const CompletedPart& part = parts[i];
      std::string which = "part " + std::to_string(part.part_number) + " of " + Describe(object);
      if (i > 0 && part.part_number <= parts[i - 1].part_number) {
        return InvalidArgumentError("InvalidPartOrder: " + which + " follows part " +
                                    std::to_string(parts[i - 1].part_number));
      }
      auto found = uploaded.find(part.part_number);
      if (found == uploaded.end()) {
        return InvalidArgumentError("InvalidPart: " + which + " was not uploaded");
      }
      if (found->second.etag != part.etag) {
        return InvalidArgumentError("InvalidPart: " + which + " has ETag " + found->second.etag +
                                    ", not " + part.etag);
      }
      bodies.push_back(found->second.data);
    }
    // Sizes only once every part is known to be right, so a wrong list reports as such.
    for (size_t i = 0; i + 1 < bodies.size(); ++i) {
      if (bodies[i]->size() < min_part_size_) {
        return InvalidArgumentError(
            "EntityTooSmall: part " + std::to_string(parts[i].part_number) + " of " +
            Describe(object) + " is " + std::to_string(bodies[i]->size()) +
            " bytes, less than the minimum " + std::to_string(min_part_size_.load()));
      }
    }
  }
  // Assemble outside the lock; the parts are immutable.
  size_t total = 0;
  for (const auto& body : bodies) total += body->size();
  auto data = std::make_shared<std::string>();
  data->reserve(total);
  std::string etags;
  for (size_t i = 0; i < bodies.size(); ++i) {
    data->append(*bodies[i]);
    etags += parts[i].etag;
  }
  std::string etag = HexEtag(etags) + "-" + std::to_string(parts.size());
  auto now = Now();
  std::lock_guard<std::mutex> lock(mu_);
  // An Abort may have won the race while the lock was released.
  if (uploads_.erase(upload_id) == 0) {
    return NotFoundError("NoSuchUpload: no upload '" + upload_id + "' for " + Describe(object));
  }
  auto bucket = buckets_.find(object.bucket);
  if (bucket == buckets_.end()) return NoSuchBucket(object.bucket);
  bucket->second[object.key] = Object{std::move(data), etag, now};
  return etag;
}

Status FakeObjectStore::AbortMultipartUpload(const ObjectRef& object,
                                             const std::string& upload_id) {
  ++abort_multipart_calls_;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = uploads_.find(upload_id);
  if (it == uploads_.end() || it->second.bucket != object.bucket || it->second.key != object.key) {
    return NotFoundError("NoSuchUpload: no upload '" + upload_id + "' for " + Describe(object));
  }
  uploads_.erase(it);
  return OkStatus();
}

std::string FakeObjectStore::Describe(const ObjectRef& object) const {
  return MemUri(object.bucket, object.key);
}

}  // namespace trainfeed
