// Index from weak sums to signature blocks: a blocked bloom filter (search.h) that rejects most
// offsets with one L1/L2 load, then buckets of block ids (CSR layout, no per-entry allocation).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "block_params.h"
#include "search.h"

namespace ds {

class MatchIndex {
 public:
  // entries: count packed entries (weak big-endian + strong). Blocks whose length is not the
  // full block length (a known short last block) are left out of the index: only the tail
  // search can match them.
  MatchIndex(const BlockParams& params, const uint8_t* entries, size_t count, size_t last_block_len);

  size_t count() const { return weaks_.size(); }
  uint64_t weak(size_t block) const { return weaks_[block]; }
  bool strong_equals(size_t block, const uint8_t* digest) const {
    return std::memcmp(strongs_.data() + block * strong_len_, digest, strong_len_) == 0;
  }
  // The prefilter as plain values, for hot loops: reads through uint8_t pointers may alias
  // anything, so members would be reloaded on every byte. Every indexed block's weak sum passes it
  // (so does the matcher's preferred next block, which is always indexed).
  Prefilter filter() const { return Prefilter{words_.data(), filter_shift_, s1_bias_}; }
  // False means the weak sum is certainly absent.
  bool maybe(uint64_t weak) const { return filter().maybe(kind_, weak); }
  // Starts loading the bucket a later lookup of this weak sum will read (batched candidates).
  void prefetch(uint64_t weak) const { __builtin_prefetch(starts_.data() + bucket(weak)); }
  // Takes every block with this weak sum out of the filter and the lookups (hash-flood defence:
  // see Matcher::note_failure). Rebuilds the filter in place, so Prefilter copies stay valid.
  void distrust(uint64_t weak);
  bool excluded(size_t block) const { return !excluded_.empty() && excluded_[block]; }
  // Block ids whose weak sum falls in the same bucket (callers compare the weak sum).
  const uint32_t* bucket_begin(uint64_t weak) const { return ids_.data() + starts_[bucket(weak)]; }
  const uint32_t* bucket_end(uint64_t weak) const { return ids_.data() + starts_[bucket(weak) + 1]; }

 private:
  // Folds the high half in first: for ds64 the low half (s1) alone has little entropy.
  static uint64_t mix(uint64_t w) { return (w ^ (w >> 29) ^ (w >> 32)) * 0x9E3779B97F4A7C15ull; }
  size_t bucket(uint64_t weak) const { return static_cast<size_t>((mix(weak) << 7) >> bucket_shift_); }

  void fill_filter();

  RollingKind kind_;
  size_t strong_len_;
  size_t indexed_ = 0;
  std::vector<uint8_t> excluded_;  // per block; empty until something is distrusted
  std::vector<uint64_t> weaks_;
  std::vector<uint8_t> strongs_;
  std::vector<uint32_t> words_;
  unsigned filter_shift_ = 0;
  uint32_t s1_bias_ = 0;
  std::vector<uint32_t> starts_;
  std::vector<uint32_t> ids_;
  unsigned bucket_shift_ = 0;
};

}  // namespace ds
