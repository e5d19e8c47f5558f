# Injected with -DCMAKE_PROJECT_INCLUDE=... by scripts/build_msgs.sh; never part of a package.
#
# Why: the ROS 2 PyPI wheels export `<pkg>__rosidl_generator_py` targets whose
# INTERFACE_INCLUDE_DIRECTORIES carry the wheel builder's interpreter paths
# (/opt/python/cp3XX-.../include, .../numpy/_core/include). Those do not exist here and CMake
# refuses imported targets with non-existent include dirs. We drop every such entry once the
# package's CMakeLists has imported all its dependencies (deferred to the end of the directory),
# before generation, where the property is read. The right headers come from FindPython3 anyway.
function(_unipixel_strip_foreign_python_includes)
  get_directory_property(_targets IMPORTED_TARGETS)
  foreach(_t IN LISTS _targets)
    if(NOT _t MATCHES "__rosidl_generator_py$")
      continue()
    endif()
    get_target_property(_dirs ${_t} INTERFACE_INCLUDE_DIRECTORIES)
    if(NOT _dirs)
      continue()
    endif()
    set(_kept "")
    foreach(_d IN LISTS _dirs)
      if(EXISTS "${_d}" OR _d MATCHES "^\\$<")
        list(APPEND _kept "${_d}")
      endif()
    endforeach()
    set_target_properties(${_t} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_kept}")
  endforeach()
endfunction()
cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _unipixel_strip_foreign_python_includes)
