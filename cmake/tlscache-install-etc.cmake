# Runs at install time (install(CODE), from TlscacheInstall.cmake), when the real prefix is
# known: `cmake --install build --prefix /usr/local`, or cpack's /usr. Paths that go into the
# systemd units are decided here, so the units always name the files this install put down.
#   sysconfdir: /etc for the prefix /usr (as GNUInstallDirs), else <prefix>/etc, or the
#   absolute CMAKE_INSTALL_SYSCONFDIR the build was configured with.
# In: TLSC_SYSCONFDIR (as configured), TLSC_BINDIR, TLSC_UNITDIR (relative to the prefix).
if(IS_ABSOLUTE "${TLSC_SYSCONFDIR}")
  set(TLSC_ETC "${TLSC_SYSCONFDIR}")
elseif(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(TLSC_ETC "/etc")
else()
  set(TLSC_ETC "${CMAKE_INSTALL_PREFIX}/${TLSC_SYSCONFDIR}")
endif()
set(ETCDIR "${TLSC_ETC}/tlscache")
if(IS_ABSOLUTE "${TLSC_BINDIR}")
  set(BINDIR "${TLSC_BINDIR}")
else()
  set(BINDIR "${CMAKE_INSTALL_PREFIX}/${TLSC_BINDIR}")
endif()

# tlsc_install_etc(FILE...): example environment files into <sysconfdir>/tlscache.
function(tlsc_install_etc)
  file(INSTALL DESTINATION "${ETCDIR}" TYPE FILE PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES ${ARGN})
endfunction()

# tlsc_install_units(SRCDIR TMPDIR): every SRCDIR/*.service.in with @BINDIR@ and @ETCDIR@ set.
function(tlsc_install_units src tmp)
  # Rendered into a directory of this install's own (two installs from one tree may overlap).
  string(MD5 tag "$ENV{DESTDIR}|${CMAKE_INSTALL_PREFIX}")
  set(tmp "${tmp}/${tag}")
  file(GLOB templates "${src}/*.service.in")
  set(units)
  foreach(t ${templates})
    get_filename_component(name "${t}" NAME)
    string(REGEX REPLACE "\\.in$" "" name "${name}")
    configure_file("${t}" "${tmp}/${name}" @ONLY)
    list(APPEND units "${tmp}/${name}")
  endforeach()
  file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/${TLSC_UNITDIR}" TYPE FILE FILES ${units})
endfunction()
