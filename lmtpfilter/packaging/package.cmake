# The Debian package: "cpack -G DEB" in the build directory builds
# lmtpfilter_VERSION_ARCH.deb from what "cmake --install" installs (prefix
# /usr), with the copyright, the changelog, the conffiles list and the
# maintainer scripts of this directory. Depends is what dpkg-shlibdeps finds
# for the binary, plus what it needs at run time beyond shared libraries.
# The postinst creates the system user with systemd-sysusers; no script
# starts or enables anything (the administrator enables lmtpfilter.socket).
set(LMTPFILTER_PACKAGE_MAINTAINER "lmtpfilter maintainers <lmtpfilter@example.org>"
  CACHE STRING "Maintainer field of the Debian package")
find_program(GZIP_EXECUTABLE gzip REQUIRED)
if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  message(STATUS "CMAKE_INSTALL_PREFIX is ${CMAKE_INSTALL_PREFIX}: a Debian package wants /usr "
    "(the units run /usr/sbin/lmtpfilter)")
endif()
set(package_dir ${CMAKE_CURRENT_LIST_DIR})
set(package_build ${CMAKE_BINARY_DIR}/packaging)

# Debian wants both documents in the package's doc directory, the
# changelog compressed (gzip -9n: no name or time stamp inside).
string(TIMESTAMP LMTPFILTER_PACKAGE_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
configure_file(${package_dir}/changelog.in ${package_build}/changelog @ONLY)
add_custom_command(OUTPUT ${package_build}/changelog.gz
  COMMAND ${GZIP_EXECUTABLE} -9nf -k changelog
  DEPENDS ${package_build}/changelog
  WORKING_DIRECTORY ${package_build}
  VERBATIM)
add_custom_target(package_changelog ALL DEPENDS ${package_build}/changelog.gz)
install(FILES ${package_build}/changelog.gz ${package_dir}/copyright DESTINATION ${CMAKE_INSTALL_DOCDIR})

# Maintainer scripts and conffiles go into control.tar; CPack takes their
# permissions from the files, so they are copied with the ones Debian wants.
foreach(script postinst prerm postrm)
  file(COPY ${package_dir}/${script} DESTINATION ${package_build}
    FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
endforeach()
file(WRITE ${package_build}/conffiles "${CMAKE_INSTALL_FULL_SYSCONFDIR}/lmtpfilter/lmtpfilter.conf\n")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME lmtpfilter)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT ${LMTPFILTER_PACKAGE_MAINTAINER})
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "SPF, DKIM and DMARC checks on the LMTP hop from Postfix to Dovecot")
# CPack puts the summary above it as the synopsis line.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "lmtpfilter sits on the LMTP hop between Postfix and Dovecot. For the
recipient domains that opt in it works out who really handed each message
to the organisation, checks SPF, DKIM and DMARC, renames results that
senders forged, and writes one Authentication-Results and one Received-SPF
header that a Sieve script can trust to file failing mail into a
Quarantine folder. Mail for other domains passes through byte for byte.
.
It never acknowledges a message that Dovecot did not accept. The package
ships systemd socket and service units, a sysusers.d entry, a commented
configuration and a sample Sieve script.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION mail)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Not shared libraries, so not found by dpkg-shlibdeps: the public suffix
# list DMARC reads, and systemd-sysusers for the postinst.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "publicsuffix, systemd | systemd-sysusers")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "postfix, dovecot-lmtpd, dovecot-sieve")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  "${package_build}/conffiles;${package_build}/postinst;${package_build}/prerm;${package_build}/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
