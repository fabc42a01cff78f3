// SPDX-License-Identifier: Apache-2.0
// archive: owners that cannot be applied, recorded as fuse-overlayfs's override_stat
// (record_owner); records a layer tries to plant.
#include "archive_fixture.h"

namespace {

TEST_F(ArchiveTest, UnprivilegedRecordsOwners) {
  std::string tar =
      TarBuilder()
          .file("f", "a", 04750,
                [](struct archive_entry* e) {
                  archive_entry_set_uid(e, 3000000);
                  archive_entry_set_gid(e, 7);
                })
          .file("shadow", "secret", 0)
          .dir("d", 0500, [](struct archive_entry* e) { archive_entry_set_uid(e, 33); })
          .file("d/in", "x", 0644)
          .symlink("l", "f")
          .done();
  UnpackOptions o;
  o.privilege = Privilege::kUnprivileged;
  o.record_owner = true;
  auto r = unpack(tar, o);
  ASSERT_UNPACKS(r);
  // fuse-overlayfs's record, the tar's owner and mode (set-id bits included).
  EXPECT_EQ(lstat_or_throw(path("f")).st_uid, ::geteuid());
  EXPECT_EQ(xattr_of(path("f"), "user.fuseoverlayfs.override_stat"), "3000000:7:4750");
  EXPECT_EQ(xattr_of(path("shadow"), "user.fuseoverlayfs.override_stat"), "0:0:0");
  EXPECT_EQ(xattr_of(path("d"), "user.fuseoverlayfs.override_stat"), "33:0:500");
  EXPECT_EQ(xattr_of(path("d/in"), "user.fuseoverlayfs.override_stat"), "0:0:644");
  // The kernel refuses user.* xattrs on symlinks.
  EXPECT_EQ(xattr_of(path("l"), "user.fuseoverlayfs.override_stat"), "<absent>");
  // The real modes stay usable by their owner, this process.
  EXPECT_EQ(lstat_or_throw(path("f")).st_mode & 07777, 04750u);
  EXPECT_EQ(lstat_or_throw(path("shadow")).st_mode & 07777, 0600u);
  EXPECT_EQ(lstat_or_throw(path("d")).st_mode & 07777, 0700u);
  // The layer root is marked (fuse-overlayfs reads records only in marked layers): its real owner
  // and mode.
  struct stat root = lstat_or_throw(dest);
  char want[64];
  snprintf(want, sizeof want, "%u:%u:%o", root.st_uid, root.st_gid, root.st_mode & 07777);
  EXPECT_EQ(xattr_of(dest, "user.fuseoverlayfs.override_stat"), want);
  EXPECT_EQ(xattr_of(path("f"), "user.strata.owner"), "<absent>");  // the old form is gone
  // Without the option nothing is recorded, and the modes are the tar's.
  TempDir t;
  dest = t.sub("dest");
  o.record_owner = false;
  ASSERT_UNPACKS(unpack(tar, o));
  EXPECT_EQ(xattr_of(path("f"), "user.fuseoverlayfs.override_stat"), "<absent>");
  EXPECT_EQ(xattr_of(dest, "user.fuseoverlayfs.override_stat"), "<absent>");
  EXPECT_EQ(lstat_or_throw(path("shadow")).st_mode & 07777, 0u);
}

TEST_F(ArchiveTest, RootEntryRecordIsTheLayerMarker) {
  std::string tar = TarBuilder()
                        .dir(".", 0750,
                             [](struct archive_entry* e) {
                               archive_entry_set_uid(e, 0);
                               archive_entry_set_gid(e, 0);
                             })
                        .file("f", "a", 0644)
                        .done();
  UnpackOptions o;
  o.privilege = Privilege::kUnprivileged;
  o.record_owner = true;
  ASSERT_UNPACKS(unpack(tar, o));
  EXPECT_EQ(xattr_of(dest, "user.fuseoverlayfs.override_stat"), "0:0:750");
  EXPECT_EQ(lstat_or_throw(dest).st_mode & 07777, 0750u);
}

TEST_F(ArchiveTest, LayerCannotPlantOwnerRecords) {
  // The records an unprivileged view obeys: a layer could otherwise show a file of the user's own
  // as setuid root. Dropped with a warning, with record_owner or without.
  std::string tar = pax({{"SCHILY.xattr.user.fuseoverlayfs.override_stat", "0:0:4755"},
                         {"SCHILY.xattr.user.containers.override_stat", "0:0:4755"},
                         {"SCHILY.xattr.user.ok", "1"}}) +
                    raw_entry(Raw("f").data("x")) + kEnd;
  for (bool record : {false, true}) {
    TempDir t;
    dest = t.sub("dest");
    UnpackOptions o;
    o.privilege = Privilege::kUnprivileged;
    o.record_owner = record;
    auto r = unpack(tar, o);
    ASSERT_UNPACKS(r);
    EXPECT_EQ(xattr_of(path("f"), "user.ok"), "1");
    EXPECT_EQ(xattr_of(path("f"), "user.containers.override_stat"), "<absent>");
    // With record_owner, the record is the unpacker's own (the tar's owner 0:0, mode 0644).
    EXPECT_EQ(xattr_of(path("f"), "user.fuseoverlayfs.override_stat"),
              record ? "0:0:644" : "<absent>");
    std::string all;
    for (const auto& w : r->warnings) all += w + "\n";
    EXPECT_NE(all.find("'user.fuseoverlayfs.override_stat' dropped"), std::string::npos) << all;
    EXPECT_NE(all.find("'user.containers.override_stat' dropped"), std::string::npos) << all;
  }
}

}  // namespace
