# warren_library(NAME DIR deps...): a static library from every .cc directly in DIR and in
# DIR/linux (platform code). Headers are included rooted at src/ ("wg/noise.h"). The test
# fakes in DIR/fake are not part of it: they become NAME_fake (see warren_fake_library), which
# only tests, fuzzers and benchmarks link. tools/check_layering.sh checks both.
function(warren_library name dir)
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/${dir}/*.cc ${CMAKE_SOURCE_DIR}/${dir}/linux/*.cc)
  if(srcs)
    add_library(${name} STATIC ${srcs})
    target_include_directories(${name} PUBLIC ${CMAKE_SOURCE_DIR}/src)
    target_link_libraries(${name} PUBLIC ${ARGN})
  else()
    add_library(${name} INTERFACE)
    target_include_directories(${name} INTERFACE ${CMAKE_SOURCE_DIR}/src)
    target_link_libraries(${name} INTERFACE ${ARGN})
  endif()
endfunction()

# warren_fake_library(NAME DIR): NAME_fake from DIR/fake/*.cc (in-memory stand-ins for the
# Linux implementations), linked to NAME. For tests, fuzzers and benchmarks only.
function(warren_fake_library name dir)
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/${dir}/fake/*.cc)
  if(srcs)
    add_library(${name}_fake STATIC ${srcs})
    target_link_libraries(${name}_fake PUBLIC ${name})
  endif()
endfunction()

# warren_test(MODULE deps...): one gtest binary per tests/unit/MODULE folder.
function(warren_test module)
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/${module}/*.cc)
  if(NOT srcs)
    return()
  endif()
  set(target test_${module})
  add_executable(${target} ${srcs})
  target_link_libraries(${target} PRIVATE ${ARGN} GTest::gtest GTest::gmock GTest::gtest_main)
  target_include_directories(${target} PRIVATE ${CMAKE_SOURCE_DIR}/tests ${CMAKE_SOURCE_DIR}/src)
  target_compile_definitions(${target} PRIVATE WARREN_VECTORS_DIR="${WARREN_VECTORS_DIR}"
                                               WARREN_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  gtest_discover_tests(${target} DISCOVERY_TIMEOUT 60 TEST_PREFIX "${module}." PROPERTIES LABELS unit)
endfunction()
