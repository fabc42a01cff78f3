// SPDX-License-Identifier: Apache-2.0
// base/workers: run one work loop on a small pool of threads (pull's and push's parallel layers).
//
// run_workers(jobs, items, work) runs `work` on min(max(jobs, 1), items) threads and returns when all
// have returned. With one thread (or none needed) `work` runs on the caller's thread. `work` takes
// its items itself (an atomic counter) and reports its own errors; it must not throw.
#pragma once

#include <algorithm>
#include <cstddef>
#include <thread>
#include <vector>

namespace strata {

template <typename F>
void run_workers(int jobs, size_t items, F&& work) {
  size_t workers = std::min<size_t>(static_cast<size_t>(std::max(jobs, 1)), items);
  if (workers <= 1) {
    work();
    return;
  }
  std::vector<std::thread> pool;
  for (size_t w = 0; w < workers; ++w) pool.emplace_back(work);
  for (auto& t : pool) t.join();
}

}  // namespace strata
