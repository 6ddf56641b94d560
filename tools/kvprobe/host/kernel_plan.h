// Host-side choices of kvprobe's attention kernels that depend only on a launch's
// sizes and the GPU's multiprocessor count (the CUDA side calls them per launch).
#pragma once

namespace kvprobe {

// How the decode kernel cuts each sequence's context over blocks: `splits` splits of
// `split_tokens` tokens (the last one may be shorter).
struct DecodeSplit {
  int splits = 1;
  int split_tokens = 0;
  bool operator==(const DecodeSplit& o) const {
    return splits == o.splits && split_tokens == o.split_tokens;
  }
};

// Decode splits are whole multiples of this many tokens (a block step of the
// tensor-core kernel: 4 warps x 32 tokens, so every warp gets an equal share; built
// with 8 warps, a block step is 256 tokens and a split of an odd number of granules
// leaves half the warps idle in its last step) and at most kMaxDecodeSplits of them.
inline constexpr int kDecodeSplitGranuleTokens = 128;
inline constexpr int kMaxDecodeSplits = 64;

// `wanted` splits of a max_len-token context: equal splits rounded up to whole
// granules, so the count may come out lower than asked; `wanted` is first clamped to
// 1 .. min(kMaxDecodeSplits, max_len / granule). A context of under one token counts
// as one token.
DecodeSplit ForcedDecodeSplit(int max_len, int wanted);

// The split plan: every sequence taken to be max_len tokens long, `batch x kv_heads`
// (sequence, KV head) pairs, `slots` blocks resident on the GPU at once (so blocks
// run in waves). Picks, over every forced count, the fewest
//   waves x (split_tokens + 64) + (96 if the context is split)
// token-equivalents: 64 is a block's fixed cost and 96 the merge kernel's, both in
// tokens of a block's own work and both rough guesses. kvprobe's tuner times every
// count (TuneDecodeSplits), so the plan is only its first candidate and what runs
// where no tuning does.
DecodeSplit PlanDecodeSplit(int batch, int kv_heads, int max_len, long long slots);

// The decode kernel's bulk load schedule (built with -DKVPROBE_DECODE_BULK=1) fills a
// warp's 32-token step with bulk tensor copies of BulkBoxRows(block_tokens) rows each:
// 32 for contiguous KV (block_tokens 0), min(32, block_tokens) for blocks of a power of
// two >= 16 tokens, and 0 where the schedule does not read the layout (a box must not
// cross a block, and a step must be whole boxes).
constexpr int BulkBoxRows(int block_tokens) {
  if (block_tokens == 0) return 32;
  if (block_tokens < 16 || (block_tokens & (block_tokens - 1)) != 0) return 0;
  return block_tokens < 32 ? block_tokens : 32;
}

// The first token of box `box` (0-based) of the step starting at token `step` (a
// multiple of box_rows, a power of two), in a split whose last token is `last`
// (>= step): the box's own first token, or, for a box wholly past `last`, the first
// token of the box holding `last`, so that no box reads past the split's last block
// (the rows it repeats are masked).
constexpr int BulkBoxFirstToken(int step, int box, int last, int box_rows) {
  const int own = step + box * box_rows;
  const int last_box = last & ~(box_rows - 1);
  return own < last_box ? own : last_box;
}

// Query rows a prefill block of `m_tiles` 16-row m-tiles per warp (4 warps) serves.
constexpr int PrefillBlockRows(int m_tiles) { return 4 * 16 * m_tiles; }

// m-tiles per warp (1 or 2) for causal prefill attention over `tokens` tokens of
// `batch` sequences with `q_heads` query heads, on a GPU of `sm_count`
// multiprocessors running two blocks each. Two m-tiles halve the shared-memory
// traffic per FLOP but make blocks of 128 rows, twice as long and half as many: they
// are taken once those blocks fill the GPU at least three times over, so that the
// longer blocks' tail is a small part of the launch, and once a sequence is at least
// 2,048 tokens long, so that rows past its end (padding of the last block) are at
// most 1/16 of the work. Measured on an H200 (2026-11-30, Llama-3-8B's 32 heads,
// batch 1): two m-tiles ran 4K-8K tokens 2-9% faster contiguous and 4K-16K 4-11%
// faster paged/16, 16K contiguous within 1.5%, but 512-1K tokens 31-36% slower and
// 2K contiguous 3.5% slower (one or two waves). Non-positive sizes give 1.
int PrefillMTiles(int tokens, int q_heads, int batch, int sm_count);

}  // namespace kvprobe
