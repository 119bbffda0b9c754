// Socket activation: the listening sockets a service manager passes to the daemon. The protocol:
// $LISTEN_PID is the pid the sockets are meant for, $LISTEN_FDS how many there are (fds 3, 4, …), and
// $LISTEN_FDNAMES optionally their colon-separated names (FileDescriptorName=).
//
// With libsystemd (PTYHUB_HAVE_LIBSYSTEMD) sd_listen_fds_with_names() reads them; without it this file
// does. Either way the three variables are removed from the environment once read, and each fd gets
// FD_CLOEXEC so that no terminal inherits a listening socket.
#pragma once

#include <string>
#include <vector>

#include "core/unique_fd.hpp"

namespace ptyhub::systemd {

struct ActivatedSocket {
  UniqueFd fd;
  std::string name;  // from LISTEN_FDNAMES; empty when not given
};

// Takes the passed sockets. No LISTEN_FDS, or a LISTEN_PID naming another process: true and none.
// Malformed variables, or a passed fd that is not open: false with `error` (and nothing taken).
bool take_activated_sockets(std::vector<ActivatedSocket>* out, std::string* error);

}  // namespace ptyhub::systemd
