# Install test: installs the normc build tree into a temporary prefix, builds
# examples/ as an outside project against it (find_package(normc) through
# CMAKE_PREFIX_PATH) and runs both example executables.
#
#   cmake -DBUILD_DIR=<normc build tree> -DEXAMPLES_DIR=<normc>/examples
#         -DWORK_DIR=<scratch dir, wiped first> [-DGENERATOR=Ninja]
#         [-DMAKE_PROGRAM=...] [-DC_COMPILER=...] [-DCXX_COMPILER=...]
#         [-DBUILD_TYPE=Release] [-DLIBDIR=lib] [-DREUSE_PREFIX=ON]
#         -P InstallTest.cmake
#
# The build tree must be built (normc, norm-opt and normc_runtime); the test
# only installs it. REUSE_PREFIX=ON skips the wipe and the install and uses
# WORK_DIR/prefix as it is (to debug the later steps by hand).
cmake_minimum_required(VERSION 3.20)

foreach(var BUILD_DIR EXAMPLES_DIR WORK_DIR)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "InstallTest.cmake: pass -D${var}=...")
  endif()
endforeach()
if(NOT BUILD_TYPE)
  set(BUILD_TYPE Release)
endif()
if(NOT LIBDIR)
  set(LIBDIR lib)
endif()

set(prefix ${WORK_DIR}/prefix)
set(outside ${WORK_DIR}/examples-build)

# Runs a command; on failure prints its output and stops the test.
function(run_step what)
  string(TIMESTAMP start "%s")
  execute_process(COMMAND ${ARGN}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  string(TIMESTAMP stop "%s")
  math(EXPR seconds "${stop} - ${start}")
  if(NOT rc STREQUAL "0")
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "install test: ${what} failed (${rc}):\n  ${cmd}\n${out}")
  endif()
  message(STATUS "install test: ${what}: ok (${seconds} s)")
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

# 1. Install into an empty prefix.
if(NOT REUSE_PREFIX)
  file(REMOVE_RECURSE ${WORK_DIR})
  file(MAKE_DIRECTORY ${WORK_DIR})
  run_step("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR}
    --prefix ${prefix} --config ${BUILD_TYPE})
else()
  file(REMOVE_RECURSE ${outside})
endif()

# 2. The installed layout.
set(expected
  bin/normc
  bin/norm-opt
  include/normc/runtime.h
  include/normc/runtime.hpp
  ${LIBDIR}/libnormc_runtime.so
  ${LIBDIR}/cmake/normc/normcConfig.cmake
  ${LIBDIR}/cmake/normc/normcConfigVersion.cmake
  ${LIBDIR}/cmake/normc/normcTargets.cmake)
set(missing "")
foreach(file ${expected})
  if(NOT EXISTS ${prefix}/${file})
    list(APPEND missing ${file})
  endif()
endforeach()
if(missing)
  file(GLOB_RECURSE installed RELATIVE ${prefix} ${prefix}/*)
  string(REPLACE ";" "\n  " installed "${installed}")
  message(FATAL_ERROR "install test: missing from the install prefix ${prefix}: "
    "${missing}\ninstalled:\n  ${installed}")
endif()
message(STATUS "install test: installed layout: ok")

# 3. The installed compiler runs from the prefix (its shared libraries,
#    libMLIR/libLLVM, must be found through its RUNPATH).
execute_process(COMMAND ${prefix}/bin/normc --version
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc STREQUAL "0")
  find_program(LDD ldd)
  set(details "")
  if(LDD)
    execute_process(COMMAND ${LDD} ${prefix}/bin/normc
      OUTPUT_VARIABLE ldd_out ERROR_VARIABLE ldd_out)
    string(REGEX MATCHALL "[^\n]*not found" unresolved "${ldd_out}")
    string(REPLACE ";" "\n" unresolved "${unresolved}")
    set(details "ldd ${prefix}/bin/normc:\n${unresolved}")
    find_program(READELF readelf)
    if(READELF)
      execute_process(COMMAND ${READELF} -d ${prefix}/bin/normc
        OUTPUT_VARIABLE elf_out ERROR_VARIABLE elf_out)
      string(REGEX MATCH "\\((RUN|R)PATH\\)[^\n]*" runpath "${elf_out}")
      set(details "${details}\n${runpath}")
    endif()
  endif()
  message("${out}${details}")
  message(FATAL_ERROR "install test: the installed normc does not run (${rc})")
endif()
message(STATUS "install test: installed normc runs: ok")

# 4. Configure and build examples/ as an outside project. Only the prefix is
#    searched: no package registry, so the build tree's own normcConfig
#    cannot be picked up by accident.
set(configure_args -S ${EXAMPLES_DIR} -B ${outside}
  -DCMAKE_PREFIX_PATH=${prefix}
  -DCMAKE_BUILD_TYPE=${BUILD_TYPE}
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
  -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON)
if(GENERATOR)
  list(APPEND configure_args -G ${GENERATOR})
endif()
if(MAKE_PROGRAM)
  list(APPEND configure_args -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
endif()
if(C_COMPILER)
  list(APPEND configure_args -DCMAKE_C_COMPILER=${C_COMPILER})
endif()
if(CXX_COMPILER)
  list(APPEND configure_args -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
endif()
run_step("configure examples/ against the prefix" ${CMAKE_COMMAND}
  ${configure_args})

file(STRINGS ${outside}/CMakeCache.txt normc_dir REGEX "^normc_DIR:")
string(REGEX REPLACE "^normc_DIR:[A-Z]+=" "" normc_dir "${normc_dir}")
get_filename_component(normc_dir "${normc_dir}" REALPATH)
get_filename_component(real_prefix "${prefix}" REALPATH)
string(FIND "${normc_dir}/" "${real_prefix}/" at)
if(NOT at EQUAL 0)
  message(FATAL_ERROR "install test: find_package(normc) used '${normc_dir}', "
    "not the install prefix ${prefix}")
endif()
message(STATUS "install test: find_package(normc) found ${normc_dir}")

run_step("build examples/" ${CMAKE_COMMAND} --build ${outside}
  --config ${BUILD_TYPE} --parallel 2)

# 5. Run both examples; the runtime one must use the installed library.
find_program(LDD ldd)
if(LDD)
  execute_process(COMMAND ${LDD} ${outside}/layer_norm_runtime
    OUTPUT_VARIABLE ldd_out ERROR_VARIABLE ldd_out)
  string(REGEX MATCH "libnormc_runtime[^\n]*" runtime_line "${ldd_out}")
  if(NOT runtime_line MATCHES "${real_prefix}/" AND
     NOT runtime_line MATCHES "${prefix}/")
    message(FATAL_ERROR "install test: layer_norm_runtime does not load the "
      "installed runtime library:\n${ldd_out}")
  endif()
  message(STATUS "install test: ${runtime_line}")
endif()

run_step("run transformer_norms_direct" ${outside}/transformer_norms_direct)
message("${step_output}")
run_step("run layer_norm_runtime" ${outside}/layer_norm_runtime
  ${outside}/generated/layer_norm_train.so)
message("${step_output}")
message(STATUS "install test: passed")
