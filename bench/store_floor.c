/* The storing import's leaf work with no interpreter: the floor the Python import is held to.
 *
 * store_floor BLOCKS_DIR SOURCE [THREADS]
 *
 * Splits SOURCE into 262144-byte chunks (CIDv1 raw leaves: a leaf's block is its chunk) and,
 * on THREADS threads (default 2), for each chunk does what storage/leaves.py + storage/
 * blockstore.py do per leaf: pread it into the thread's buffer, sha256 it (OpenSSL, as
 * hashlib), name it by the digest (base32, sharded by the next-to-last two characters),
 * stat the final name, write a temp file, sync_file_range(SYNC_FILE_RANGE_WRITE), close,
 * link it into place, unlink the temp; then one syncfs. No DAG, no pins, no quota: only the
 * leaves, which are all but ~0.6% of the blocks of a large file. Prints the wall milliseconds.
 * Built and run by bench/bench_store_floor.py; not part of the node.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 262144
static int src;
static const char *root;
static long nchunks;
static int nthreads = 2;

static void b32(const unsigned char *in, int n, char *out) {
  static const char *abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  int bits = 0, o = 0;
  unsigned int acc = 0;
  for (int i = 0; i < n; i++) {
    acc = (acc << 8) | in[i];
    bits += 8;
    while (bits >= 5) {
      out[o++] = abc[(acc >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits) out[o++] = abc[(acc << (5 - bits)) & 31];
  out[o] = 0;
}

static void *work(void *arg) {
  long t = (long)arg;
  unsigned char *buf = malloc(CHUNK);
  unsigned char mh[34] = {0x12, 0x20};
  char key[64], shard[4096], path[8192], tmp[8192];
  struct stat st;
  for (long i = t; i < nchunks; i += nthreads) {
    ssize_t got = pread(src, buf, CHUNK, (off_t)i * CHUNK);
    if (got <= 0) break;
    SHA256(buf, (size_t)got, mh + 2);
    b32(mh, 34, key);
    size_t k = strlen(key);
    snprintf(shard, sizeof shard, "%s/%c%c", root, key[k - 3], key[k - 2]);
    snprintf(path, sizeof path, "%s/%s.data", shard, key);
    if (stat(path, &st) == 0) continue;
    snprintf(tmp, sizeof tmp, "%s/.tmp/%d-%ld-%ld", root, getpid(), t, i);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, buf, (size_t)got) != got) { perror("write"); exit(1); }
    sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    close(fd);
    if (link(tmp, path) != 0) {
      if (errno == ENOENT) {
        mkdir(shard, 0700);
        if (link(tmp, path) != 0 && errno != EEXIST) { perror("link"); exit(1); }
      } else if (errno != EEXIST) { perror("link"); exit(1); }
    }
    unlink(tmp);
  }
  free(buf);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: store_floor BLOCKS_DIR SOURCE [THREADS]\n"); return 2; }
  root = argv[1];
  if (argc > 3) nthreads = atoi(argv[3]);
  src = open(argv[2], O_RDONLY);
  if (src < 0) { perror(argv[2]); return 1; }
  nchunks = (lseek(src, 0, SEEK_END) + CHUNK - 1) / CHUNK;
  char d[4096];
  mkdir(root, 0700);
  snprintf(d, sizeof d, "%s/.tmp", root);
  mkdir(d, 0700);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pthread_t th[64];
  for (long i = 0; i < nthreads && i < 64; i++) pthread_create(&th[i], 0, work, (void *)i);
  for (long i = 0; i < nthreads && i < 64; i++) pthread_join(th[i], 0);
  int fd = open(root, O_RDONLY);
  syncfs(fd);
  close(fd);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("%.3f\n", (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
  return 0;
}
