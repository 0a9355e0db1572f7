// A pure delta applier: in-memory basis + delta -> output, through the streaming decoder, with
// an output cap and the deltasync block digest check (v2). The real patch path is lib/patch.ts
// (files, streams, async basis reads); this one exists so the fuzz harnesses and tests exercise
// decoding and applying together on hostile input.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "format/status.h"

namespace ds::format {

struct ApplyResult {
  bool verified = false;  // a deltasync result digest was present and matched
  uint64_t copied_bytes = 0;
  uint64_t literal_bytes = 0;
};

// Feeds the delta to the decoder in pieces of chunk_sizes[0], chunk_sizes[1], ... (cycled; a
// 0 pushes an empty chunk; no sizes = one piece). Output beyond max_output is ERR_BAD_PARAMS.
Status apply_delta(const uint8_t* basis, size_t basis_len, const uint8_t* delta, size_t delta_len,
                   const size_t* chunk_sizes, size_t chunk_count, uint64_t max_output, std::vector<uint8_t>* out,
                   ApplyResult* result);

}  // namespace ds::format
