/*===- CHeaderTest.c - runtime.h is usable from C99 ----------------------===*\
|*                                                                            *|
|* Compiled as C (-std=c99 -pedantic): opens the good bundle, queries a       *|
|* signature and runs its "half" kernel (also asynchronously) through the C   *|
|* API only.                                                                  *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/

#include "normc/runtime.h"

#include <string.h>

/* Returns 0 on success, otherwise the number of the failing step. */
int normc_c_api_smoke(const char *bundlePath) {
  normc_bundle *bundle = NULL;
  const normc_kernel *kernel = NULL;
  normc_context *context = NULL;
  normc_context_options options;
  normc_arg_info info;
  normc_tensor args[2];
  int64_t shape[2] = {2, 3};
  uint16_t a[6] = {1, 2, 3, 4, 5, 6};
  uint16_t b[6] = {0, 0, 0, 0, 0, 0};
  int result = 0;

  if (normc_bundle_open(bundlePath, &bundle) != NORMC_OK)
    return 1;
  if (normc_bundle_find_kernel(bundle, "half", &kernel) != NORMC_OK) {
    result = 2;
    goto done;
  }
  if (normc_kernel_arg(kernel, 1, &info) != NORMC_OK ||
      strcmp(info.name, "b") != 0 || info.dtype != NORMC_DTYPE_BF16 ||
      info.io != NORMC_IO_OUT || info.rank != 2) {
    result = 3;
    goto done;
  }
  normc_context_options_init(&options);
  options.num_threads = 2;
  if (normc_context_create(&options, &context) != NORMC_OK) {
    result = 4;
    goto done;
  }
  memset(args, 0, sizeof(args)); /* device: CPU, no strides */
  args[0].data = a;
  args[0].dtype = NORMC_DTYPE_F16;
  args[0].rank = 2;
  args[0].shape = shape;
  args[1] = args[0];
  args[1].data = b;
  args[1].dtype = NORMC_DTYPE_BF16;
  if (normc_run(context, kernel, args, 2) != NORMC_OK) {
    result = 5;
    goto done;
  }
  if (memcmp(a, b, sizeof(a)) != 0) {
    result = 6;
    goto done;
  }
  /* The GPU additions: no GPU code here, and an asynchronous run of a CPU
     kernel is synchronous (the stream is ignored). */
  if (normc_bundle_num_gpu_archs(bundle) != 0 ||
      normc_bundle_gpu_arch(bundle, 0) != NULL ||
      normc_kernel_has_device_code(kernel, NORMC_DEVICE_CPU) != 1 ||
      normc_kernel_has_device_code(kernel, NORMC_DEVICE_CUDA) != 0) {
    result = 7;
    goto done;
  }
  memset(b, 0, sizeof(b));
  if (normc_run_async(context, kernel, args, 2, NULL) != NORMC_OK ||
      memcmp(a, b, sizeof(a)) != 0)
    result = 8;

done:
  normc_context_destroy(context);
  normc_bundle_close(bundle);
  return result;
}
