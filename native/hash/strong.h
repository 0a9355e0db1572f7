// Strong (cryptographic-class) block and whole-file hashes, selected by kind.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ds {

enum class StrongKind : uint8_t { Xxh3 = 0, Md4 = 1, Blake2b = 2 };

constexpr size_t kMaxStrongLen = 32;

// Full digest length of a kind: XXH3-128 16, MD4 16, BLAKE2b as librsync uses it 32.
size_t strong_full_len(StrongKind kind);

// One-shot digest of data; writes strong_full_len(kind) bytes to out.
// Byte order is each algorithm's canonical one (XXH3-128 big-endian as xxhsum prints it).
void strong_sum(StrongKind kind, const uint8_t* data, size_t len, uint8_t* out);

// Streaming digest for whole files.
class StrongHasher {
 public:
  explicit StrongHasher(StrongKind kind);
  ~StrongHasher();
  StrongHasher(const StrongHasher&) = delete;
  StrongHasher& operator=(const StrongHasher&) = delete;
  void update(const uint8_t* data, size_t len);
  // Writes strong_full_len(kind) bytes; the hasher may not be updated afterwards.
  void digest(uint8_t* out);
  StrongKind kind() const { return kind_; }

 private:
  StrongKind kind_;
  void* state_;
};

}  // namespace ds
