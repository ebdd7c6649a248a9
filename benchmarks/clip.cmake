# CLIP ViT-B/16 encoders on the cpu backend, the froster side of the comparison with PyTorch (see CLIP.md).
# Included from benchmarks/CMakeLists.txt (after find_package(benchmark)). Header-only froster and Google Benchmark
# only: no Eigen, no OpenMP (CpuBackend runs its own thread pool and picks its ISA at run time).
find_package(Threads REQUIRED)
add_executable(froster_bench_clip ${CMAKE_CURRENT_LIST_DIR}/bench_clip.cpp)
target_link_libraries(froster_bench_clip PRIVATE froster::froster benchmark::benchmark Threads::Threads
                      froster_warnings)
# The CPU kernels dispatch at run time; -march=native (FROSTER_BENCH_NATIVE_FLAGS, from CMakeLists.txt) is for the
# benchmark's own loops, as in the other binaries.
target_compile_options(froster_bench_clip PRIVATE ${FROSTER_BENCH_NATIVE_FLAGS})
