# `make deb`: the Debian package of warren, built by CPack's DEB generator from the install()
# rules of dist/CMakeLists.txt and apps/ (why CPack and not debian/ + dpkg-buildpackage:
# docs/PACKAGING.md). `cpack -G DEB` in a configured build tree writes warren_VERSION-1_ARCH.deb.
#
#   version      project(warren VERSION ...), Debian revision WARREN_DEB_RELEASE (1)
#   prefix       /usr whatever CMAKE_INSTALL_PREFIX is: binaries in /usr/sbin, units (written
#                at install time with that prefix) in systemd's unit directory
#   Depends      the shared libraries, from dpkg-shlibdeps, plus the programs warren runs
#   scripts      postinst, prerm, postrm beside this file; nothing is enabled or started
#   conffiles    none: nothing is installed into /etc (see docs/PACKAGING.md)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME warren)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(WARREN_DEB_RELEASE 1 CACHE STRING "Debian revision of the package (VERSION-REVISION)")
set(CPACK_DEBIAN_PACKAGE_RELEASE ${WARREN_DEB_RELEASE})
set(WARREN_DEB_MAINTAINER "warren maintainers <maintainers@users.noreply.b-seed-06667065.example>"
    CACHE STRING "Maintainer field of the Debian package")
set(CPACK_PACKAGE_CONTACT ${WARREN_DEB_MAINTAINER})
set(CPACK_DEBIAN_PACKAGE_MAINTAINER ${WARREN_DEB_MAINTAINER})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "userspace WireGuard-compatible VPN with enrollment")
set(CPACK_PACKAGE_DESCRIPTION "warren speaks the WireGuard protocol byte for byte from userspace.
warren-wg is a drop-in for wireguard-go (wg and wg-quick work with it); warren
server hands out addresses and enrolls clients with one-line invites, and the
warren client joins, brings tunnels up and restores the host when they go down.
The systemd units warren-server, warren@, warren-wg@ and warren-cleanup are
installed disabled.")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # warren_0.1.0-1_amd64.deb

# /usr, and staged through DESTDIR so that the absolute unit directory (/lib/systemd/system)
# lands inside the package and never on the build host.
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_SET_DESTDIR ON)
set(CPACK_STRIP_FILES ON)

# Depends: the libraries the two binaries link (libssl3, libsodium23, libmnl0, ...) as
# dpkg-shlibdeps finds them in the staged binaries, plus what they execute:
#   iptables   the server's NAT and FORWARD rules (src/host/steps.cc runs iptables/ip6tables)
#   procps     /bin/kill, the ExecReload= of warren-server.service and warren@.service
# Recommends wireguard-tools: `wg`/`wg-quick` for warren-wg and warren-wg@.service.
# Suggests a resolvconf: the client's DNS method "resolvconf" (else resolvectl or the file).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "iptables, procps")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "wireguard-tools")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "openresolv | resolvconf | systemd-resolved")

set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_LIST_DIR}/postinst ${CMAKE_CURRENT_LIST_DIR}/prerm ${CMAKE_CURRENT_LIST_DIR}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)
