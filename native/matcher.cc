#include "matcher.h"

#include <algorithm>
#include <cstring>

#include "parallel.h"

namespace ds {

Matcher::Matcher(const BlockParams& params, const uint8_t* entries, size_t count, size_t last_block_len,
                 bool in_place, const SparseLayout& sparse)
    : params_(params),
      index_(params, entries, sparse.stride > 1 ? sparse_anchor_count(count, sparse.stride) : count, last_block_len),
      count_(count),
      last_block_len_(last_block_len),
      search_(search_for(simd_level())),
      search_slices_(worker_threads()),
      rk_mult_n_(rk_pow_geom(params.block_len).pow) {
  carry_.reserve(params.block_len);
  digest_len_ = strong_full_len(params.strong);
  in_place_ = in_place;
  if (sparse.stride > 1) {
    stride_ = sparse.stride;
    hold_ = static_cast<uint64_t>(stride_) * params.block_len;
    check_len_ = sparse.check_len;
    checks_.assign(sparse.checks, sparse.checks + count * check_len_);
  } else {
    dense_continue_ = params.strong_len >= kMinContinueStrongLen;
  }
}

bool Matcher::continues(size_t block, const uint8_t* digest) const {
  if (stride_ > 1) return std::memcmp(checks_.data() + block * check_len_, digest, check_len_) == 0;
  return index_.strong_equals(block, digest);
}

bool Matcher::try_continue(const uint8_t* p, uint64_t at) {
  if (!cont_) return false;
  cont_ = false;
  if (!placeable(cont_block_, at)) return false;
  uint8_t digest[kMaxStrongLen];
  strong_sum(params_.strong, p, params_.block_len, digest);
  ++stats_.strong_calcs;
  if (!continues(cont_block_, digest)) return false;
  ++stats_.strong_hits;
  std::memcpy(match_digest_, digest, digest_len_);
  return true;
}

size_t Matcher::extend_back(size_t block, const uint8_t* p, size_t lit, size_t i, uint64_t base) {
  back_digests_.clear();
  if (stride_ == 1) return i;
  const size_t n = params_.block_len;
  size_t start = i;
  uint8_t digest[kMaxStrongLen];
  while (block > 0 && start >= lit + n && placeable(block - 1, base + start - n)) {
    strong_sum(params_.strong, p + start - n, n, digest);
    ++stats_.strong_calcs;
    if (!continues(block - 1, digest)) break;
    ++stats_.strong_hits;
    back_digests_.insert(back_digests_.begin(), digest, digest + digest_len_);
    start -= n;
    --block;
  }
  return start;
}

void Matcher::emit_match(size_t block, const uint8_t* p, size_t lit, size_t i, uint64_t base, MatchOutput* out) {
  const size_t n = params_.block_len;
  const size_t start = extend_back(block, p, lit, i, base);
  emit_literal(p + lit, start - lit, out);
  if (start < i) {
    uint8_t anchor_digest[kMaxStrongLen];
    std::memcpy(anchor_digest, match_digest_, digest_len_);
    const size_t first = block - (i - start) / n;
    for (size_t b = first, k = 0; b < block; ++b, k += digest_len_) {
      std::memcpy(match_digest_, back_digests_.data() + k, digest_len_);
      emit_copy(b, n, out);
    }
    std::memcpy(match_digest_, anchor_digest, digest_len_);
  }
  emit_copy(block, n, out);
}

void Matcher::set_next(size_t block) {
  const bool short_last = block + 1 == count_ && last_block_len_ > 0 && last_block_len_ < params_.block_len;
  const int64_t id = block < count_ ? id_of(block) : -1;
  has_next_ = id >= 0 && !short_last && !index_.excluded(static_cast<size_t>(id));
  if (has_next_) {
    next_block_ = block;
    next_id_ = static_cast<size_t>(id);
    next_weak_ = index_.weak(next_id_);
  }
  // A sparse signature's checks are all it has for most blocks; a dense one continues on the
  // strong sum alone only when that is long enough (dense_continue_).
  cont_ = block < count_ && !short_last && (stride_ > 1 || (dense_continue_ && !index_.excluded(block)));
  cont_block_ = block;
}

bool Matcher::strong_matches(size_t id, const uint8_t* p, size_t len, uint8_t* digest, bool* have_digest) {
  if (!*have_digest) {
    strong_sum(params_.strong, p, len, digest);
    *have_digest = true;
    ++stats_.strong_calcs;
  }
  return index_.strong_equals(id, digest);
}

int64_t Matcher::find(uint64_t weak, const uint8_t* p, size_t len, uint64_t at) {
  uint8_t digest[kMaxStrongLen];
  bool have_digest = false;
  bool weak_hit = false;
  int64_t found = -1;
  if (has_next_ && weak == next_weak_ && placeable(next_block_, at)) {
    weak_hit = true;
    if (strong_matches(next_id_, p, len, digest, &have_digest)) found = static_cast<int64_t>(next_block_);
  }
  if (found < 0 && index_.maybe(weak)) {
    size_t tried = 0;
    for (const uint32_t* it = index_.bucket_begin(weak), *end = index_.bucket_end(weak); it != end; ++it) {
      if (index_.weak(*it) != weak || index_.excluded(*it) || !placeable(block_of(*it), at)) continue;
      weak_hit = true;
      if (++tried > kCandidateCap) {
        ++stats_.chain_capped;
        break;
      }
      if (strong_matches(*it, p, len, digest, &have_digest)) {
        found = static_cast<int64_t>(block_of(*it));
        break;
      }
    }
  }
  if (weak_hit) ++stats_.weak_hits;
  if (found >= 0) {
    ++stats_.strong_hits;
    std::memcpy(match_digest_, digest, digest_len_);
    note_success(weak);
  } else if (have_digest) {
    failed_bytes_ += len;
    note_failure(weak, at);
  }
  return found;
}

void Matcher::note_success(uint64_t weak) {
  auto it = failures_.find(weak);
  if (it != failures_.end()) it->second = kTrusted;
}

void Matcher::note_failure(uint64_t weak, uint64_t at) {
  // Only failed strong checks land here, each of which cost a whole block's hash, so the map
  // stays small; the bound only guards against a pathological stream of distinct collisions.
  if (failures_.size() >= 65536) failures_.clear();
  uint32_t& failed = failures_[weak];
  if (failed == kTrusted || ++failed < kDistrustAfter) return;
  // Act only once failed strong hashing has outgrown the scanning itself: until then the delta
  // is at most about twice as slow, and ordinary data keeps every match rsync would find.
  if (failed_bytes_ <= at + kFloodSlackBlocks * params_.block_len) return;
  failed = kTrusted;  // handled: never counted again
  index_.distrust(weak);
  ++stats_.distrusted;
  if (has_next_ && index_.excluded(next_block_)) has_next_ = false;
}

void Matcher::flush_copy(MatchOutput* out) {
  if (pending_copy_len_ == 0) return;
  out->ops.insert(out->ops.end(), {0.0, static_cast<double>(pending_copy_offset_),
                                   static_cast<double>(pending_copy_len_)});
  out->digests.insert(out->digests.end(), pending_digests_.begin(), pending_digests_.end());
  pending_digests_.clear();
  pending_copy_len_ = 0;
}

void Matcher::emit_literal(const uint8_t* p, size_t len, MatchOutput* out) {
  if (len == 0) return;
  flush_copy(out);
  auto& ops = out->ops;
  const size_t n = ops.size();
  const uintptr_t at = reinterpret_cast<uintptr_t>(p), base = reinterpret_cast<uintptr_t>(out->input);
  const bool in_input = out->input && at >= base && at + len <= base + out->input_len;
  if (in_input) {
    const double offset = static_cast<double>(at - base);
    if (n >= 3 && ops[n - 3] == 2 && ops[n - 2] + ops[n - 1] == offset) {
      ops[n - 1] += static_cast<double>(len);
    } else {
      ops.insert(ops.end(), {2.0, offset, static_cast<double>(len)});
    }
    return;
  }
  if (n >= 3 && ops[n - 3] == 1) {
    ops[n - 2] += static_cast<double>(len);
  } else {
    ops.insert(ops.end(), {1.0, static_cast<double>(len), 0.0});
  }
  out->literals.insert(out->literals.end(), p, p + len);
}

void Matcher::emit_copy(size_t block, size_t len, MatchOutput* out) {
  // Held back until something else comes, so runs of blocks merge across update() calls.
  const uint64_t offset = static_cast<uint64_t>(block) * params_.block_len;
  if (pending_copy_len_ > 0 && pending_copy_offset_ + pending_copy_len_ == offset &&
      pending_digests_.size() < kMaxPendingDigestBytes && pending_copy_len_ < kMaxCopyRunBytes) {
    pending_copy_len_ += len;
  } else {
    flush_copy(out);
    pending_copy_offset_ = offset;
    pending_copy_len_ = len;
  }
  pending_digests_.insert(pending_digests_.end(), match_digest_, match_digest_ + digest_len_);
  set_next(block + 1);
}

// The main loop: full-length windows whose start lies before stop_before.
template <typename R>
void Matcher::scan(R& roll, const View& v, uint64_t stop_before, MatchOutput* out) {
  const size_t n = params_.block_len;
  const uint8_t* p = v.p;
  const size_t avail = static_cast<size_t>(v.end - v.base);
  const size_t stop = static_cast<size_t>(std::min(stop_before, v.end) - v.base);
  size_t i = static_cast<size_t>(pos_ - v.base);
  size_t lit = static_cast<size_t>(lit_start_ - v.base);
  while (i < stop) {
    if (!win_valid_) {
      if (i + n > avail) break;
      if (cont_ && try_continue(p + i, v.base + i)) {
        emit_literal(p + lit, i - lit, out);
        emit_copy(cont_block_, n, out);
        i += n;
        lit = i;
        continue;
      }
      set_state(&roll, window_state(params_.rolling, p + i, n), n, rk_mult_n_);
      win_valid_ = true;
      checked_ = false;
      rolled_ = 0;
    }
    if (!checked_) {
      const int64_t block = find(roll.digest(), p + i, n, v.base + i);
      if (block >= 0) {
        emit_match(static_cast<size_t>(block), p, lit, i, v.base, out);
        i += n;
        lit = i;
        win_valid_ = false;
        continue;
      }
      checked_ = true;
    }
    if (i + n >= avail) break;
    const size_t limit = std::min(avail - n, stop);  // last i we may roll to
    size_t roll_to = limit;
    if (search_ && rolled_ < kScalarLead) roll_to = std::min(limit, i + (kScalarLead - rolled_));

    if (search_ && rolled_ >= kScalarLead && limit - i >= kMinBatch) {
      // Long stretch without a match: find the windows that pass the prefilter in one batch, then
      // look up only those, in order. Nothing in the batch depends on matcher state: the
      // preferred next block is indexed, so it passes the filter like any other.
      const size_t count = std::min(limit - i, std::min(std::max(rolled_, kMinBatch), kMaxBatchWindows));
      const size_t cap = count / 64 + 256;  // ~6x the filter's pass rate; denser overflows
      if (candidates_.size() < cap) candidates_.resize(cap);
      const SearchTask task{params_.rolling, p, n, i, count, state_of(roll), rk_mult_n_, index_.filter()};
      WindowState end;
      // On unrelated data this search is most of the work: long batches use every core.
      if (slice_parts(count, search_slices_) > 1) ++stats_.sliced_batches;
      const size_t found = search_sliced(search_, task, candidates_.data(), cap, &end, search_slices_);
      if (found != kSearchOverflow) {
        bool matched = false;
        constexpr size_t kAhead = 8;  // bucket loads in flight while earlier candidates are looked up
        for (size_t c = 0; c < std::min(found, kAhead); ++c) index_.prefetch(candidates_[c].digest);
        for (size_t c = 0; c < found && !matched; ++c) {
          if (c + kAhead < found) index_.prefetch(candidates_[c + kAhead].digest);
          const Candidate& cand = candidates_[c];
          const int64_t block = find(cand.digest, p + cand.offset, n, v.base + cand.offset);
          if (block < 0) continue;
          emit_match(static_cast<size_t>(block), p, lit, cand.offset, v.base, out);
          i = cand.offset + n;
          lit = i;
          win_valid_ = false;
          matched = true;
        }
        if (matched) continue;
        set_state(&roll, end, n, rk_mult_n_);
        i += count;
        rolled_ += count;
        checked_ = true;
        continue;
      }
      // Too many windows pass (repetitive data): batching does not pay here. Roll this stretch
      // byte by byte, and start batches small again afterwards.
      roll_to = i + count;
      rolled_ = 0;
    }

    // Roll one byte at a time until the prefilter fires. State lives in locals so the compiler
    // keeps it in registers.
    bool hit = false;
    const size_t from = i;
    const Prefilter filter = index_.filter();
    R r = roll;
    while (i < roll_to) {
      r.rotate(p[i], p[i + n]);
      ++i;
      if (filter.maybe(R::kind, r.digest())) {
        hit = true;
        break;
      }
    }
    roll = r;
    rolled_ += i - from;
    checked_ = !hit;
  }
  pos_ = v.base + i;
  lit_start_ = v.base + lit;
  // Literal bytes must be copied out while the buffer they live in is still ours — except the
  // last hold_ bytes (sparse), which the caller carries into the next view: an anchor found
  // there may still confirm blocks back into them.
  const uint64_t keep_from = std::max(lit_start_, pos_ - std::min<uint64_t>(pos_, holding_ ? hold_ : 0));
  if (lit_start_ < keep_from) {
    emit_literal(p + lit, static_cast<size_t>(keep_from - lit_start_), out);
    lit_start_ = keep_from;
  }
}

void Matcher::run_scan(const View& v, uint64_t stop_before, MatchOutput* out) {
  switch (params_.rolling) {
    case RollingKind::Ds64: scan(ds64_, v, stop_before, out); break;
    case RollingKind::Rollsum: scan(rollsum_, v, stop_before, out); break;
    case RollingKind::RabinKarp: scan(rabinkarp_, v, stop_before, out); break;
  }
}

void Matcher::update(const uint8_t* data, size_t len, MatchOutput* out) {
  const size_t n = params_.block_len;
  seen_ += len;
  out->input = data;
  out->input_len = len;
  if (count_ == 0) {  // nothing to match against: all literal
    emit_literal(carry_.data(), carry_.size(), out);
    emit_literal(data, len, out);
    carry_.clear();
    pos_ = lit_start_ = seen_;
    return;
  }
  const uint64_t data_base = seen_ - len;
  // carry_ holds [lit_start_, data_base): the literal still pending (sparse), then the bytes
  // from the window at pos_ on.
  if ((data_base - pos_) + len <= n) {  // not even one window past pos_: keep collecting
    carry_.insert(carry_.end(), data, data + len);
    return;
  }
  if (!carry_.empty()) {
    // Windows starting in the carried bytes run into the new data: scan them on a joined copy
    // of the carry and (at most) the first block of the new data — with a sparse signature the
    // first hold_ bytes more, so that anchors found there reach back into the carried literal.
    const uint64_t join_base = lit_start_;
    join_.assign(carry_.begin(), carry_.end());
    const size_t extra = static_cast<size_t>(std::min<uint64_t>(len, n + hold_));
    join_.insert(join_.end(), data, data + extra);
    const bool all = extra == len;
    run_scan(View{join_.data(), join_base, data_base + extra}, all ? seen_ : data_base + hold_, out);
    if (all) {
      // The join holds all of the new data: keep it from the pending literal on.
      carry_.assign(join_.begin() + static_cast<ptrdiff_t>(lit_start_ - join_base), join_.end());
      return;
    }
    if (lit_start_ < data_base) {
      emit_literal(join_.data() + (lit_start_ - join_base), static_cast<size_t>(data_base - lit_start_), out);
      lit_start_ = data_base;
    }
    carry_.clear();
  }
  run_scan(View{data, data_base, seen_}, seen_, out);
  carry_.assign(data + (lit_start_ - data_base), data + len);
}

// Short windows at the end of the stream: only the basis's last block can be shorter than
// the block length. With its length known, slide a window of that length over the tail (an
// append after it still matches); unknown (librsync), try every suffix as librsync does.
template <typename R>
void Matcher::scan_tail(R roll, const View& v, MatchOutput* out) {
  const size_t n = params_.block_len;
  const size_t avail = static_cast<size_t>(v.end - v.base);
  size_t i = static_cast<size_t>(pos_ - v.base);
  const size_t lit = i;
  const size_t last = count_ - 1;
  const size_t last_id = static_cast<size_t>(id_of(last));  // the last block is always indexed
  const uint64_t last_weak = index_.weak(last_id);
  uint8_t digest[kMaxStrongLen];
  auto try_at = [&](size_t start, size_t len) {
    if (roll.digest() != last_weak || !placeable(last, v.base + start)) return false;
    ++stats_.weak_hits;
    bool have = false;
    if (!strong_matches(last_id, v.p + start, len, digest, &have)) return false;
    ++stats_.strong_hits;
    std::memcpy(match_digest_, digest, digest_len_);
    emit_literal(v.p + lit, start - lit, out);
    emit_copy(last, len, out);
    emit_literal(v.p + start + len, avail - start - len, out);
    return true;
  };
  if (last_block_len_ > 0) {
    const size_t L = last_block_len_;
    if (L < n && avail - i >= L) {
      roll.reset();
      roll.update(v.p + i, L);
      for (size_t s = i;; ++s) {
        if (try_at(s, L)) return;
        if (s + L >= avail) break;
        roll.rotate(v.p[s], v.p[s + L]);
      }
    }
  } else if (avail > i) {
    roll.reset();
    roll.update(v.p + i, avail - i);
    for (size_t s = i; s < avail; ++s) {
      const size_t len = avail - s;
      if (len < n && try_at(s, len)) return;
      roll.rollout(v.p[s]);
    }
  }
  emit_literal(v.p + lit, avail - lit, out);
}

void Matcher::finish(MatchOutput* out) {
  if (finished_) return;
  finished_ = true;
  if (count_ == 0) {
    emit_literal(carry_.data(), carry_.size(), out);
    carry_.clear();
    return;
  }
  const View v{carry_.data(), lit_start_, seen_};
  holding_ = false;  // nothing comes after: all pending literal goes out
  // Full windows still in the carry (input shorter than two blocks, or the last full block).
  run_scan(v, seen_, out);
  const View tail{carry_.data() + (pos_ - v.base), pos_, seen_};
  switch (params_.rolling) {
    case RollingKind::Ds64: scan_tail(Ds64{}, tail, out); break;
    case RollingKind::Rollsum: scan_tail(Rollsum{}, tail, out); break;
    case RollingKind::RabinKarp: scan_tail(RabinKarp{}, tail, out); break;
  }
  flush_copy(out);
  carry_.clear();
}

}  // namespace ds
