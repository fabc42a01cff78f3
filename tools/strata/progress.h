// SPDX-License-Identifier: Apache-2.0
// Progress: what `strata pull` prints about its layers while oci::pull runs, and `strata push`
// about its blobs while oci::push runs (Action kPush: "Pushing", "Pushed", "Layer already exists";
// plain: "pushed N bytes").
//
//   Progress p(Progress::kTty);      // or kPlain, kQuiet
//   opts.on_layer = [&](const oci::LayerEvent& e) { p.on_layer(e); };
//   oci::pull(...);  p.finish();
//
// kTty (stdout is a terminal): docker-style, one line per layer ("<12 hex>:
// Downloading  12.3MB/45.6MB 8.1MB/s", "Pull complete", "Already exists"), redrawn in place with
// ANSI cursor movement by one thread at most ten times a second; finish() draws the final state.
// kPlain: one line per layer when it is done ("<12 hex>: already exists", "<12 hex>: pulled N bytes
// in T s (R/s)"). kQuiet: nothing. Thread-safety: on_layer() may be called from several threads at
// once; the constructor, finish() and the destructor from the owner's thread only. Output goes to
// stdout.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "strata/oci/pull.h"

namespace strata::tool {

class Progress {
 public:
  enum Mode { kQuiet, kPlain, kTty };
  enum Action { kPull, kPush };
  explicit Progress(Mode mode, Action action = kPull);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void on_layer(const oci::LayerEvent& e);
  // Stops the redraw thread and draws the last state (kTty). Idempotent.
  void finish();

  // "12.3MB": docker's units (powers of 1000), for sizes and rates.
  static std::string human(double bytes);

 private:
  using Clock = std::chrono::steady_clock;
  struct Layer {
    std::string id;  // 12 hex
    int64_t size = -1;
    uint64_t bytes = 0;
    enum { kWaiting, kExists, kDownloading, kDone } state = kWaiting;
    Clock::time_point started;
    double seconds = 0;  // kDone: how long it took
  };
  std::string line(const Layer& l) const;
  void draw_locked();  // kTty: move up over the lines drawn before and rewrite them all
  void run();

  Mode mode_;
  Action action_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Layer> layers_;
  size_t drawn_ = 0;  // lines on the screen that draw_locked() owns
  bool dirty_ = false;
  bool stop_ = false;
  std::thread drawer_;
};

}  // namespace strata::tool
