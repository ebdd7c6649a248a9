# Finds the libraries froster's io headers (<froster/io/...>: checkpoints, tokenizer, images) use and defines the
# imported target froster::utf8proc. Included by froster's own build and by the installed frosterConfig.cmake, so a
# consumer linking froster::io gets the same dependencies found the same way.
include(CMakeFindDependencyMacro)
find_dependency(ZLIB)
find_dependency(PNG)
find_dependency(JPEG)
find_dependency(nlohmann_json 3)
if(NOT TARGET froster::utf8proc)
  find_path(FROSTER_UTF8PROC_INCLUDE_DIR utf8proc.h)
  find_library(FROSTER_UTF8PROC_LIBRARY NAMES utf8proc)
  if(NOT FROSTER_UTF8PROC_INCLUDE_DIR OR NOT FROSTER_UTF8PROC_LIBRARY)
    message(FATAL_ERROR "froster io: utf8proc not found (Debian: apt-get install libutf8proc-dev)")
  endif()
  add_library(froster::utf8proc UNKNOWN IMPORTED)
  set_target_properties(froster::utf8proc PROPERTIES IMPORTED_LOCATION "${FROSTER_UTF8PROC_LIBRARY}"
                        INTERFACE_INCLUDE_DIRECTORIES "${FROSTER_UTF8PROC_INCLUDE_DIR}")
endif()
