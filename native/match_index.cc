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
    : kind_(params.rolling), strong_len_(params.strong_len) {
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
  indexed_ = indexed;

  // Two to four filter words (64 to 128 bits) per block: about 0.27% of foreign windows pass
  // (docs/ROLLING.md). At the cap (16 MiB) the rate rises gracefully, it never misses.
  const unsigned word_bits = std::min(kFilterMaxBits, std::max(4u, log2_ceil(std::max<size_t>(indexed, 1) * 2)));
  filter_shift_ = 32 - word_bits;
  s1_bias_ = kCharOffset * static_cast<uint32_t>(params.block_len);
  words_.assign(size_t{1} << word_bits, 0);
  const unsigned bucket_bits = std::max(4u, log2_ceil(std::max<size_t>(indexed, 1) * 2));
  bucket_shift_ = 64 - bucket_bits;
  const size_t buckets = size_t{1} << bucket_bits;
  starts_.assign(buckets + 1, 0);
  fill_filter();
  for (size_t i = 0; i < indexed; ++i) ++starts_[bucket(weaks_[i]) + 1];
  for (size_t b = 0; b < buckets; ++b) starts_[b + 1] += starts_[b];
  ids_.resize(indexed);
  std::vector<uint32_t> fill(starts_.begin(), starts_.end() - 1);
  for (size_t i = 0; i < indexed; ++i) ids_[fill[bucket(weaks_[i])]++] = static_cast<uint32_t>(i);
}

void MatchIndex::fill_filter() {
  const Prefilter f = filter();
  std::fill(words_.begin(), words_.end(), 0);
  for (size_t i = 0; i < indexed_; ++i) {
    if (excluded(i)) continue;
    const uint32_t key = f.key(kind_, weaks_[i]);
    words_[f.word_of(key)] |= Prefilter::mask_of(key);
  }
}

void MatchIndex::distrust(uint64_t weak) {
  if (excluded_.empty()) excluded_.assign(weaks_.size(), 0);
  for (size_t i = 0; i < weaks_.size(); ++i) {
    if (weaks_[i] == weak) excluded_[i] = 1;
  }
  fill_filter();
}

}  // namespace ds
