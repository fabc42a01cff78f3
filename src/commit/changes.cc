// SPDX-License-Identifier: Apache-2.0
// The `-c` instructions: a Dockerfile line's keyword and arguments, and what each does to the
// config. Quoting follows the Dockerfile rules docker's --change parser uses for these
// instructions: whitespace separates words, '...' is literal, "..." and bare words take backslash
// escapes.
#include "strata/commit/changes.h"

#include <cctype>
#include <cstdlib>

namespace strata::commit {
namespace {

using nlohmann::json;

Error bad(std::string_view instr, const std::string& why) {
  return make_error(EINVAL, "commit -c", "'" + std::string(instr) + "': " + why);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string upper(std::string_view s) {
  std::string o(s);
  for (auto& c : o) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return o;
}

// Shell-like words; false on an unterminated quote.
bool split_words(std::string_view s, std::vector<std::string>* out) {
  std::string cur;
  bool in_word = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (in_word) out->push_back(std::move(cur));
      cur.clear();
      in_word = false;
      continue;
    }
    in_word = true;
    if (c == '\\' && i + 1 < s.size()) {
      cur += s[++i];
    } else if (c == '\'') {
      size_t end = s.find('\'', i + 1);
      if (end == std::string_view::npos) return false;
      cur.append(s.substr(i + 1, end - i - 1));
      i = end;
    } else if (c == '"') {
      size_t j = i + 1;
      for (; j < s.size() && s[j] != '"'; ++j) {
        if (s[j] == '\\' && j + 1 < s.size() && (s[j + 1] == '"' || s[j + 1] == '\\')) ++j;
        cur += s[j];
      }
      if (j >= s.size()) return false;
      i = j;
    } else {
      cur += c;
    }
  }
  if (in_word) out->push_back(std::move(cur));
  return true;
}

// A JSON array of strings (exec form); false when `s` is not one.
bool json_strings(std::string_view s, std::vector<std::string>* out) {
  if (s.empty() || s.front() != '[') return false;
  json j = json::parse(s, nullptr, false);
  if (j.is_discarded() || !j.is_array()) return false;
  std::vector<std::string> v;
  for (const auto& x : j) {
    if (!x.is_string()) return false;
    v.push_back(x.get<std::string>());
  }
  *out = std::move(v);
  return true;
}

// k=v words, or the legacy "k rest of line" form.
Status key_values(std::string_view instr, std::string_view rest, Change* c) {
  std::vector<std::string> words;
  if (!split_words(rest, &words)) return bad(instr, "unterminated quote");
  if (words.empty()) return bad(instr, "missing arguments");
  if (words[0].find('=') == std::string::npos) {
    // Legacy form: the key, then everything after it (one pair).
    size_t k = 0;
    while (k < rest.size() && !std::isspace(static_cast<unsigned char>(rest[k]))) ++k;
    std::string_view value = trim(rest.substr(k));
    if (value.empty()) return bad(instr, "needs KEY=VALUE (or KEY VALUE)");
    std::vector<std::string> vw;
    if (!split_words(value, &vw)) return bad(instr, "unterminated quote");
    std::string joined;
    for (size_t i = 0; i < vw.size(); ++i) joined += (i ? " " : "") + vw[i];
    c->pairs.emplace_back(words[0], joined);
    return {};
  }
  for (const auto& w : words) {
    size_t eq = w.find('=');
    if (eq == std::string::npos) return bad(instr, "'" + w + "' is not KEY=VALUE");
    if (eq == 0) return bad(instr, "empty key in '" + w + "'");
    c->pairs.emplace_back(w.substr(0, eq), w.substr(eq + 1));
  }
  return {};
}

bool parse_port(std::string_view s, long* out) {
  if (s.empty() || s.size() > 5) return false;
  long v = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + (ch - '0');
  }
  if (v < 1 || v > 65535) return false;
  *out = v;
  return true;
}

Status expose(std::string_view instr, const std::vector<std::string>& words, Change* c) {
  for (const auto& w : words) {
    std::string_view spec = w, proto = "tcp";
    if (auto slash = spec.find('/'); slash != std::string_view::npos) {
      proto = spec.substr(slash + 1);
      spec = spec.substr(0, slash);
    }
    std::string p = upper(proto);
    if (p != "TCP" && p != "UDP" && p != "SCTP")
      return bad(instr, "'" + w + "': protocol is tcp, udp or sctp");
    long from = 0, to = 0;
    auto dash = spec.find('-');
    bool ok = dash == std::string_view::npos
                  ? parse_port(spec, &from) && (to = from)
                  : parse_port(spec.substr(0, dash), &from) &&
                        parse_port(spec.substr(dash + 1), &to) && from <= to;
    if (!ok) return bad(instr, "'" + w + "' is not PORT[/PROTO] or FROM-TO[/PROTO] (1-65535)");
    if (to - from > 65535) return bad(instr, "range too large");
    std::string lp(proto);
    for (auto& ch : lp) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    for (long port = from; port <= to; ++port) c->args.push_back(std::to_string(port) + "/" + lp);
  }
  return {};
}

const char* const kSignals[] = {"HUP",   "INT",  "QUIT",   "ILL",  "TRAP", "ABRT",   "IOT",
                                "BUS",   "FPE",  "KILL",   "USR1", "SEGV", "USR2",   "PIPE",
                                "ALRM",  "TERM", "STKFLT", "CHLD", "CONT", "STOP",   "TSTP",
                                "TTIN",  "TTOU", "URG",    "XCPU", "XFSZ", "VTALRM", "PROF",
                                "WINCH", "IO",   "POLL",   "PWR",  "SYS",  "RTMIN",  "RTMAX"};

bool valid_signal(std::string_view s) {
  if (s.empty()) return false;
  if (std::isdigit(static_cast<unsigned char>(s[0]))) {
    long v = 0;
    for (char ch : s) {
      if (ch < '0' || ch > '9' || v > 1000) return false;
      v = v * 10 + (ch - '0');
    }
    return v >= 1 && v <= 64;
  }
  std::string u = upper(s);
  if (u.rfind("SIG", 0) == 0) u = u.substr(3);
  for (const char* k : kSignals)
    if (u == k) return true;
  // RTMIN+N / RTMAX-N
  for (const char* base : {"RTMIN+", "RTMAX-"}) {
    std::string b(base);
    if (u.rfind(b, 0) == 0 && u.size() > b.size() && u.size() <= b.size() + 2 &&
        u.find_first_not_of("0123456789", b.size()) == std::string::npos)
      return true;
  }
  return false;
}

// Cmd / Entrypoint value: exec form, or shell form wrapped in /bin/sh -c.
std::vector<std::string> command(std::string_view rest) {
  std::vector<std::string> v;
  if (json_strings(rest, &v)) return v;
  return {"/bin/sh", "-c", std::string(rest)};
}

std::string join_path(const std::string& base, const std::string& rel) {
  if (!rel.empty() && rel[0] == '/') return rel;
  std::string b = base.empty() ? "/" : base;
  if (b.back() != '/') b += '/';
  return b + rel;
}

// The object config[key], made one when absent or null.
Result<json*> object_field(json* config, const char* key) {
  json& f = (*config)[key];
  if (f.is_null()) f = json::object();
  if (!f.is_object())
    return make_error(EINVAL, "commit -c",
                      std::string("the parent config's ") + key + " is not an object");
  return &f;
}

}  // namespace

Result<Change> parse_change(std::string_view instruction) {
  std::string_view s = trim(instruction);
  if (s.empty()) return bad(instruction, "empty instruction");
  size_t k = 0;
  while (k < s.size() && !std::isspace(static_cast<unsigned char>(s[k]))) ++k;
  std::string kw = upper(s.substr(0, k));
  std::string_view rest = trim(s.substr(k));
  Change c;
  c.text = std::string(s);
  auto need_args = [&]() -> Status {
    if (rest.empty()) return bad(instruction, kw + " needs an argument");
    return {};
  };
  if (kw == "CMD" || kw == "ENTRYPOINT") {
    c.kind = kw == "CMD" ? ChangeKind::kCmd : ChangeKind::kEntrypoint;
    STRATA_TRY(need_args());
    c.args = command(rest);
  } else if (kw == "ENV" || kw == "LABEL") {
    c.kind = kw == "ENV" ? ChangeKind::kEnv : ChangeKind::kLabel;
    STRATA_TRY(need_args());
    STRATA_TRY(key_values(instruction, rest, &c));
  } else if (kw == "EXPOSE") {
    c.kind = ChangeKind::kExpose;
    STRATA_TRY(need_args());
    std::vector<std::string> words;
    if (!split_words(rest, &words)) return bad(instruction, "unterminated quote");
    STRATA_TRY(expose(instruction, words, &c));
  } else if (kw == "VOLUME") {
    c.kind = ChangeKind::kVolume;
    STRATA_TRY(need_args());
    if (!json_strings(rest, &c.args) && !split_words(rest, &c.args))
      return bad(instruction, "unterminated quote");
    if (c.args.empty()) return bad(instruction, "VOLUME needs a path");
    for (const auto& v : c.args)
      if (v.empty()) return bad(instruction, "empty volume path");
  } else if (kw == "USER" || kw == "WORKDIR" || kw == "STOPSIGNAL") {
    c.kind = kw == "USER"      ? ChangeKind::kUser
             : kw == "WORKDIR" ? ChangeKind::kWorkdir
                               : ChangeKind::kStopSignal;
    STRATA_TRY(need_args());
    std::vector<std::string> words;
    if (!split_words(rest, &words)) return bad(instruction, "unterminated quote");
    if (words.size() != 1) return bad(instruction, kw + " takes one argument");
    c.value = words[0];
    if (c.kind == ChangeKind::kStopSignal && !valid_signal(c.value))
      return bad(instruction, "'" + c.value + "' is not a signal");
    if (c.kind == ChangeKind::kUser && (c.value.front() == ':' || c.value.back() == ':'))
      return bad(instruction, "USER is user[:group]");
  } else {
    return bad(instruction,
               "'" + std::string(s.substr(0, k)) +
                   "' cannot be applied by commit (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, "
                   "USER, VOLUME, WORKDIR, STOPSIGNAL can)");
  }
  return c;
}

Result<std::vector<Change>> parse_changes(const std::vector<std::string>& instructions) {
  std::vector<Change> out;
  for (const auto& i : instructions) {
    STRATA_ASSIGN_OR_RETURN(c, parse_change(i));
    out.push_back(std::move(c));
  }
  return out;
}

Status apply_changes(json* config, const std::vector<Change>& changes) {
  if (config->is_null()) *config = json::object();
  if (!config->is_object())
    return make_error(EINVAL, "commit -c", "the parent config's \"config\" is not an object");
  bool cmd_set = false;
  for (const auto& c : changes) {
    switch (c.kind) {
      case ChangeKind::kCmd:
        (*config)["Cmd"] = c.args;
        cmd_set = true;
        break;
      case ChangeKind::kEntrypoint:
        (*config)["Entrypoint"] = c.args;
        if (!cmd_set) config->erase("Cmd");
        break;
      case ChangeKind::kEnv: {
        json& env = (*config)["Env"];
        if (env.is_null()) env = json::array();
        if (!env.is_array())
          return make_error(EINVAL, "commit -c", "the parent config's Env is not an array");
        for (const auto& [k, v] : c.pairs) {
          std::string entry = k + "=" + v;
          bool replaced = false;
          for (auto& e : env) {
            if (!e.is_string()) continue;
            std::string s = e.get<std::string>();
            if (s == k || s.rfind(k + "=", 0) == 0) {
              e = entry;
              replaced = true;
              break;
            }
          }
          if (!replaced) env.push_back(entry);
        }
        break;
      }
      case ChangeKind::kLabel: {
        STRATA_ASSIGN_OR_RETURN(labels, object_field(config, "Labels"));
        for (const auto& [k, v] : c.pairs) (*labels)[k] = v;
        break;
      }
      case ChangeKind::kExpose: {
        STRATA_ASSIGN_OR_RETURN(ports, object_field(config, "ExposedPorts"));
        for (const auto& p : c.args) (*ports)[p] = json::object();
        break;
      }
      case ChangeKind::kVolume: {
        STRATA_ASSIGN_OR_RETURN(vols, object_field(config, "Volumes"));
        for (const auto& v : c.args) (*vols)[v] = json::object();
        break;
      }
      case ChangeKind::kUser:
        (*config)["User"] = c.value;
        break;
      case ChangeKind::kWorkdir: {
        std::string cur;
        if (auto w = config->find("WorkingDir"); w != config->end() && w->is_string())
          cur = w->get<std::string>();
        (*config)["WorkingDir"] = join_path(cur, c.value);
        break;
      }
      case ChangeKind::kStopSignal:
        (*config)["StopSignal"] = c.value;
        break;
    }
  }
  return {};
}

}  // namespace strata::commit
