// The shared listing of this process's children (pty/children.hpp), with real children and real files.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "pty/children.hpp"
#include "pty/pty_process.hpp"

namespace ptyhub::pty {
namespace {

bool contains(const std::vector<pid_t>& pids, pid_t pid) {
  return std::find(pids.begin(), pids.end(), pid) != pids.end();
}

// A child that waits to be killed.
pid_t start_child() {
  const pid_t pid = fork();
  if (pid == 0) {
    pause();
    _exit(0);
  }
  REQUIRE(pid > 0);
  return pid;
}

void end_child(pid_t pid) {
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  forget_child(pid);
}

}  // namespace

TEST_CASE("read_pid_list reads every pid of a list longer than one read, numbers cut between reads included") {
  char path[] = "/tmp/ptyhub-pids-XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  std::vector<pid_t> written;
  std::string text;
  // 9,000 pids of 1 to 7 digits: about 50 KB, so reads end inside numbers at several places.
  for (int i = 0; i < 9000; ++i) {
    const pid_t pid = static_cast<pid_t>(1 + (i * 7919) % 4194303);
    written.push_back(pid);
    text += std::to_string(pid) + (i % 2 == 0 ? " " : "  ");
  }
  text.pop_back();  // the kernel's files end without a separator after the last number
  REQUIRE(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  close(fd);
  std::vector<pid_t> read_back;
  CHECK(read_pid_list(path, &read_back));
  unlink(path);
  CHECK(read_back == written);
  std::vector<pid_t> none;
  CHECK_FALSE(read_pid_list("/nonexistent/ptyhub", &none));
  CHECK(none.empty());
}

TEST_CASE("own_children: one listing is shared while young, taken again once expired, and forgets reaped pids") {
  const pid_t first = start_child();
  const ChildListing& fresh = own_children(0);
  REQUIRE(fresh.listed);
  CHECK(contains(fresh.pids, first));
  const uint64_t generation = fresh.generation;

  // A child started now is not in a listing that is still young: the listing is shared, not retaken.
  const pid_t second = start_child();
  const ChildListing& shared = own_children(60000);
  CHECK(shared.generation == generation);
  CHECK_FALSE(contains(shared.pids, second));

  // Reaping takes a pid out of the shared listing at once: it may be recycled from now on.
  end_child(first);
  CHECK_FALSE(contains(own_children(60000).pids, first));

  // Expired (max age 0): listed again, with the new child.
  const ChildListing& again = own_children(0);
  CHECK(again.generation > generation);
  CHECK(contains(again.pids, second));
  CHECK_FALSE(contains(again.pids, first));
  end_child(second);
  CHECK_FALSE(contains(own_children(0).pids, second));
}

TEST_CASE("list_children_of lists the children of another process, and fails for one that is gone") {
  const pid_t child = start_child();
  std::vector<pid_t> mine;
  CHECK(list_children_of(getpid(), &mine));
  CHECK(contains(mine, child));
  end_child(child);
  std::vector<pid_t> gone;
  CHECK_FALSE(list_children_of(child, &gone));
}

}  // namespace ptyhub::pty
