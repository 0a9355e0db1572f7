#include "format/magic.h"

namespace ds::format {

const char* family_name(Family f) { return f == Family::Rdiff ? "rdiff" : "deltasync"; }
const char* kind_name(FileKind k) { return k == FileKind::Delta ? "delta" : "signature"; }

bool identify_magic(uint32_t magic, Family* family, FileKind* kind) {
  switch (magic) {
    case kDsSigMagic:
      *family = Family::Deltasync;
      *kind = FileKind::Signature;
      return true;
    case kDsDeltaMagic:
      *family = Family::Deltasync;
      *kind = FileKind::Delta;
      return true;
    case kRsMd4SigMagic:
    case kRsBlake2SigMagic:
    case kRsRkMd4SigMagic:
    case kRsRkBlake2SigMagic:
      *family = Family::Rdiff;
      *kind = FileKind::Signature;
      return true;
    case kRsDeltaMagic:
      *family = Family::Rdiff;
      *kind = FileKind::Delta;
      return true;
    default:
      return false;
  }
}

Status expect_magic(const uint8_t* data, size_t len, FileKind want, Family* family) {
  const std::string what = kind_name(want);
  if (len < 4) {
    return Status::fail(ErrorKind::Truncated,
                        len == 0 ? "empty " + what : what + " truncated inside the magic number");
  }
  const uint32_t magic = static_cast<uint32_t>(read_be(data, 4));
  FileKind kind;
  if (!identify_magic(magic, family, &kind)) {
    return Status::fail(ErrorKind::BadMagic, "not a " + what + " (unknown magic " + hex_padded(magic, 8) + ")");
  }
  if (kind != want) {
    return Status::fail(ErrorKind::BadMagic, "expected a " + what + " but got a " + family_name(*family) + " " +
                                                 kind_name(kind));
  }
  return {};
}

}  // namespace ds::format
