//===- NormOps.h - norm dialect operations ----------------------*- C++ -*-===//

#ifndef NORMC_DIALECT_NORMOPS_H
#define NORMC_DIALECT_NORMOPS_H

#include "dialect/NormDescription.h"
#include "dialect/NormDialect.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialect/NormEnums.h.inc"

#include "dialect/NormInterfaces.h.inc"

#define GET_OP_CLASSES
#include "dialect/NormOps.h.inc"

#endif // NORMC_DIALECT_NORMOPS_H
