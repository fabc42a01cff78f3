// SPDX-License-Identifier: Apache-2.0
// strata mount / umount / ps: containers/NAME/{upper,work,merged,state.json} in the store, mounted
// with stratafs over the image's unpacked layers.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common.h"
#include "strata/oci/image.h"
#include "strata/sys/tool_io.h"

namespace strata::tool {
namespace {

namespace fs = std::filesystem;

// An administrator who set the fuse module's enable_uring wants FUSE servers on io_uring (stratafs(1)).
std::string io_uring_option() {
  std::ifstream f("/sys/module/fuse/parameters/enable_uring");
  std::string v;
  return (f >> v) && v == "Y" ? ",io_uring" : "";
}
using json = nlohmann::json;

constexpr const char* kMountUsage =
    "Usage: strata mount [--name NAME] IMAGE [MOUNTPOINT]\n"
    "\n"
    "Mount IMAGE with a fresh writable layer as container NAME (default: a generated name) and print\n"
    "the mountpoint (default: STORE/containers/NAME/merged).\n";
constexpr const char* kUmountUsage =
    "Usage: strata umount NAME...\n"
    "\n"
    "Unmount containers; their writable layers (STORE/containers/NAME/upper) are kept.\n";
constexpr const char* kPsUsage =
    "Usage: strata ps [--format table|json]\n"
    "\n"
    "List containers: NAME, IMAGE, MOUNTPOINT, MOUNTED.\n";

bool valid_name(const std::string& n) {
  if (n.empty() || n.size() > 128 || !std::isalnum(static_cast<unsigned char>(n[0]))) return false;
  for (char c : n)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') return false;
  return true;
}

std::string find_stratafs(const Globals& g) {
  if (!g.stratafs.empty()) return g.stratafs;
  if (auto self = sys::self_exe()) {
    std::string next = fs::path(*self).parent_path() / "stratafs";
    if (sys::is_executable(next)) return next;
  }
  return "stratafs";  // looked up in PATH by run_program
}

Result<json> read_state(const std::string& dir) {
  std::ifstream f(dir + "/state.json");
  if (!f) return make_error(ENOENT, "container", fs::path(dir).filename().string() + ": no such container");
  json j = json::parse(f, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return make_error(EBADMSG, "container", dir + "/state.json");
  return j;
}

Status write_state(const std::string& dir, const json& j) {
  std::string tmp = dir + "/.state.json.tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << j.dump(2) << "\n";
    if (!f.flush()) return make_error(EIO, "write", tmp);
  }
  std::error_code ec;
  fs::rename(tmp, dir + "/state.json", ec);
  if (ec) return make_error(ec.value(), "rename", dir + "/state.json");
  return {};
}

}  // namespace

int cmd_mount(const Globals& g, const Args& args) {
  std::string name, image, mountpoint;
  for (size_t i = 0; i < args.size(); ++i) {
    bool missing = false;
    if (is_help(args[i])) {
      std::fputs(kMountUsage, stdout);
      return 0;
    }
    if (take_value(args, i, "--name", &name, &missing)) {
      if (missing) return usage_error("mount", "--name needs a value");
      continue;
    }
    if (args[i].size() > 1 && args[i][0] == '-') return usage_error("mount", "unknown option '" + args[i] + "'");
    if (image.empty()) image = args[i];
    else if (mountpoint.empty()) mountpoint = args[i];
    else return usage_error("mount", "too many arguments");
  }
  if (image.empty()) return usage_error("mount", "missing IMAGE");
  auto st = open_store(g, true);
  if (!st) return fail(st.error());
  auto img = oci::find_image(*st, image);
  if (!img) return fail(img.error());
  if (name.empty()) {
    auto hex = sys::random_hex(6);
    if (!hex) return fail(hex.error());
    name = "strata-" + *hex;
  }
  if (!valid_name(name)) return fail("'" + name + "' is not a valid container name ([A-Za-z0-9][A-Za-z0-9_.-]*)");

  std::vector<std::string> lowers;  // topmost first
  for (auto it = img->config.diff_ids.rbegin(); it != img->config.diff_ids.rend(); ++it) {
    if (!st->has_layer(*it)) return fail("layer " + it->to_string() + " of " + image + " is not in the store; pull again");
    std::string p = st->layer_diff_path(*it);
    if (p.find_first_of(":,") != std::string::npos) return fail("store path " + p + " contains ':' or ','");
    lowers.push_back(p);
  }
  if (lowers.empty()) return fail(image + " has no layers");

  std::string dir = st->root_path() + "/containers/" + name;
  std::error_code ec;
  if (!fs::create_directory(dir, ec)) return fail(ec ? "mkdir " + dir + ": " + ec.message() : "container '" + name + "' exists");
  for (const char* sub : {"upper", "work", "merged"}) {
    if (!fs::create_directory(dir + "/" + sub, ec)) return fail("mkdir " + dir + "/" + sub + ": " + ec.message());
  }
  if (mountpoint.empty()) mountpoint = dir + "/merged";
  fs::create_directories(mountpoint, ec);
  auto mp = sys::real_path(mountpoint);
  if (!mp) return fail(mp.error());
  mountpoint = *mp;

  std::string opts = "lowerdir=";
  for (size_t i = 0; i < lowers.size(); ++i) opts += (i ? ":" : "") + lowers[i];
  opts += ",upperdir=" + dir + "/upper,workdir=" + dir + "/work";
  // Files of other owners (recorded at pull when they could not be given away) keep them in the view, and
  // chown/chmod through the mount are recorded the same way.
  opts += owner_record_option(lowers);
  opts += io_uring_option();
  json state = {{"name", name}, {"image", img->name.empty() ? image : img->name},
                {"image_id", img->config_digest.to_string()}, {"mountpoint", mountpoint},
                {"upper", dir + "/upper"}, {"work", dir + "/work"}, {"layers", lowers}};
  if (auto s = write_state(dir, state); !s) return fail(s.error());

  std::string daemon = find_stratafs(g);
  auto rc = sys::run_program({daemon, "-o", opts, mountpoint});
  if (!rc) return fail(rc.error());
  if (*rc != 0) return fail("stratafs (" + daemon + ") failed with status " + std::to_string(*rc));
  pid_t pid = sys::find_process("stratafs", mountpoint);
  if (pid > 0) {
    state["pid"] = pid;
    if (auto s = write_state(dir, state); !s) return fail(s.error());
  }
  std::printf("%s\n", mountpoint.c_str());
  return 0;
}

int cmd_umount(const Globals& g, const Args& args) {
  std::vector<std::string> names;
  for (const auto& a : args) {
    if (is_help(a)) {
      std::fputs(kUmountUsage, stdout);
      return 0;
    }
    if (a.size() > 1 && a[0] == '-') return usage_error("umount", "unknown option '" + a + "'");
    names.push_back(a);
  }
  if (names.empty()) return usage_error("umount", "missing NAME");
  auto st = open_store(g, true);
  if (!st) return fail(st.error());
  int status = 0;
  for (const auto& n : names) {
    if (!valid_name(n)) {
      status = fail("'" + n + "': no such container");
      continue;
    }
    auto state = read_state(st->root_path() + "/containers/" + n);
    if (!state) {
      status = fail(state.error());
      continue;
    }
    std::string mp = (*state).value("mountpoint", "");
    if (mp.empty() || !sys::is_mount_point(mp)) {
      status = fail(n + " is not mounted");
      continue;
    }
    auto rc = sys::run_program({"fusermount3", "-u", mp});
    if (!rc || *rc != 0) rc = sys::run_program({"umount", mp});
    if (!rc || *rc != 0 || sys::is_mount_point(mp)) status = fail("cannot unmount " + mp);
  }
  return status;
}

int cmd_ps(const Globals& g, const Args& args) {
  std::string format = "table";
  for (size_t i = 0; i < args.size(); ++i) {
    bool missing = false;
    if (is_help(args[i])) {
      std::fputs(kPsUsage, stdout);
      return 0;
    }
    if (take_value(args, i, "--format", &format, &missing)) {
      if (missing) return usage_error("ps", "--format needs a value");
      continue;
    }
    return usage_error("ps", "unexpected argument '" + args[i] + "'");
  }
  if (format != "table" && format != "json") return usage_error("ps", "--format is table or json");
  auto st = open_store(g, true);
  if (!st) return fail(st.error());
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(st->root_path() + "/containers", ec)) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  json out = json::array();
  for (const auto& n : names) {
    auto state = read_state(st->root_path() + "/containers/" + n);
    if (!state) continue;
    std::string mp = state->value("mountpoint", "");
    out.push_back({{"Name", n}, {"Image", state->value("image", "")}, {"Mountpoint", mp},
                   {"Mounted", !mp.empty() && sys::is_mount_point(mp)}});
  }
  if (format == "json") {
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("%-20s  %-30s  %-8s  %s\n", "NAME", "IMAGE", "MOUNTED", "MOUNTPOINT");
  for (const auto& c : out) {
    std::printf("%-20s  %-30s  %-8s  %s\n", c["Name"].get<std::string>().c_str(), c["Image"].get<std::string>().c_str(),
                c["Mounted"].get<bool>() ? "yes" : "no", c["Mountpoint"].get<std::string>().c_str());
  }
  return 0;
}

}  // namespace strata::tool
