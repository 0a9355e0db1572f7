// Strong hash selection by kind. strong_sum runs once per block in the signature builder and
// the matcher, so it works on the stack: no allocation, no dispatch beyond one switch.
#include "strong.h"

#include "blake2b.h"
#include "md4.h"
#include "xxh3.h"

namespace ds {

namespace {
constexpr size_t kBlake2bLen = 32;  // librsync's BLAKE2 signatures use BLAKE2b-256
}  // namespace

size_t strong_full_len(StrongKind kind) {
  switch (kind) {
    case StrongKind::Xxh3:
      return 16;
    case StrongKind::Md4:
      return 16;
    case StrongKind::Blake2b:
      return kBlake2bLen;
  }
  return 0;
}

void strong_sum(StrongKind kind, const uint8_t* data, size_t len, uint8_t* out) {
  switch (kind) {
    case StrongKind::Xxh3:
      xxh3_128(data, len, out);
      return;
    case StrongKind::Md4:
      md4(data, len, out);
      return;
    case StrongKind::Blake2b:
      blake2b(data, len, out, kBlake2bLen);
      return;
  }
}

StrongHasher::StrongHasher(StrongKind kind) : kind_(kind), state_(nullptr) {
  switch (kind) {
    case StrongKind::Xxh3: {
      auto* s = new Xxh3State;  // C++17 aligned new honours the 64-byte alignment
      xxh3_128_init(s);
      state_ = s;
      break;
    }
    case StrongKind::Md4: {
      auto* s = new Md4State;
      md4_init(s);
      state_ = s;
      break;
    }
    case StrongKind::Blake2b: {
      auto* s = new Blake2bState;
      blake2b_init(s, kBlake2bLen);
      state_ = s;
      break;
    }
  }
}

StrongHasher::~StrongHasher() {
  switch (kind_) {
    case StrongKind::Xxh3:
      delete static_cast<Xxh3State*>(state_);
      break;
    case StrongKind::Md4:
      delete static_cast<Md4State*>(state_);
      break;
    case StrongKind::Blake2b:
      delete static_cast<Blake2bState*>(state_);
      break;
  }
}

void StrongHasher::update(const uint8_t* data, size_t len) {
  switch (kind_) {
    case StrongKind::Xxh3:
      xxh3_128_update(static_cast<Xxh3State*>(state_), data, len);
      break;
    case StrongKind::Md4:
      md4_update(static_cast<Md4State*>(state_), data, len);
      break;
    case StrongKind::Blake2b:
      blake2b_update(static_cast<Blake2bState*>(state_), data, len);
      break;
  }
}

void StrongHasher::digest(uint8_t* out) {
  switch (kind_) {
    case StrongKind::Xxh3:
      xxh3_128_digest(static_cast<Xxh3State*>(state_), out);
      break;
    case StrongKind::Md4:
      md4_final(static_cast<Md4State*>(state_), out);
      break;
    case StrongKind::Blake2b:
      blake2b_final(static_cast<Blake2bState*>(state_), out);
      break;
  }
}

}  // namespace ds
