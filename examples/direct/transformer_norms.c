/* Links the kernels that normc generated from
 * examples/specs/transformer_norms.mlir (object + header), runs them on
 * random data and prints the largest error against a double-precision
 * computation written here. No runtime library is involved. */

#include "transformer_norms.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t state = 0x9E3779B97F4A7C15ull;

/* Uniform in [-1, 1): xorshift, reproducible everywhere. */
static double uniform(void) {
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return (double)(state >> 11) / (double)(1ull << 52) - 1.0;
}

static float bf16_to_float(normc_bf16 bits) {
  uint32_t wide = (uint32_t)bits << 16;
  float value;
  memcpy(&value, &wide, sizeof value);
  return value;
}

static normc_bf16 float_to_bf16(float value) {
  uint32_t bits;
  memcpy(&bits, &value, sizeof bits);
  bits += 0x7FFF + ((bits >> 16) & 1); /* round to nearest even */
  return (normc_bf16)(bits >> 16);
}

static int layer_norm_check(int64_t rows) {
  enum { H = 768 };
  float *x = malloc(sizeof(float) * rows * H),
        *y = malloc(sizeof(float) * rows * H);
  float *mean = malloc(sizeof(float) * rows),
        *rstd = malloc(sizeof(float) * rows);
  float w[H], b[H];
  for (int64_t i = 0; i < rows * H; ++i)
    x[i] = (float)(3.0 + 2.0 * uniform());
  for (int i = 0; i < H; ++i) {
    w[i] = (float)(1.0 + 0.5 * uniform());
    b[i] = (float)(0.1 * uniform());
  }
  int32_t rc = layer_norm_768(x, w, b, y, mean, rstd, rows);
  if (rc != NORMC_OK) {
    fprintf(stderr, "layer_norm_768 failed with %d\n", rc);
    return 1;
  }
  double worst = 0.0;
  for (int64_t r = 0; r < rows; ++r) {
    double mu = 0.0, var = 0.0;
    for (int i = 0; i < H; ++i)
      mu += x[r * H + i];
    mu /= H;
    for (int i = 0; i < H; ++i)
      var += (x[r * H + i] - mu) * (x[r * H + i] - mu);
    double inv = 1.0 / sqrt(var / H + 1e-5);
    for (int i = 0; i < H; ++i) {
      double ref = (x[r * H + i] - mu) * inv * w[i] + b[i];
      worst = fmax(worst, fabs(ref - y[r * H + i]));
    }
  }
  printf("layer_norm_768  f32  [%lld x %d]  max |error| vs double: %.3g\n",
         (long long)rows, H, worst);
  free(x), free(y), free(mean), free(rstd);
  return worst < 1e-5 ? 0 : 1;
}

static int rms_norm_check(int64_t rows) {
  enum { H = 4096 };
  normc_bf16 *x = malloc(sizeof(normc_bf16) * rows * H);
  normc_bf16 *y = malloc(sizeof(normc_bf16) * rows * H);
  normc_bf16 w[H];
  for (int64_t i = 0; i < rows * H; ++i)
    x[i] = float_to_bf16((float)uniform());
  for (int i = 0; i < H; ++i)
    w[i] = float_to_bf16((float)(1.0 + 0.25 * uniform()));
  int32_t rc = rms_norm_4096(x, w, y, rows);
  if (rc != NORMC_OK) {
    fprintf(stderr, "rms_norm_4096 failed with %d\n", rc);
    return 1;
  }
  double worst = 0.0; /* relative to bf16's resolution at the value */
  for (int64_t r = 0; r < rows; ++r) {
    double ms = 0.0;
    for (int i = 0; i < H; ++i) {
      double v = bf16_to_float(x[r * H + i]);
      ms += v * v;
    }
    double inv = 1.0 / sqrt(ms / H + 1e-6);
    for (int i = 0; i < H; ++i) {
      double ref = bf16_to_float(x[r * H + i]) * inv * bf16_to_float(w[i]);
      double err =
          fabs(ref - bf16_to_float(y[r * H + i])) / (1e-5 + 1.6e-2 * fabs(ref));
      worst = fmax(worst, err);
    }
  }
  printf("rms_norm_4096   bf16 [%lld x %d] max error / bf16 tolerance: %.3g\n",
         (long long)rows, H, worst);
  free(x), free(y);
  return worst <= 1.0 ? 0 : 1;
}

int main(void) {
  int failures = layer_norm_check(33) + rms_norm_check(9);
  /* Bad input is an error code, not a crash. */
  if (layer_norm_768(NULL, NULL, NULL, NULL, NULL, NULL, 4) !=
          NORMC_ERR_NULL_POINTER ||
      layer_norm_768(NULL, NULL, NULL, NULL, NULL, NULL, -1) !=
          NORMC_ERR_BAD_SHAPE) {
    fprintf(stderr, "bad input was not rejected\n");
    ++failures;
  }
  printf(failures ? "FAILED\n" : "OK\n");
  return failures ? 1 : 0;
}
