#include "signature_builder.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <system_error>
#include <thread>

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

namespace {

// pread until len bytes or end of file; returns the bytes read.
size_t read_fully(int fd, uint8_t* buf, size_t len, uint64_t offset) {
  size_t done = 0;
  while (done < len) {
    const ssize_t n = ::pread(fd, buf + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "read");
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

// Per-core staging buffer: about L2-sized, whole blocks, at least one block.
size_t staging_len(size_t block_len) {
  constexpr size_t kTarget = size_t{1} << 20;
  return std::max(block_len, kTarget / block_len * block_len);
}

}  // namespace

size_t SignatureBuilder::update_from_fd(int fd, uint64_t offset, size_t len, std::vector<uint8_t>* out) {
  const size_t n = params_.block_len;
  size_t consumed = 0;
  if (!partial_.empty()) {
    // Only after a range that did not end on a block boundary: complete that block first.
    std::vector<uint8_t> head(std::min(len, n - partial_.size()));
    const size_t got = read_fully(fd, head.data(), head.size(), offset);
    update(head.data(), got, out);
    if (got < head.size()) return got;
    consumed = got;
  }
  const size_t blocks = (len - consumed) / n;
  const uint64_t start = offset + consumed;
  const size_t entry = params_.entry_size();
  const size_t base = out->size();
  out->resize(base + blocks * entry);
  uint8_t* dst = out->data() + base;

  struct Slice {
    size_t first = 0, last = 0;  // blocks [first, last)
    size_t read = 0;             // bytes read; short only at end of file
    std::vector<uint8_t> tail;   // bytes of a partial block at end of file
    std::exception_ptr error;
  };
  const size_t min_blocks_per_slice = std::max<size_t>(1, (size_t{4} << 20) / n);
  const size_t count = blocks == 0 ? 0 : std::min<size_t>(worker_threads(), std::max<size_t>(1, blocks / min_blocks_per_slice));
  std::vector<Slice> slices(count);
  const size_t per = count ? (blocks + count - 1) / count : 0;
  for (size_t s = 0; s < count; ++s) {
    slices[s].first = std::min(blocks, s * per);
    slices[s].last = std::min(blocks, slices[s].first + per);
  }
  const size_t stage = staging_len(n);
  auto run = [&](Slice& slice) {
    try {
      std::unique_ptr<uint8_t[]> buf(new uint8_t[stage]);
      for (size_t b = slice.first; b < slice.last;) {
        const size_t want = std::min(stage / n, slice.last - b) * n;
        const size_t got = read_fully(fd, buf.get(), want, start + b * n);
        const size_t whole = got / n;
        for (size_t k = 0; k < whole; ++k) block_entry(params_, buf.get() + k * n, n, dst + (b + k) * entry);
        slice.read += got;
        if (got < want) {
          slice.tail.assign(buf.get() + whole * n, buf.get() + got);
          return;
        }
        b += whole;
      }
    } catch (...) {
      slice.error = std::current_exception();
    }
  };
  std::vector<std::thread> threads;
  for (size_t s = 1; s < count; ++s) threads.emplace_back(run, std::ref(slices[s]));
  if (count) run(slices[0]);
  for (auto& t : threads) t.join();

  // What was read is the prefix up to the first short slice; data after it means the file
  // grew or shrank under us.
  size_t whole_blocks = 0;
  bool ended = false;
  const std::vector<uint8_t>* tail = nullptr;
  for (Slice& slice : slices) {
    if (slice.error) std::rethrow_exception(slice.error);
    if (ended) {
      if (slice.read) throw std::runtime_error("the file changed while it was being read");
      continue;
    }
    whole_blocks += slice.read / n;
    consumed += slice.read;
    if (slice.read < (slice.last - slice.first) * n) {
      ended = true;
      tail = &slice.tail;
    }
  }
  out->resize(base + whole_blocks * entry);
  if (ended) {
    partial_.assign(tail->begin(), tail->end());
    return consumed;
  }
  // A range that does not end on a block boundary leaves its last bytes for the next call.
  const size_t remainder = (offset + len) - (start + blocks * n);
  if (remainder) {
    partial_.resize(remainder);
    const size_t got = read_fully(fd, partial_.data(), remainder, start + blocks * n);
    partial_.resize(got);
    consumed += got;
  }
  return consumed;
}

void SignatureBuilder::finish(std::vector<uint8_t>* out) {
  if (partial_.empty()) return;
  const size_t base = out->size();
  out->resize(base + params_.entry_size());
  block_entry(params_, partial_.data(), partial_.size(), out->data() + base);
  partial_.clear();
}

}  // namespace ds
