// SPDX-License-Identifier: Apache-2.0
// commit: the -c instructions (changes.h). The contract under test: each supported instruction's
// forms (exec/shell, k=v/legacy, quoting, ranges) land in the config as docker commit puts them;
// ENTRYPOINT clears Cmd unless a CMD came first; everything else is an EINVAL naming it.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "strata/commit/changes.h"
#include "tree.h"

namespace {

using nlohmann::json;
using strata::commit::apply_changes;
using strata::commit::parse_change;
using strata::commit::parse_changes;

json apply(json config, const std::vector<std::string>& instrs) {
  auto cs = parse_changes(instrs);
  if (!cs) throw std::runtime_error(cs.error().message());
  auto r = apply_changes(&config, *cs);
  if (!r) throw std::runtime_error(r.error().message());
  return config;
}

TEST(Changes, CmdExecAndShellForms) {
  EXPECT_EQ(apply(json(), {R"(CMD ["sh", "-c", "x"])"})["Cmd"], json({"sh", "-c", "x"}));
  EXPECT_EQ(apply(json(), {"CMD echo hi  there"})["Cmd"],
            json({"/bin/sh", "-c", "echo hi  there"}));
  // Not a JSON array of strings: the shell form, as docker does.
  EXPECT_EQ(apply(json(), {"CMD [1, 2]"})["Cmd"], json({"/bin/sh", "-c", "[1, 2]"}));
  EXPECT_EQ(apply(json(), {"cmd [\"lower\"]"})["Cmd"], json({"lower"}));
  EXPECT_EQ(apply(json(), {"CMD []"})["Cmd"], json::array());
}

TEST(Changes, EntrypointClearsCmdUnlessCmdCameFirst) {
  json base = {{"Cmd", {"old"}}};
  json a = apply(base, {R"(ENTRYPOINT ["/app"])"});
  EXPECT_EQ(a["Entrypoint"], json({"/app"}));
  EXPECT_FALSE(a.contains("Cmd"));
  json b = apply(base, {R"(CMD ["arg"])", "ENTRYPOINT /app --flag"});
  EXPECT_EQ(b["Entrypoint"], json({"/bin/sh", "-c", "/app --flag"}));
  EXPECT_EQ(b["Cmd"], json({"arg"}));
}

TEST(Changes, EnvFormsReplaceInPlace) {
  json base = {{"Env", {"PATH=/bin", "A=old", "B=keep"}}};
  json c = apply(base, {"ENV A=new C=\"x y\" D='q\"r' E=a\\ b", "ENV F the rest  of it"});
  EXPECT_EQ(c["Env"],
            json({"PATH=/bin", "A=new", "B=keep", "C=x y", "D=q\"r", "E=a b", "F=the rest of it"}));
  EXPECT_EQ(apply(json(), {"ENV EMPTY="})["Env"], json({"EMPTY="}));
}

TEST(Changes, LabelsExposeVolumes) {
  json c = apply(json::object(), {"LABEL a=1 \"b c\"=2", "LABEL legacy some value",
                                  "EXPOSE 80 53/udp 8000-8002/TCP", R"(VOLUME ["/data", "/logs"])",
                                  "VOLUME /x /y"});
  EXPECT_EQ(c["Labels"], json({{"a", "1"}, {"b c", "2"}, {"legacy", "some value"}}));
  EXPECT_EQ(c["ExposedPorts"], json({{"80/tcp", json::object()},
                                     {"53/udp", json::object()},
                                     {"8000/tcp", json::object()},
                                     {"8001/tcp", json::object()},
                                     {"8002/tcp", json::object()}}));
  EXPECT_EQ(c["Volumes"], json({{"/data", json::object()},
                                {"/logs", json::object()},
                                {"/x", json::object()},
                                {"/y", json::object()}}));
}

TEST(Changes, UserWorkdirStopsignal) {
  json c = apply(json({{"WorkingDir", "/srv"}}),
                 {"USER app:staff", "WORKDIR sub", "WORKDIR more", "STOPSIGNAL SIGINT"});
  EXPECT_EQ(c["User"], "app:staff");
  EXPECT_EQ(c["WorkingDir"], "/srv/sub/more");
  EXPECT_EQ(c["StopSignal"], "SIGINT");
  EXPECT_EQ(apply(json(), {"WORKDIR rel"})["WorkingDir"], "/rel");
  EXPECT_EQ(apply(json(), {"WORKDIR /abs"})["WorkingDir"], "/abs");
  for (const char* s :
       {"STOPSIGNAL 9", "STOPSIGNAL TERM", "STOPSIGNAL sigkill", "STOPSIGNAL SIGRTMIN+3"})
    EXPECT_OK(parse_change(s)) << s;
}

TEST(Changes, UnknownFieldsKept) {
  json c = apply(json({{"Custom", {{"x", 1}}}, {"Env", {"A=1"}}}), {"ENV B=2"});
  EXPECT_EQ(c["Custom"], json({{"x", 1}}));
}

TEST(Changes, RejectsWithAClearError) {
  for (const char* bad :
       {"RUN apt-get update", "ADD a b", "COPY a b", "FROM scratch", "HEALTHCHECK NONE",
        "ONBUILD RUN x", "ARG x", "SHELL [\"sh\"]", "MAINTAINER me"}) {
    auto r = parse_change(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().err, EINVAL);
    EXPECT_NE(r.error().message().find("cannot be applied by commit"), std::string::npos)
        << r.error().message();
  }
  for (const char* bad : {"",
                          "   ",
                          "CMD",
                          "ENV",
                          "ENV =x",
                          "ENV A=1 B",
                          "ENV A=\"unterminated",
                          "LABEL k",
                          "EXPOSE",
                          "EXPOSE 0",
                          "EXPOSE 70000",
                          "EXPOSE 80/icmp",
                          "EXPOSE 90-80",
                          "EXPOSE http",
                          "USER",
                          "USER a b",
                          "USER :g",
                          "WORKDIR",
                          "STOPSIGNAL NOPE",
                          "STOPSIGNAL 99",
                          "VOLUME"}) {
    auto r = parse_change(bad);
    EXPECT_FALSE(r.has_value()) << "'" << bad << "' accepted";
    if (!r) {
      EXPECT_EQ(r.error().err, EINVAL) << bad;
    }
  }
  // One bad instruction fails the list.
  EXPECT_ERRNO(parse_changes({"ENV A=1", "RUN x"}), EINVAL);
}

TEST(Changes, ConfigOfTheWrongShapeIsAnError) {
  auto cs = parse_changes({"ENV A=1"});
  ASSERT_OK(cs);
  json c = json::array();
  EXPECT_ERRNO(apply_changes(&c, *cs), EINVAL);
  json d = {{"Env", "not an array"}};
  EXPECT_ERRNO(apply_changes(&d, *cs), EINVAL);
  auto ls = parse_changes({"LABEL a=b"});
  ASSERT_OK(ls);
  json e = {{"Labels", {1, 2}}};
  EXPECT_ERRNO(apply_changes(&e, *ls), EINVAL);
}

}  // namespace
