// The one-request commands: see requests.hpp.
#include "cli/requests.hpp"

#include <algorithm>
#include <cstdio>

#include "cli/exit_status.hpp"
#include "cli/json_fields.hpp"

namespace ptyhub::cli {

namespace {

// Connects, sends one request once authenticated and hands its reply to `on_reply`, which finishes.
int one_request(EventLoop& loop, ClientSettings settings, std::string type, json data,
                std::function<void(Client&, const json&)> on_reply) {
  std::unique_ptr<Client> client;
  Client::Hooks hooks;
  hooks.on_ready = [&](bool) {
    client->request(type, data, [&](const json& reply) { on_reply(*client, reply); });
  };
  client = std::make_unique<Client>(loop.get(), std::move(settings), std::move(hooks));
  client->start();
  return run_command(loop, *client, {});
}

// `text` cut or padded to `width` columns (ASCII; longer text ends in "…" counted as one).
std::string cell(std::string text, size_t width) {
  if (text.size() > width) text = text.substr(0, width - 1) + "~";
  text.resize(width, ' ');
  return text;
}

// The command of a terminal as one line: argv joined by spaces.
std::string command_line(const json& terminal) {
  std::string line;
  if (terminal.contains("command") && terminal["command"].is_array()) {
    for (const json& arg : terminal["command"]) {
      if (!line.empty()) line += ' ';
      line += arg.is_string() ? arg.get<std::string>() : arg.dump();
    }
  }
  return line;
}

// "running", "exited 0", "exited SIGHUP".
std::string state_text(const json& terminal) {
  std::string state = text(terminal, "state", "?");
  if (state != "exited") return state;
  if (terminal.contains("exitCode") && terminal["exitCode"].is_number_integer()) return state + " " + std::to_string(terminal["exitCode"].get<int>());
  if (terminal.contains("signal") && terminal["signal"].is_string()) return state + " " + terminal["signal"].get<std::string>();
  return state;
}

}  // namespace

std::string terminal_table(const json& terminals, bool git_only) {
  std::string out = cell("ID", 23) + cell("KIND", 6) + cell("STATE", 15) + cell("OWNER", 12) + cell("SIZE", 9) +
                    cell("CREATED", 25) + "COMMAND\n";
  for (const json& terminal : terminals) {
    if (git_only && text(terminal, "kind") != "git") continue;
    const std::string size = std::to_string(integer(terminal, "cols")) + "x" + std::to_string(integer(terminal, "rows"));
    std::string name = text(terminal, "name");
    std::string command = command_line(terminal);
    if (!name.empty()) command = "[" + name + "] " + command;
    out += cell(text(terminal, "id"), 23) + cell(text(terminal, "kind"), 6) + cell(state_text(terminal), 15) +
           cell(text(terminal, "owner"), 12) + cell(size, 9) + cell(text(terminal, "createdAt"), 25) + command + "\n";
  }
  return out;
}

int run_ls(EventLoop& loop, ClientSettings settings, const ListSpec& spec) {
  json data = json::object();
  if (spec.state) data["state"] = *spec.state;
  return one_request(loop, std::move(settings), "shell.list", data, [spec](Client& client, const json& reply) {
    if (text(reply, "type") == "error") {
      client.finish_with_error(reply, "cannot list the terminals");
      return;
    }
    json terminals = field(field(reply, "data"), "terminals");
    if (!terminals.is_array()) terminals = json::array();
    std::stable_sort(terminals.begin(), terminals.end(), [](const json& a, const json& b) {
      return text(a, "createdAt") < text(b, "createdAt");
    });
    if (spec.json) {
      json shown = json::array();
      for (json& terminal : terminals) {
        if (!spec.git_only || text(terminal, "kind") == "git") shown.push_back(std::move(terminal));
      }
      std::printf("%s\n", shown.dump(2).c_str());
    } else {
      std::fputs(terminal_table(terminals, spec.git_only).c_str(), stdout);
    }
    std::fflush(stdout);
    client.finish(exit_status::kOk);
  });
}

int run_kill(EventLoop& loop, ClientSettings settings, const std::string& terminal, const std::string& signal) {
  return one_request(loop, std::move(settings), "shell.kill", {{"terminalId", terminal}, {"signal", signal}},
                     [terminal](Client& client, const json& reply) {
                       if (text(reply, "type") == "error") client.finish_with_error(reply, "cannot kill terminal " + terminal);
                       else client.finish(exit_status::kOk);
                     });
}

int run_share(EventLoop& loop, ClientSettings settings, const std::string& terminal, const std::string& user,
              const std::string& mode) {
  return one_request(loop, std::move(settings), "shell.share", {{"terminalId", terminal}, {"user", user}, {"mode", mode}},
                     [terminal, user, mode](Client& client, const json& reply) {
                       if (text(reply, "type") == "error") {
                         client.finish_with_error(reply, "cannot share terminal " + terminal);
                         return;
                       }
                       std::printf("%s: %s may now %s\n", terminal.c_str(), user.c_str(),
                                   mode == "none" ? "not see it" : (mode == "read" ? "read it" : "read and write it"));
                       std::fflush(stdout);
                       client.finish(exit_status::kOk);
                     });
}

}  // namespace ptyhub::cli
