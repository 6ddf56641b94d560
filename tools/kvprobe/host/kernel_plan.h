// Host-side choices of kvprobe's attention kernels that depend only on a launch's
// sizes and the GPU's multiprocessor count (the CUDA side calls them per launch).
#pragma once

namespace kvprobe {

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
