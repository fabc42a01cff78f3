// SPDX-License-Identifier: Apache-2.0
#include "progress.h"

#include <cstdio>

namespace strata::tool {

namespace {
constexpr auto kRefresh = std::chrono::milliseconds(100);
}

Progress::Progress(Mode mode, Action action) : mode_(mode), action_(action) {
  if (mode_ == kTty) drawer_ = std::thread([this] { run(); });
}

Progress::~Progress() {
  finish();
}

std::string Progress::human(double bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1000 && u < 4) bytes /= 1000, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f%s" : "%.1f%s", bytes, units[u]);
  return buf;
}

void Progress::on_layer(const oci::LayerEvent& e) {
  if (mode_ == kQuiet) return;
  std::lock_guard<std::mutex> g(mu_);
  if (e.kind == oci::LayerEvent::kQueued) {
    if (layers_.size() <= e.index) layers_.resize(e.index + 1);
    layers_[e.index].id = e.blob.hex.substr(0, 12);
    layers_[e.index].size = e.size;
    dirty_ = true;
    return;
  }
  if (e.index >= layers_.size()) return;
  Layer& l = layers_[e.index];
  switch (e.kind) {
    case oci::LayerEvent::kExists:
      l.state = Layer::kExists;
      if (mode_ == kPlain) std::printf("%s: already exists\n", l.id.c_str()), std::fflush(stdout);
      break;
    case oci::LayerEvent::kStarted:
      l.state = Layer::kDownloading;
      l.started = Clock::now();
      break;
    case oci::LayerEvent::kBytes:
      l.bytes = e.bytes;
      break;
    case oci::LayerEvent::kDone: {
      l.state = Layer::kDone;
      l.bytes = e.bytes;
      l.seconds = std::chrono::duration<double>(Clock::now() - l.started).count();
      if (mode_ == kPlain) {
        double rate = l.seconds > 0 ? static_cast<double>(l.bytes) / l.seconds : 0;
        std::printf("%s: %s %llu bytes in %.2fs (%s/s)\n", l.id.c_str(),
                    action_ == kPush ? "pushed" : "pulled",
                    static_cast<unsigned long long>(l.bytes), l.seconds, human(rate).c_str());
        std::fflush(stdout);
      }
      break;
    }
    case oci::LayerEvent::kQueued:
      break;
  }
  dirty_ = true;
}

std::string Progress::line(const Layer& l) const {
  switch (l.state) {
    case Layer::kWaiting:
      return l.id + ": Waiting";
    case Layer::kExists:
      return l.id + (action_ == kPush ? ": Layer already exists" : ": Already exists");
    case Layer::kDone:
      return l.id + (action_ == kPush ? ": Pushed" : ": Pull complete");
    case Layer::kDownloading:
      break;
  }
  double secs = std::chrono::duration<double>(Clock::now() - l.started).count();
  std::string s = l.id + (action_ == kPush ? ": Pushing  " : ": Downloading  ") +
                  human(static_cast<double>(l.bytes));
  if (l.size >= 0) s += "/" + human(static_cast<double>(l.size));
  if (secs > 0.2) s += "  " + human(static_cast<double>(l.bytes) / secs) + "/s";
  return s;
}

void Progress::draw_locked() {
  std::string out;
  if (drawn_ > 0) out += "\x1b[" + std::to_string(drawn_) + "A";  // back to our first line
  for (const auto& l : layers_) out += "\r\x1b[2K" + line(l) + "\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  drawn_ = layers_.size();
  dirty_ = false;
}

void Progress::run() {
  std::unique_lock<std::mutex> g(mu_);
  while (!stop_) {
    cv_.wait_for(g, kRefresh, [this] { return stop_; });
    // Downloading lines change with time (the rate) even without new bytes.
    if (dirty_ || !layers_.empty()) draw_locked();
  }
}

void Progress::finish() {
  if (!drawer_.joinable()) return;
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  drawer_.join();
  std::lock_guard<std::mutex> g(mu_);
  draw_locked();
}

}  // namespace strata::tool
