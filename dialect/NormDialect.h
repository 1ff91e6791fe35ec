//===- NormDialect.h - norm dialect -----------------------------*- C++ -*-===//

#ifndef NORMC_DIALECT_NORMDIALECT_H
#define NORMC_DIALECT_NORMDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/Dialect.h"

#include "dialect/NormDialect.h.inc"

#endif // NORMC_DIALECT_NORMDIALECT_H
