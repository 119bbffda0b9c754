// The pid file (setting pid_file) and its sibling FILE.upgrade, which says how the last live upgrade went
// (docs/upgrade.md): what `ptyhubd upgrade` reads. Both are written whole (a temporary file renamed over
// the old one), so a reader never sees half a file.
#pragma once

#include <sys/types.h>

#include <string>

namespace ptyhub {

// Writes `text` to `path` through `path`.tmp and rename(); false with `error` when it cannot.
bool write_file_atomically(const std::string& path, const std::string& text, std::string* error);
// The pid in the file's first line; 0 with `error` when it cannot be read or holds no pid.
pid_t read_pid_file(const std::string& path, std::string* error);
// FILE.upgrade for pid file FILE.
std::string upgrade_result_path(const std::string& pid_file);

}  // namespace ptyhub
