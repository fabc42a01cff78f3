// SPDX-License-Identifier: Apache-2.0
// strata commit CONTAINER [REPO[:TAG]]: a container's change as a new image (docker commit).
#include "strata/commit/commit.h"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "common.h"
#include "strata/control/client.h"
#include "strata/copyup/unsynced.h"
#include "strata/oci/image.h"
#include "strata/sys/fs.h"
#include "strata/sys/tool_io.h"

namespace strata::tool {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kUsage =
    "Usage: strata commit [OPTIONS] CONTAINER [REPO[:TAG]]\n"
    "\n"
    "Make a new image of a container's changes (its writable layer) on top of its image, and "
    "print\n"
    "the new image's ID. Without REPO the image is untagged (found by its ID). A REPO without a\n"
    "registry gets localhost/ (as podman does); a missing TAG is latest.\n"
    "\n"
    "Options:\n"
    "  -m, --message MSG        the history entry's comment\n"
    "  -a, --author AUTHOR      the image's and the history entry's author\n"
    "  -c, --change INSTR       apply a Dockerfile instruction to the config (repeatable): CMD,\n"
    "                           ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL\n"
    "  -p, --pause[=BOOL]       pause the container's writers (stratafs control socket) while the\n"
    "                           change is read; resumed afterwards, also on failure (default "
    "false;\n"
    "                           a container that is not mounted has nothing to pause: a note)\n"
    "  -f, --format oci|docker  manifest and media types: OCI (default) or Docker schema2\n"
    "      --compression gzip|zstd|none   the new layer's compression (default gzip)\n"
    "      --squash             one layer for the whole image (the container's merged view; if it\n"
    "                           is not mounted, a temporary read-only stratafs mount of it)\n"
    "  -q, --quiet              print only the image ID (no warnings)\n"
    "  -h, --help               this help\n"
    "\n"
    "SOURCE_DATE_EPOCH (seconds) sets the created time and clamps file times: the same change on "
    "the\n"
    "same image then gives the same image ID.\n";

Result<json> read_state(const std::string& dir, const std::string& name) {
  std::ifstream f(dir + "/state.json");
  if (!f) return make_error(ENOENT, "commit", "no such container: " + name);
  json j = json::parse(f, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return make_error(EBADMSG, "commit", dir + "/state.json is malformed");
  return j;
}

// REPO[:TAG] as a store name: localhost/ for a bare repository, :latest for no tag.
Result<std::string> normalize_name(const std::string& in) {
  std::string n = in;
  size_t slash = n.find('/');
  std::string first = slash == std::string::npos ? std::string() : n.substr(0, slash);
  bool has_registry =
      !first.empty() && (first.find_first_of(".:") != std::string::npos || first == "localhost");
  if (!has_registry) n = "localhost/" + n;
  if (n.find('@') != std::string::npos)
    return make_error(EINVAL, "commit", "'" + in + "': a digest cannot be a tag");
  if (oci::split_name(n).second == "<none>") n += ":latest";
  if (!store::valid_ref_name(n))
    return make_error(EINVAL, "commit", "'" + in + "' is not a valid image name");
  return n;
}

Result<std::optional<int64_t>> source_date_epoch() {
  const char* s = std::getenv("SOURCE_DATE_EPOCH");
  if (!s || !*s) return std::optional<int64_t>();
  int64_t v = 0;
  auto r = std::from_chars(s, s + std::strlen(s), v);
  if (r.ec != std::errc() || *r.ptr != '\0' || v < 0)
    return make_error(EINVAL, "commit",
                      std::string("SOURCE_DATE_EPOCH='") + s + "' is not a number of seconds");
  return std::optional<int64_t>(v);
}

std::string find_stratafs(const Globals& g) {
  if (!g.stratafs.empty()) return g.stratafs;
  if (auto self = sys::self_exe()) {
    std::string next = fs::path(*self).parent_path() / "stratafs";
    if (sys::is_executable(next)) return next;
  }
  return "stratafs";
}

// A read-only stratafs mount of upper + the image's layers, for --squash of a container that is
// not mounted; unmounted (and its directory removed) on destruction.
class TempView {
 public:
  static Result<TempView> mount(const Globals& g, const std::string& dir, const std::string& upper,
                                const std::vector<std::string>& lowers) {
    TempView v;
    v.path_ = dir + "/.squash-" + std::to_string(::getpid());
    std::error_code ec;
    fs::remove(v.path_, ec);
    if (!fs::create_directory(v.path_, ec)) return make_error(ec.value(), "mkdir", v.path_);
    std::string opts = "lowerdir=" + upper;
    for (const auto& l : lowers) opts += ":" + l;
    std::vector<std::string> all{upper};
    all.insert(all.end(), lowers.begin(), lowers.end());
    opts += owner_record_option(all);  // the recorded owners are the image's
    auto rc = sys::run_program({find_stratafs(g), "-o", opts + ",ro", v.path_});
    if (!rc || *rc != 0 || !sys::is_mount_point(v.path_)) {
      fs::remove(v.path_, ec);
      return make_error(EIO, "commit --squash",
                        "cannot mount a read-only view of the container at " + v.path_);
    }
    v.mounted_ = true;
    return v;
  }
  TempView(TempView&& o) noexcept
      : path_(std::move(o.path_)), mounted_(std::exchange(o.mounted_, false)) {}
  TempView& operator=(TempView&&) = delete;
  ~TempView() {
    if (!mounted_) return;
    auto rc = sys::run_program({"fusermount3", "-u", path_});
    if (!rc || *rc != 0)
      (void)sys::run_program({"umount", path_});  // last resort; the message is fusermount3's
    std::error_code ec;
    fs::remove(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  TempView() = default;
  std::string path_;
  bool mounted_ = false;
};

bool parse_bool(const std::string& v, bool* out) {
  if (v == "true" || v == "1" || v == "yes")
    *out = true;
  else if (v == "false" || v == "0" || v == "no")
    *out = false;
  else
    return false;
  return true;
}

}  // namespace

int cmd_commit(const Globals& g, const Args& args) {
  commit::CommitOptions opts;
  std::string container, repo, format = "oci", compression = "gzip";
  bool pause = false, quiet = false;
  for (size_t i = 0; i < args.size(); ++i) {
    bool missing = false;
    const std::string& a = args[i];
    if (is_help(a)) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    std::string v;
    if (take_value(args, i, "--message", &v, &missing) || take_value(args, i, "-m", &v, &missing)) {
      if (missing) return usage_error("commit", a + " needs a value");
      opts.message = v;
      continue;
    }
    if (take_value(args, i, "--author", &v, &missing) || take_value(args, i, "-a", &v, &missing)) {
      if (missing) return usage_error("commit", a + " needs a value");
      opts.author = v;
      continue;
    }
    if (take_value(args, i, "--change", &v, &missing) || take_value(args, i, "-c", &v, &missing)) {
      if (missing) return usage_error("commit", a + " needs a value");
      opts.changes.push_back(v);
      continue;
    }
    if (take_value(args, i, "--format", &v, &missing) || take_value(args, i, "-f", &v, &missing)) {
      if (missing) return usage_error("commit", a + " needs a value");
      format = v;
      continue;
    }
    if (take_value(args, i, "--compression", &v, &missing)) {
      if (missing) return usage_error("commit", a + " needs a value");
      compression = v;
      continue;
    }
    if (a == "--pause" || a == "-p") {
      pause = true;
      continue;
    }
    if (a.rfind("--pause=", 0) == 0) {
      if (!parse_bool(a.substr(8), &pause))
        return usage_error("commit", "--pause takes true or false");
      continue;
    }
    if (a == "--squash") {
      opts.squash = true;
      continue;
    }
    if (a == "-q" || a == "--quiet") {
      quiet = true;
      continue;
    }
    if (a.size() > 1 && a[0] == '-') return usage_error("commit", "unknown option '" + a + "'");
    if (container.empty())
      container = a;
    else if (repo.empty())
      repo = a;
    else
      return usage_error("commit", "too many arguments");
  }
  if (container.empty()) return usage_error("commit", "missing CONTAINER");
  auto fmt = commit::parse_format(format);
  if (!fmt) return usage_error("commit", fmt.error().message());
  opts.format = *fmt;
  auto comp = commit::parse_compression(compression);
  if (!comp) return usage_error("commit", comp.error().message());
  opts.compression = *comp;
  // Bad -c instructions and names fail here, before anything is paused or written.
  if (auto c = commit::parse_changes(opts.changes); !c) return fail(c.error());
  if (!repo.empty()) {
    auto n = normalize_name(repo);
    if (!n) return fail(n.error());
    opts.ref_name = *n;
  }
  auto sde = source_date_epoch();
  if (!sde) return fail(sde.error());
  opts.source_date_epoch = *sde;

  auto st = open_store(g, false);
  if (!st) return fail(st.error());
  if (container.find('/') != std::string::npos || container == "." || container == "..")
    return fail("no such container: " + container);
  const std::string dir = st->root_path() + "/containers/" + container;
  auto state = read_state(dir, container);
  if (!state) return fail(state.error());
  const std::string upper = state->value("upper", dir + "/upper");
  const std::string work = state->value("work", dir + "/work");
  const std::string mountpoint = state->value("mountpoint", "");
  const std::string image_id = state->value("image_id", "");
  const std::string image_name = state->value("image", image_id);
  auto parent = oci::find_image(*st, image_id.empty() ? image_name : image_id);
  if (!parent)
    return fail("container " + container + ": its image " + image_name + " (" + image_id +
                ") is not in the store: " + parent.error().message());
  auto upper_fd = sys::open_path(upper.c_str(), O_RDONLY | O_DIRECTORY);
  if (!upper_fd)
    return fail("container " + container + ": its upper directory " + upper + ": " +
                upper_fd.error().message());
  const bool mounted = !mountpoint.empty() && sys::is_mount_point(mountpoint);
  // A crash may have cut copy-ups short: their records stay in WORK/strata-unsynced until stratafs mounts the
  // upper again and repairs them (stratafs(1), CRASH SAFETY). Until then the upper may hold files whose data
  // never reached the disk.
  if (!mounted) {
    std::string log_dir = work + "/" + copyup::kUnsyncedDir;
    if (auto log = sys::open_path(log_dir.c_str(), O_RDONLY | O_DIRECTORY)) {
      auto ents = sys::read_dir(log->get());
      if (ents && !ents->empty())
        return fail("container " + container + ": " + std::to_string(ents->size()) +
                    " copy-up(s) were cut short by a crash (" + log_dir +
                    "): mount the container once with stratafs to repair them, then commit");
    }
  }

  // Resumes on every return: resume() below, and the daemon resumes when the connection closes.
  std::optional<control::Client> paused;
  if (pause) {
    if (!mounted) {
      if (!quiet)
        std::fprintf(stderr, "strata: note: %s is not mounted: nothing to pause\n",
                     container.c_str());
    } else {
      auto c = control::Client::connect(control::default_socket_path(work));
      if (!c) return fail("container " + container + ": cannot pause: " + c.error().message());
      if (auto p = c->pause(); !p)
        return fail("container " + container + ": cannot pause: " + p.error().message());
      paused.emplace(std::move(*c));
    }
  }

  std::optional<TempView> view;
  UniqueFd root_fd;
  if (opts.squash) {
    std::string from = mountpoint;
    if (!mounted) {
      std::vector<std::string> lowers;
      for (auto it = parent->config.diff_ids.rbegin(); it != parent->config.diff_ids.rend(); ++it) {
        if (!st->has_layer(*it))
          return fail("layer " + it->to_string() + " of " + image_name + " is not in the store");
        lowers.push_back(st->layer_diff_path(*it));
      }
      auto v = TempView::mount(g, dir, upper, lowers);
      if (!v) return fail(v.error());
      view.emplace(std::move(*v));
      from = view->path();
    }
    auto fd = sys::open_path(from.c_str(), O_RDONLY | O_DIRECTORY);
    if (!fd) return fail("container " + container + ": " + from + ": " + fd.error().message());
    root_fd = std::move(*fd);
  } else {
    root_fd = std::move(*upper_fd);
  }

  auto res = commit::commit_image(*st, *parent, root_fd.get(), opts);
  if (paused) {
    if (auto r = paused->resume(); !r && !quiet)
      std::fprintf(stderr, "strata: warning: resume: %s (the daemon resumes when we exit)\n",
                   r.error().message().c_str());
  }
  if (!res) return fail("commit " + container + ": " + res.error().message());
  if (!quiet) {
    for (const auto& w : res->warnings) std::fprintf(stderr, "strata: warning: %s\n", w.c_str());
  }
  std::printf("%s\n", res->image_id.to_string().c_str());
  return 0;
}

}  // namespace strata::tool
