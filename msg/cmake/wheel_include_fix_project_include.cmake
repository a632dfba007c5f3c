# For interface packages we build but do not own (`make ros2-launch`: upstream
# composition_interfaces). Passed as -DCMAKE_PROJECT_INCLUDE=<this file>, so CMake includes it
# right after the package's project() call; the same wheel include-path fix as smolvla_msgs
# (pip_wheel_include_fix.cmake, see msg/CMakeLists.txt for why) is then deferred to the end of the
# top-level directory, after ament_package(), without editing the package's CMakeLists.txt.
# A no-op on a real ROS install, like the fix itself.
if(CMAKE_VERSION VERSION_LESS 3.19)
  message(FATAL_ERROR "${PROJECT_NAME}: the wheel include fix needs CMake >= 3.19 (cmake_language DEFER)")
endif()
include("${CMAKE_CURRENT_LIST_DIR}/pip_wheel_include_fix.cmake")
cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL smolvla_fix_pip_wheel_include_dirs)
