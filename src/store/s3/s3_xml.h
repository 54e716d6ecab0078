// The XML bodies of the S3 REST API (2006-03-01): parsing the responses the S3 store reads and
// building the one request body it sends. Pure functions of their input, so they are tested on
// golden bodies and fuzzed. Untrusted input never crashes or throws: a body that is not what S3
// sends is an InvalidArgument naming the document, never a partly filled result.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "store/object_store.h"

namespace trainfeed {

// One page of a ListObjectsV2 response. When the body says <EncodingType>url</EncodingType> (the
// store always sends encoding-type=url, because XML 1.0 cannot carry every byte a key may hold),
// keys and common prefixes are decoded as botocore does: S3 form-encodes them, so '+' is a space
// and a literal '+' arrives as %2B. A server that ignores the parameter sends raw keys and no
// EncodingType, and they are kept as they are. ETag quotes are stripped.
// Errors: an <Error> body maps like an HTTP error; IsTruncated=true without a
// NextContinuationToken is DataLoss, since the rest of the listing cannot be requested.
Result<ListPage> ParseListObjectsV2(std::string_view body);

// The body S3 sends with an error status (and sometimes with 200):
// <Error><Code>NoSuchBucket</Code><Message>..</Message><BucketName>..</BucketName>
// <RequestId>..</RequestId>..</Error>.
struct S3Error {
  std::string code;  // "NoSuchKey"; may be empty if the server sent none
  std::string message;
  std::string resource;  // Resource, else BucketName[/Key]; may be empty
  std::string request_id;
};

// nullopt if `body` is not an XML document whose root is <Error> (HEAD replies, HTML from a
// proxy, an empty body).
std::optional<S3Error> ParseS3Error(std::string_view body);

// The UploadId of an InitiateMultipartUploadResult.
Result<std::string> ParseInitiateMultipartUpload(std::string_view body);

// The ETag (quotes stripped) of a CompleteMultipartUploadResult. S3 answers 200 before it has
// finished assembling the parts, so the body may be an <Error> instead: that is returned as an
// error (InternalError and SlowDown are Unavailable; a code we do not know is Internal). An empty
// <ETag> (Ceph RGW sends one) gives "": the caller looks the ETag up with HEAD.
Result<std::string> ParseCompleteMultipartUpload(std::string_view body);

// <CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><PartNumber>1
// </PartNumber><ETag>"etag"</ETag></Part>...</CompleteMultipartUpload>, parts in the given
// order, ETags quoted (unless already) and XML-escaped.
std::string BuildCompleteMultipartUploadBody(const std::vector<CompletedPart>& parts);

// What a failed S3 call means to the caller. The S3 code decides when it is one we know (400
// RequestTimeout is worth a retry, 403 AccessDenied is not); otherwise the HTTP status does:
// 401/403 PermissionDenied, 404 NotFound, 412 PreconditionFailed, 408/429/5xx Unavailable,
// other 3xx/4xx InvalidArgument, anything else (an <Error> in a 200) Internal.
ErrorCode ErrorCodeForHttp(long http_status, std::string_view s3_code);

// One line for messages, e.g. "NoSuchBucket: The specified bucket does not exist (request id
// TX123)", or "HTTP 503" when there was no error body. Control characters become spaces and a
// long server message is cut.
std::string DescribeS3Error(long http_status, const std::optional<S3Error>& error);

}  // namespace trainfeed
