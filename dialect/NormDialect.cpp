//===- NormDialect.cpp - norm dialect registration
//-------------------------===//

#include "dialect/NormDialect.h"
#include "dialect/NormOps.h"

using namespace mlir;
using namespace mlir::norm;

#include "dialect/NormDialect.cpp.inc"

void NormDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialect/NormOps.cpp.inc"
      >();
}
