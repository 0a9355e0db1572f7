// The streaming block-match search (the sender side of the rsync algorithm).
//
// New data arrives in large chunks; the matcher keeps at most one window of bytes between
// calls. Output is a list of ops — COPY(basis offset, length) with consecutive blocks merged
// (also across calls),
// LITERAL(length) with the bytes appended to a literal buffer — so the JS side handles one
// op per run, never one per block.
#pragma once
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "block_params.h"
#include "match_index.h"
#include "search.h"

namespace ds {

struct MatchOutput {
  // Triples: kind, a, b — see lib/native.ts. 0 copy (basis offset, length); 1 literal (length,
  // bytes appended to `literals`); 2 literal still in the caller's input chunk (offset in the
  // chunk, length): most literal bytes are never copied, which matters on unrelated data.
  std::vector<double> ops;
  std::vector<uint8_t> literals;
  // Full-length strong hash of every block the copies in `ops` cover, in order (the sender's
  // half of the deltasync v2 block digest, docs/FORMAT.md): computed anyway to confirm the match.
  std::vector<uint8_t> digests;
  // The chunk given to update(), so literals inside it can be referenced instead of copied.
  const uint8_t* input = nullptr;
  size_t input_len = 0;
  void clear() {
    ops.clear();
    literals.clear();
    digests.clear();
  }
};

// A sparse signature (docs/PROTOCOL.md "Sparse signatures"): full entries (weak + strong) only
// for anchor blocks — every stride-th block and the last one — and a short check (a prefix of the
// block's full strong hash) for every block. The search finds anchors; the blocks around an
// anchor match are confirmed by their checks at the grid offsets the anchor implies, forwards
// and backwards. Roughly a quarter of the bytes of a full signature; the price is that a changed
// block passes its check with probability 2^-(8 * check_len), which the whole-file hash catches.
// The last stride blocks of a literal run stay pending between update() calls, so backward
// confirmation, like everything else, does not depend on how the input is chunked.
struct SparseLayout {
  size_t stride = 1;                // 1: not sparse
  const uint8_t* checks = nullptr;  // count * check_len bytes
  size_t check_len = 0;
};

// Number of anchor blocks of a sparse signature of `count` blocks.
inline size_t sparse_anchor_count(size_t count, size_t stride) {
  if (count == 0) return 0;
  const size_t every = (count - 1) / stride + 1;
  return (count - 1) % stride == 0 ? every : every + 1;
}

struct MatchStats {
  uint64_t weak_hits = 0;     // offsets whose weak sum equalled some block's
  uint64_t strong_calcs = 0;  // strong sums computed over a window
  uint64_t strong_hits = 0;   // confirmed matches
  uint64_t chain_capped = 0;  // lookups cut short by the candidate cap
  uint64_t distrusted = 0;    // weak sums dropped after repeated strong-check failures
  uint64_t sliced_batches = 0;  // batches searched on several threads at once
};

class Matcher {
 public:
  // Most candidates with an equal weak sum tried at one offset: bounds the work a signature
  // full of colliding weak sums can cause (the hash-flood class fixed in rsync 3.5).
  static constexpr size_t kCandidateCap = 32;
  // A weak sum that passed the weak check this many times with no strong match at all is no
  // longer trusted: a signature whose blocks share one weak sum (or data that keeps hitting a
  // colliding one) would otherwise cost a strong hash at every byte offset. The price is at
  // most missed matches for that weak sum.
  static constexpr uint32_t kDistrustAfter = 8;
  // ... and only once the bytes hashed in failed strong checks exceed the bytes scanned plus
  // this many blocks.
  static constexpr uint64_t kFloodSlackBlocks = 64;

  // last_block_len: length of the basis's last block if known (deltasync signatures record
  // the file size), 0 if unknown (librsync signatures).
  // in_place: the receiver rebuilds the file over its basis (--inplace), so a block is only
  // accepted at a stream offset at or before its basis offset; an earlier offset would read
  // bytes the receiver has already overwritten (rsync's rule).
  // With a sparse layout, `entries` holds the anchor entries only (sparse_anchor_count of them),
  // and `count` is the number of blocks of the basis.
  Matcher(const BlockParams& params, const uint8_t* entries, size_t count, size_t last_block_len,
          bool in_place = false, const SparseLayout& sparse = SparseLayout{});

  void update(const uint8_t* data, size_t len, MatchOutput* out);
  // Matches the tail (short windows) and flushes. No updates afterwards.
  void finish(MatchOutput* out);
  const MatchStats& stats() const { return stats_; }
  // Which batched search runs on long no-match stretches: by default the variant of the SIMD
  // level in force when the matcher was made; nullptr rolls byte by byte. For tests, which check
  // that every choice gives the same ops.
  void set_search(SearchFn fn) { search_ = fn; }
  // Threads a long batch is searched on (search_sliced): by default worker_threads(). For tests,
  // which check that the ops do not depend on it.
  void set_search_slices(size_t slices) { search_slices_ = slices; }

  // Windows rolled byte by byte after a fresh window before batches start (short resyncs after an
  // edit stay cheap), and the first and largest batch. Batches grow with the stretch, so the work
  // past a match that ends one is bounded by the stretch itself; large ones amortise starting
  // their lanes (one window's sum per lane).
  static constexpr size_t kScalarLead = 512;
  static constexpr size_t kMinBatch = 2048;
  static constexpr size_t kMaxBatchWindows = kMaxBatch;

 private:
  struct View {
    const uint8_t* p;
    uint64_t base;  // stream offset of p[0]
    uint64_t end;   // stream offset one past the last byte
  };
  template <typename R>
  void scan(R& roll, const View& v, uint64_t stop_before, MatchOutput* out);
  template <typename R>
  void scan_tail(R roll, const View& v, MatchOutput* out);
  void run_scan(const View& v, uint64_t stop_before, MatchOutput* out);
  // Index id of a block (the index holds anchors only when sparse), or -1 if not indexed.
  int64_t id_of(size_t block) const {
    if (stride_ == 1) return static_cast<int64_t>(block);
    if (block % stride_ == 0) return static_cast<int64_t>(block / stride_);
    return block + 1 == count_ ? static_cast<int64_t>(index_.count() - 1) : -1;
  }
  size_t block_of(size_t id) const { return id + 1 == index_.count() ? count_ - 1 : id * stride_; }
  // Does the window whose full strong hash is `digest` hold block `block`, by the continuation
  // rule (the check of a sparse signature, or the whole strong sum when that is long enough)?
  bool continues(size_t block, const uint8_t* digest) const;
  // The continuation at the grid offset after a copy: confirmed by its strong hash alone, no
  // weak sum computed (most of the work on similar data). True if it matched (digest left in
  // match_digest_).
  bool try_continue(const uint8_t* p, uint64_t at);
  // Sparse only: blocks before an anchor matched at view index i, confirmed by their checks at
  // the grid offsets the anchor implies, back to `lit` at most. Returns the new start of the copy
  // run; the blocks' digests are left in back_digests_ in stream order.
  size_t extend_back(size_t block, const uint8_t* p, size_t lit, size_t i, uint64_t base);
  // Emits the literal before a match at view index i, the blocks extend_back found, and the block.
  void emit_match(size_t block, const uint8_t* p, size_t lit, size_t i, uint64_t base, MatchOutput* out);
  // Block that matches the window at p (full block length), or -1.
  // at: stream offset of the window (for the flood budget).
  // On success the window's full strong hash is left in match_digest_.
  int64_t find(uint64_t weak, const uint8_t* p, size_t len, uint64_t at);
  // May block `block` be copied to stream offset `at`? (in-place rule above)
  bool placeable(size_t block, uint64_t at) const {
    return !in_place_ || static_cast<uint64_t>(block) * params_.block_len >= at;
  }
  // id: index id of the candidate (== block unless sparse).
  bool strong_matches(size_t id, const uint8_t* p, size_t len, uint8_t* digest, bool* have_digest);
  // Hash-flood defence: a weak sum whose strong checks keep failing is dropped from the index.
  void note_failure(uint64_t weak, uint64_t at);
  void note_success(uint64_t weak);
  void emit_literal(const uint8_t* p, size_t len, MatchOutput* out);
  void emit_copy(size_t block, size_t len, MatchOutput* out);
  void flush_copy(MatchOutput* out);
  void set_next(size_t block);

  BlockParams params_;
  MatchIndex index_;
  size_t count_;
  size_t last_block_len_;
  MatchStats stats_;

  // Streaming state. pos_ is the stream offset of the current window; bytes before it are
  // already emitted. carry_ holds [pos_, end of data seen).
  uint64_t pos_ = 0;
  uint64_t lit_start_ = 0;
  uint64_t seen_ = 0;
  std::vector<uint8_t> carry_;
  std::vector<uint8_t> join_;
  bool win_valid_ = false;  // rolling state holds the window at pos_
  bool checked_ = false;    // and it has been looked up already
  bool finished_ = false;
  uint64_t pending_copy_offset_ = 0;
  uint64_t pending_copy_len_ = 0;
  // Digests of the blocks of the pending copy; a copy is flushed early once this is large, so
  // memory stays bounded on long runs of small blocks.
  std::vector<uint8_t> pending_digests_;
  static constexpr size_t kMaxPendingDigestBytes = 1 << 20;
  // Long runs go out in pieces of this size so a receiver can start copying while the rest is
  // still being matched (an identical 1 GiB file would otherwise be one COPY at the very end).
  // lib/delta.ts merges copies only up to the same length.
  static constexpr uint64_t kMaxCopyRunBytes = 32 << 20;
  uint8_t match_digest_[kMaxStrongLen] = {};
  size_t digest_len_ = 0;
  bool in_place_ = false;
  // Weak sum -> strong-check failures (kTrusted once one matched); bounded, see note_failure.
  static constexpr uint32_t kTrusted = UINT32_MAX;
  std::unordered_map<uint64_t, uint32_t> failures_;
  uint64_t failed_bytes_ = 0;
  // rsync's preference: after block j matched, try j + 1 first.
  bool has_next_ = false;
  size_t next_block_ = 0;
  size_t next_id_ = 0;
  uint64_t next_weak_ = 0;
  // The block expected at the grid offset right after the last copy (try_continue), if any.
  bool cont_ = false;
  size_t cont_block_ = 0;
  // Dense signatures continue on the strong sum alone only when it is this long (bytes): the
  // weak sum's bits are then not needed to keep false matches negligible.
  static constexpr size_t kMinContinueStrongLen = 8;
  bool dense_continue_ = false;
  size_t stride_ = 1;
  std::vector<uint8_t> checks_;
  size_t check_len_ = 0;
  std::vector<uint8_t> back_digests_;
  // Sparse: literal bytes kept pending at the end of an update (a stride of blocks), so backward
  // confirmation does not depend on where the input was cut; 0 for dense signatures.
  uint64_t hold_ = 0;
  bool holding_ = true;
  SearchFn search_ = nullptr;
  size_t search_slices_ = 1;
  uint32_t rk_mult_n_ = 1;  // M^n, RabinKarp windows
  size_t rolled_ = 0;       // windows rolled since the last fresh window
  std::vector<Candidate> candidates_;
  // Rolling state of every kind; only the one of params_.rolling is used.
  Ds64 ds64_;
  Rollsum rollsum_;
  RabinKarp rabinkarp_;
};

}  // namespace ds
