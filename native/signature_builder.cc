#include "signature_builder.h"

#include <algorithm>
#include <cstring>

#include "parallel.h"
#include "weak.h"

namespace ds {

void block_entry(const BlockParams& params, const uint8_t* block, size_t len, uint8_t* out) {
  const size_t width = weak_width(params.rolling);
  store_be(out, weak_digest(params.rolling, block, len), width);
  uint8_t strong[kMaxStrongLen];
  strong_sum(params.strong, block, len, strong);
  std::memcpy(out + width, strong, params.strong_len);
}

SignatureBuilder::SignatureBuilder(const BlockParams& params) : params_(params) {
  partial_.reserve(params.block_len);
}

void SignatureBuilder::emit_blocks(const uint8_t* data, size_t blocks, size_t block_len,
                                   std::vector<uint8_t>* out) {
  const size_t entry = params_.entry_size();
  const size_t base = out->size();
  out->resize(base + blocks * entry);
  uint8_t* dst = out->data() + base;
  // Blocks are independent: big chunks are hashed on all cores.
  const size_t min_blocks_per_slice = std::max<size_t>(1, (size_t{1} << 20) / block_len);
  parallel_for(blocks, min_blocks_per_slice, [&](size_t begin, size_t end) {
    for (size_t b = begin; b < end; ++b) block_entry(params_, data + b * block_len, block_len, dst + b * entry);
  });
}

void SignatureBuilder::update(const uint8_t* data, size_t len, std::vector<uint8_t>* out) {
  const size_t n = params_.block_len;
  if (!partial_.empty()) {
    const size_t take = std::min(len, n - partial_.size());
    partial_.insert(partial_.end(), data, data + take);
    data += take;
    len -= take;
    if (partial_.size() < n) return;
    emit_blocks(partial_.data(), 1, n, out);
    partial_.clear();
  }
  const size_t blocks = len / n;
  if (blocks) emit_blocks(data, blocks, n, out);
  partial_.assign(data + blocks * n, data + len);
}

void SignatureBuilder::finish(std::vector<uint8_t>* out) {
  if (partial_.empty()) return;
  const size_t base = out->size();
  out->resize(base + params_.entry_size());
  block_entry(params_, partial_.data(), partial_.size(), out->data() + base);
  partial_.clear();
}

}  // namespace ds
