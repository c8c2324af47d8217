# Install layout (GNUInstallDirs) and the one function every program calls:
#
#   tlsc_install_program(<target> <man section> [ENV <name>.env])
#
# installs the binary into bin/, makes its man page <target>.<section> by running the built
# binary with the hidden flag --man (the page comes from the option table that drives --help,
# so the two cannot drift), installs it under man/man<section>/, and with ENV also makes the
# example environment file (--env-example) installed as <sysconfdir>/tlscache/<name>.env.
# A later program (tlscache-ctl) gets the same with one line.
#
# Install components: runtime (the programs; all the image takes), man, config (units and
# example env files), doc. `cmake --install` and cpack take them all.
#
# Cross builds: the page is made by running the binary, through CMAKE_CROSSCOMPILING_EMULATOR
# when one is set; a cross build without an emulator skips the pages (TLSC_MAN=OFF).
include(GNUInstallDirs)

if(CMAKE_CROSSCOMPILING AND NOT CMAKE_CROSSCOMPILING_EMULATOR)
  set(tlsc_man_default OFF)
else()
  set(tlsc_man_default ON)
endif()
option(TLSC_MAN "Generate the man pages and example environment files by running the built binaries" ${tlsc_man_default})
set(TLSC_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING "systemd system unit directory, relative to the install prefix")
set(TLSC_CMAKE_DIR ${CMAKE_CURRENT_LIST_DIR})
# The start of every install(CODE) here: the install-time paths (cmake/tlscache-install-etc.cmake).
set(TLSC_INSTALL_PRELUDE
    "set(TLSC_SYSCONFDIR \"${CMAKE_INSTALL_SYSCONFDIR}\")
set(TLSC_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
set(TLSC_UNITDIR \"${TLSC_SYSTEMD_UNITDIR}\")
include(\"${CMAKE_CURRENT_LIST_DIR}/tlscache-install-etc.cmake\")")

# Runs `<binary> <flag>` at build time into <out> (cmake/tlscache-gen.cmake checks the result).
function(tlsc_generate target flag out check)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} "-DPROG=$<TARGET_FILE:${target}>" "-DEMULATOR=${CMAKE_CROSSCOMPILING_EMULATOR}" "-DFLAG=${flag}"
            "-DOUT=${out}" "-DCHECK=${check}" -P ${TLSC_CMAKE_DIR}/tlscache-gen.cmake
    DEPENDS ${target} ${TLSC_CMAKE_DIR}/tlscache-gen.cmake
    COMMENT "Generating ${out} (${target} ${flag})"
    VERBATIM)
endfunction()

function(tlsc_install_program target section)
  cmake_parse_arguments(PARSE_ARGV 2 arg "" "ENV" "")
  install(TARGETS ${target} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
  if(NOT TLSC_MAN)
    return()
  endif()
  set(page ${PROJECT_BINARY_DIR}/man/${target}.${section})
  tlsc_generate(${target} --man ${page} "\\.TH [^ ]+ ${section} ")
  set(outputs ${page})
  install(FILES ${page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section} COMPONENT man)
  if(arg_ENV)
    set(env ${PROJECT_BINARY_DIR}/etc/${arg_ENV})
    tlsc_generate(${target} --env-example ${env} "# Environment of ${target} ")
    list(APPEND outputs ${env})
    install(CODE "${TLSC_INSTALL_PRELUDE}\ntlsc_install_etc(\"${env}\")" COMPONENT config)
  endif()
  add_custom_target(${target}-man ALL DEPENDS ${outputs})
endfunction()

# The systemd units (deploy/systemd/*.service.in, the prefix filled in at install time), and
# the docs. Called once from the top CMakeLists.txt.
function(tlsc_install_data)
  install(CODE "${TLSC_INSTALL_PRELUDE}\ntlsc_install_units(\"${PROJECT_SOURCE_DIR}/deploy/systemd\" \"${PROJECT_BINARY_DIR}/systemd\")"
          COMPONENT config)
  file(GLOB docs ${PROJECT_SOURCE_DIR}/docs/*.md)
  install(FILES ${PROJECT_SOURCE_DIR}/README.md ${docs} DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT doc)
endfunction()
