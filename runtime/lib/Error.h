//===- Error.h - Thread-local error reporting -------------------*- C++ -*-===//
//
// Every failing C API call records a message for normc_last_error(). Messages
// are produced where the failure is detected (which knows the most context)
// and the status code is propagated unchanged to the API boundary.
//
//===----------------------------------------------------------------------===//

#ifndef NORMC_RUNTIME_ERROR_H
#define NORMC_RUNTIME_ERROR_H

#include "normc/runtime.h"

#include <string>

namespace normc {

/// printf-style formatting into a std::string.
std::string format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/// Records `message` as the calling thread's last error and returns `status`.
normc_status setError(normc_status status, std::string message);

/// Formatting shorthand for setError.
normc_status fail(normc_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/// The calling thread's last error message.
const char *lastError();

} // namespace normc

#endif // NORMC_RUNTIME_ERROR_H
