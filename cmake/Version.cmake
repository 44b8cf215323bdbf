# Writes generated/vqa_version.h: version, git hash and compiled-in backends for --version.
execute_process(COMMAND git rev-parse --short=12 HEAD
                WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
                OUTPUT_VARIABLE VQA_GIT_HASH OUTPUT_STRIP_TRAILING_WHITESPACE
                ERROR_QUIET RESULT_VARIABLE _git_rc)
if(NOT _git_rc EQUAL 0 OR VQA_GIT_HASH STREQUAL "")
  set(VQA_GIT_HASH "unknown")
endif()
foreach(_f CUDA MPI NCCL ONEDNN)
  if(VQA_HAVE_${_f})
    set(VQA_HAVE_${_f}_INT 1)
  else()
    set(VQA_HAVE_${_f}_INT 0)
  endif()
endforeach()
if(VQA_CUDA_EMULATED)
  set(VQA_CUDA_EMULATED_INT 1)
else()
  set(VQA_CUDA_EMULATED_INT 0)
endif()
configure_file(${CMAKE_SOURCE_DIR}/cmake/vqa_version.h.in ${CMAKE_BINARY_DIR}/generated/vqa_version.h @ONLY)
