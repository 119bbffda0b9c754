// Parsing and building envelopes.
#include "src/protocol/envelope.hpp"

namespace ptyhub::protocol {
namespace {

RequestError bad_message(std::string message, std::string field) {
  return {code::kBadMessage, std::move(message), std::move(field)};
}

bool valid_id(const json& id) { return id.is_string() || id.is_number_integer(); }

SharedFrame dump_frame(const json& message) {
  // error_handler::replace: text from outside (e.g. a client's field) can never make dump() throw.
  return make_frame(message.dump(-1, ' ', false, json::error_handler_t::replace));
}

}  // namespace

ParsedRequest parse_request(std::string_view text) {
  ParsedRequest parsed;
  json message = json::parse(text.begin(), text.end(), nullptr, false);
  if (message.is_discarded()) {
    parsed.error = {code::kBadJson, "message is not valid JSON", ""};
    return parsed;
  }
  if (!message.is_object()) {
    parsed.error = bad_message("message must be a JSON object", "");
    return parsed;
  }
  if (auto it = message.find("id"); it != message.end()) {
    if (!valid_id(*it)) {
      parsed.error = bad_message("id must be a string or an integer", "id");
      return parsed;
    }
    parsed.id = *it;
  }
  auto type = message.find("type");
  if (type == message.end() || !type->is_string() || type->get_ref<const std::string&>().empty()) {
    parsed.error = bad_message("type must be a non-empty string", "type");
    return parsed;
  }
  json data = json::object();
  if (auto it = message.find("data"); it != message.end()) {
    if (!it->is_object()) {
      parsed.error = bad_message("data must be an object", "data");
      return parsed;
    }
    data = std::move(*it);
  }
  parsed.ok = true;
  parsed.request = {type->get<std::string>(), parsed.id, std::move(data)};
  return parsed;
}

SharedFrame reply_frame(std::string_view type, const json& id, json data) {
  json message = {{"type", type}};
  if (!id.is_null()) message["id"] = id;
  message["data"] = std::move(data);
  return dump_frame(message);
}

SharedFrame ack_frame(const json& id) {
  json message = {{"type", "ack"}};
  if (!id.is_null()) message["id"] = id;
  return dump_frame(message);
}

SharedFrame error_frame(const json& id, const RequestError& error) {
  json data = {{"code", error.code}, {"message", error.message}};
  if (!error.field.empty()) data["field"] = error.field;
  json message = {{"type", "error"}};
  if (!id.is_null()) message["id"] = id;
  message["data"] = std::move(data);
  return dump_frame(message);
}

SharedFrame event_frame(std::string_view type, std::string_view channel, json data) {
  return dump_frame({{"type", type}, {"channel", channel}, {"data", std::move(data)}});
}

}  // namespace ptyhub::protocol
