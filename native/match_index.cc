#include "match_index.h"

#include <algorithm>

namespace ds {
namespace {
unsigned log2_ceil(size_t v) {
  unsigned bits = 0;
  while ((size_t{1} << bits) < v) ++bits;
  return bits;
}
}  // namespace

MatchIndex::MatchIndex(const BlockParams& params, const uint8_t* entries, size_t count,
                       size_t last_block_len)
    : strong_len_(params.strong_len) {
  const size_t width = weak_width(params.rolling);
  const size_t entry = params.entry_size();
  weaks_.resize(count);
  strongs_.resize(count * strong_len_);
  for (size_t i = 0; i < count; ++i) {
    weaks_[i] = load_be(entries + i * entry, width);
    std::memcpy(strongs_.data() + i * strong_len_, entries + i * entry + width, strong_len_);
  }
  const bool short_last = count > 0 && last_block_len > 0 && last_block_len < params.block_len;
  const size_t indexed = short_last ? count - 1 : count;

  // 16 bits of bloom per block keeps the false-positive rate near 6%.
  const unsigned bloom_bits = std::max(12u, log2_ceil(std::max<size_t>(indexed, 1) * 16));
  bloom_shift_ = 64 - bloom_bits;
  bloom_.assign((size_t{1} << bloom_bits) / 64, 0);
  const unsigned bucket_bits = std::max(4u, log2_ceil(std::max<size_t>(indexed, 1) * 2));
  bucket_shift_ = 64 - bucket_bits;
  const size_t buckets = size_t{1} << bucket_bits;
  starts_.assign(buckets + 1, 0);
  for (size_t i = 0; i < indexed; ++i) {
    const uint64_t bit = mix(weaks_[i]) >> bloom_shift_;
    bloom_[bit >> 6] |= uint64_t{1} << (bit & 63);
    ++starts_[bucket(weaks_[i]) + 1];
  }
  for (size_t b = 0; b < buckets; ++b) starts_[b + 1] += starts_[b];
  ids_.resize(indexed);
  std::vector<uint32_t> fill(starts_.begin(), starts_.end() - 1);
  for (size_t i = 0; i < indexed; ++i) ids_[fill[bucket(weaks_[i])]++] = static_cast<uint32_t>(i);
}

}  // namespace ds
