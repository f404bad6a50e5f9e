/* OpenBLAS sgemm timing harness for bench/sd15.ts, compiled at bench time when libopenblas is installed:
 *   cc -O2 sgemm.c -o sgemm -lopenblas
 * Usage: sgemm M N K TRANS_B REPEATS   (row-major C = A B, or A B^T when TRANS_B is 1; threads from
 * OPENBLAS_NUM_THREADS, kernel from OPENBLAS_CORETYPE). Prints one line of key=value pairs: the detected core,
 * the best wall time and the CPU time of the process over that run. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

char* openblas_get_corename(void);
int openblas_get_num_threads(void);

static double clock_s(clockid_t id) {
  struct timespec t;
  clock_gettime(id, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: %s M N K TRANS_B REPEATS\n", argv[0]);
    return 2;
  }
  const int m = atoi(argv[1]), n = atoi(argv[2]), k = atoi(argv[3]), tb = atoi(argv[4]), reps = atoi(argv[5]);
  float* a = malloc(sizeof(float) * (size_t)m * k);
  float* b = malloc(sizeof(float) * (size_t)k * n);
  float* c = malloc(sizeof(float) * (size_t)m * n);
  if (!a || !b || !c) return 1;
  unsigned s = 12345;
  for (size_t i = 0; i < (size_t)m * k; i++) a[i] = (float)((s = s * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
  for (size_t i = 0; i < (size_t)k * n; i++) b[i] = (float)((s = s * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
  double best = 1e30, best_cpu = 0;
  for (int r = 0; r <= reps; r++) { /* run 0 is the warm-up */
    const double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, k, b, tb ? k : n,
                0.0f, c, n);
    const double w = clock_s(CLOCK_MONOTONIC) - w0, cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    if (r > 0 && w < best) {
      best = w;
      best_cpu = cpu;
    }
  }
  printf("core=%s threads=%d wall=%.6f cpu=%.6f\n", openblas_get_corename(), openblas_get_num_threads(), best,
         best_cpu);
  free(a);
  free(b);
  free(c);
  return 0;
}
