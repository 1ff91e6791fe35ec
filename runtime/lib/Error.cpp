//===- Error.cpp - Thread-local error reporting ---------------------------===//

#include "Error.h"

#include <cstdarg>
#include <cstdio>

namespace normc {

// Thread-local so concurrent runs on different threads never see each
// other's messages.
static thread_local std::string lastErrorMessage;

static std::string vformat(const char *fmt, va_list args) {
  va_list copy;
  va_copy(copy, args);
  int length = std::vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  if (length <= 0)
    return std::string();
  std::string result(static_cast<size_t>(length) + 1, '\0');
  std::vsnprintf(&result[0], result.size(), fmt, args);
  result.resize(static_cast<size_t>(length));
  return result;
}

std::string format(const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  std::string result = vformat(fmt, args);
  va_end(args);
  return result;
}

normc_status setError(normc_status status, std::string message) {
  lastErrorMessage = std::move(message);
  return status;
}

normc_status fail(normc_status status, const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  lastErrorMessage = vformat(fmt, args);
  va_end(args);
  return status;
}

const char *lastError() { return lastErrorMessage.c_str(); }

} // namespace normc
