/* strata benchmark helper: the per-operation loops of bench/run.py, in C so that
 * interpreter overhead does not dominate per-file costs.
 *
 * Built by run.py with `cc -O2`. Every subcommand times only its own loop
 * (CLOCK_MONOTONIC, from the first operation to the last, including the open
 * and close of the file it works on) and prints `key=value` lines:
 *   elapsed=SECONDS   plus counters (count=, bytes=, files=, dirs=, other=).
 * Any failure prints the failing call and errno to stderr and exits 1.
 *
 *   create  DIR N               openat(O_CREAT|O_EXCL|O_WRONLY)+close N empty files f0000000..
 *   stat    DIR N               fstatat(AT_SYMLINK_NOFOLLOW) those N files
 *   unlink  DIR N               unlinkat those N files
 *   seqread FILE BS             read the whole file with BS-byte reads
 *   seqwrite FILE MIB BS        write MIB MiB in BS-byte writes to a new file, fsync, close
 *   randread FILE COUNT BS SEED COUNT preads of BS bytes at BS-aligned offsets (xorshift64*)
 *   walk    DIR                 nftw(FTW_PHYS): lstat every entry below DIR
 *   readdir DIR                 opendir/readdir/closedir, count entries (without . and ..)
 *   copyup  FILE                open(O_WRONLY) + pwrite 1 byte at offset 0 + close
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void die(const char *what, const char *arg) {
    fprintf(stderr, "helper: %s(%s): %s\n", what, arg ? arg : "", strerror(errno));
    exit(1);
}

static long parse_long(const char *s) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 0) {
        fprintf(stderr, "helper: bad number '%s'\n", s);
        exit(2);
    }
    return v;
}

static int open_dir(const char *dir) {
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) die("open", dir);
    return dfd;
}

static void name_of(char *buf, size_t len, long i) { snprintf(buf, len, "f%07ld", i); }

static int cmd_create(const char *dir, long n) {
    int dfd = open_dir(dir);
    char name[32];
    double t0 = now();
    for (long i = 0; i < n; i++) {
        name_of(name, sizeof name, i);
        int fd = openat(dfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
        if (fd < 0) die("openat", name);
        if (close(fd) < 0) die("close", name);
    }
    double t1 = now();
    close(dfd);
    printf("elapsed=%.9f\ncount=%ld\n", t1 - t0, n);
    return 0;
}

static int cmd_stat(const char *dir, long n) {
    int dfd = open_dir(dir);
    char name[32];
    struct stat st;
    double t0 = now();
    for (long i = 0; i < n; i++) {
        name_of(name, sizeof name, i);
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) die("fstatat", name);
        if (!S_ISREG(st.st_mode)) {
            fprintf(stderr, "helper: %s is not a regular file\n", name);
            return 1;
        }
    }
    double t1 = now();
    close(dfd);
    printf("elapsed=%.9f\ncount=%ld\n", t1 - t0, n);
    return 0;
}

static int cmd_unlink(const char *dir, long n) {
    int dfd = open_dir(dir);
    char name[32];
    double t0 = now();
    for (long i = 0; i < n; i++) {
        name_of(name, sizeof name, i);
        if (unlinkat(dfd, name, 0) < 0) die("unlinkat", name);
    }
    double t1 = now();
    close(dfd);
    printf("elapsed=%.9f\ncount=%ld\n", t1 - t0, n);
    return 0;
}

static int cmd_seqread(const char *file, long bs) {
    char *buf = aligned_alloc(4096, (size_t)bs);
    if (!buf) die("malloc", NULL);
    long long total = 0;
    double t0 = now();
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("open", file);
    for (;;) {
        ssize_t r = read(fd, buf, (size_t)bs);
        if (r < 0) {
            if (errno == EINTR) continue;
            die("read", file);
        }
        if (r == 0) break;
        total += r;
    }
    close(fd);
    double t1 = now();
    printf("elapsed=%.9f\nbytes=%lld\n", t1 - t0, total);
    return 0;
}

static int cmd_seqwrite(const char *file, long mib, long bs) {
    char *buf = aligned_alloc(4096, (size_t)bs);
    if (!buf) die("malloc", NULL);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (long i = 0; i < bs; i += 8) { /* incompressible, non-zero data */
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        memcpy(buf + i, &x, (size_t)(bs - i < 8 ? bs - i : 8));
    }
    long long want = (long long)mib << 20, total = 0;
    double t0 = now();
    int fd = open(file, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) die("open", file);
    while (total < want) {
        size_t chunk = (size_t)((want - total) < bs ? (want - total) : bs);
        memcpy(buf, &total, sizeof total); /* every block differs */
        ssize_t w = write(fd, buf, chunk);
        if (w < 0) {
            if (errno == EINTR) continue;
            die("write", file);
        }
        total += w;
    }
    if (fsync(fd) < 0) die("fsync", file);
    if (close(fd) < 0) die("close", file);
    double t1 = now();
    printf("elapsed=%.9f\nbytes=%lld\n", t1 - t0, total);
    return 0;
}

static int cmd_randread(const char *file, long count, long bs, long seed) {
    char *buf = aligned_alloc(4096, (size_t)bs);
    if (!buf) die("malloc", NULL);
    uint64_t s = (uint64_t)seed * 0x9E3779B97F4A7C15ull + 1;
    double t0 = now();
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("open", file);
    struct stat st;
    if (fstat(fd, &st) < 0) die("fstat", file);
    uint64_t nblocks = (uint64_t)st.st_size / (uint64_t)bs;
    if (nblocks == 0) {
        fprintf(stderr, "helper: %s is smaller than one block\n", file);
        return 1;
    }
    long long total = 0;
    for (long i = 0; i < count; i++) {
        s ^= s >> 12; s ^= s << 25; s ^= s >> 27;
        uint64_t r = s * 2685821657736338717ull;
        off_t off = (off_t)((r % nblocks) * (uint64_t)bs);
        ssize_t n = pread(fd, buf, (size_t)bs, off);
        if (n != bs) die("pread", file);
        total += n;
    }
    close(fd);
    double t1 = now();
    printf("elapsed=%.9f\ncount=%ld\nbytes=%lld\n", t1 - t0, count, total);
    return 0;
}

static long walk_files, walk_dirs, walk_other;
static int walk_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st; (void)ftw;
    if (flag == FTW_NS || flag == FTW_DNR) {
        fprintf(stderr, "helper: cannot stat/read %s\n", path);
        return 1;
    }
    if (flag == FTW_D || flag == FTW_DP) walk_dirs++;
    else if (S_ISREG(st->st_mode)) walk_files++;
    else walk_other++;
    return 0;
}

static int cmd_walk(const char *dir) {
    double t0 = now();
    int rc = nftw(dir, walk_cb, 64, FTW_PHYS);
    double t1 = now();
    if (rc != 0) {
        if (rc < 0) die("nftw", dir);
        return 1;
    }
    printf("elapsed=%.9f\nfiles=%ld\ndirs=%ld\nother=%ld\ncount=%ld\n", t1 - t0, walk_files,
           walk_dirs, walk_other, walk_files + walk_dirs + walk_other);
    return 0;
}

static int cmd_readdir(const char *dir) {
    long n = 0;
    double t0 = now();
    DIR *d = opendir(dir);
    if (!d) die("opendir", dir);
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
        errno = 0;
    }
    if (errno) die("readdir", dir);
    closedir(d);
    double t1 = now();
    printf("elapsed=%.9f\ncount=%ld\n", t1 - t0, n);
    return 0;
}

static int cmd_copyup(const char *file) {
    double t0 = now();
    int fd = open(file, O_WRONLY | O_CLOEXEC);
    if (fd < 0) die("open", file);
    if (pwrite(fd, "X", 1, 0) != 1) die("pwrite", file);
    if (close(fd) < 0) die("close", file);
    double t1 = now();
    printf("elapsed=%.9f\n", t1 - t0);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) goto usage;
    const char *c = argv[1];
    if (!strcmp(c, "create") && argc == 4) return cmd_create(argv[2], parse_long(argv[3]));
    if (!strcmp(c, "stat") && argc == 4) return cmd_stat(argv[2], parse_long(argv[3]));
    if (!strcmp(c, "unlink") && argc == 4) return cmd_unlink(argv[2], parse_long(argv[3]));
    if (!strcmp(c, "seqread") && argc == 4) return cmd_seqread(argv[2], parse_long(argv[3]));
    if (!strcmp(c, "seqwrite") && argc == 5)
        return cmd_seqwrite(argv[2], parse_long(argv[3]), parse_long(argv[4]));
    if (!strcmp(c, "randread") && argc == 6)
        return cmd_randread(argv[2], parse_long(argv[3]), parse_long(argv[4]), parse_long(argv[5]));
    if (!strcmp(c, "walk") && argc == 3) return cmd_walk(argv[2]);
    if (!strcmp(c, "readdir") && argc == 3) return cmd_readdir(argv[2]);
    if (!strcmp(c, "copyup") && argc == 3) return cmd_copyup(argv[2]);
usage:
    fprintf(stderr, "usage: helper create|stat|unlink DIR N | seqread FILE BS | "
                    "seqwrite FILE MIB BS | randread FILE COUNT BS SEED | walk DIR | "
                    "readdir DIR | copyup FILE\n");
    return 2;
}
