# CLIP ViT-B/16 encoders on the cpu backend, the froster side of the comparison with PyTorch (see CLIP.md).
# Included from benchmarks/CMakeLists.txt (after find_package(benchmark)). Header-only froster and Google Benchmark
# only: no Eigen, no OpenMP (CpuBackend runs its own thread pool and picks its ISA at run time).
find_package(Threads REQUIRED)
add_executable(froster_bench_clip ${CMAKE_CURRENT_LIST_DIR}/bench_clip.cpp)
target_link_libraries(froster_bench_clip PRIVATE froster::froster benchmark::benchmark Threads::Threads
                      froster_warnings)
if(FROSTER_BENCH_NATIVE)
  include(CheckCXXCompilerFlag)
  check_cxx_compiler_flag(-march=native FROSTER_HAS_MARCH_NATIVE)
  if(FROSTER_HAS_MARCH_NATIVE)
    # The CPU kernels dispatch at run time; -march=native is for the benchmark's own loops (as the other binaries).
    target_compile_options(froster_bench_clip PRIVATE -march=native)
  endif()
endif()
