// libFuzzer harness: deltasync deltas (dsDL), decoded in random chunkings and applied.
// Input = one control byte (the chunking, see delta_harness.h) + the delta.
#include "delta_harness.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::run_delta(ds::format::DeltaFormat::Deltasync, data, size);
}
