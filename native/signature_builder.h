// Builds signature block entries from data fed in large chunks (any split).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "block_params.h"

namespace ds {

class SignatureBuilder {
 public:
  explicit SignatureBuilder(const BlockParams& params);
  // Appends the entries of every block completed by this data to out.
  void update(const uint8_t* data, size_t len, std::vector<uint8_t>* out);
  // Reads up to len bytes of the file fd from offset and feeds them like update(). Whole
  // blocks are split across cores and each core reads its own slice into a small buffer and
  // hashes it while it is still in cache: the page-cache copy, not only the hashing, runs in
  // parallel, and the data crosses memory once. Returns the bytes read: fewer than len only
  // at end of file. Throws std::system_error on a read error, std::runtime_error when the
  // file ends in the middle of the range but has data further on (it changed while read).
  size_t update_from_fd(int fd, uint64_t offset, size_t len, std::vector<uint8_t>* out);
  // Appends the entry of the trailing partial block, if any. No updates afterwards.
  void finish(std::vector<uint8_t>* out);
  const BlockParams& params() const { return params_; }

 private:
  void emit_blocks(const uint8_t* data, size_t blocks, size_t block_len, std::vector<uint8_t>* out);
  BlockParams params_;
  std::vector<uint8_t> partial_;
};

// Writes one entry (weak big-endian, then the truncated strong sum) for a block.
void block_entry(const BlockParams& params, const uint8_t* block, size_t len, uint8_t* out);

}  // namespace ds
