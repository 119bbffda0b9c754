// RedisConnection: hiredis async on the libuv loop, with timeouts and reconnection.
#include "src/cluster/redis.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <charconv>

#include "core/log.hpp"

namespace ptyhub::cluster {
namespace {

RedisValue copy_reply(const redisReply* reply) {
  RedisValue value;
  if (reply == nullptr) return value;
  switch (reply->type) {
    case REDIS_REPLY_STRING:
      value.type = RedisValue::Type::string;
      value.text.assign(reply->str, reply->len);
      break;
    case REDIS_REPLY_STATUS:
      value.type = RedisValue::Type::status;
      value.text.assign(reply->str, reply->len);
      break;
    case REDIS_REPLY_ERROR:
      value.type = RedisValue::Type::error;
      value.text.assign(reply->str, reply->len);
      break;
    case REDIS_REPLY_INTEGER:
      value.type = RedisValue::Type::integer;
      value.integer = reply->integer;
      break;
    case REDIS_REPLY_ARRAY:
      value.type = RedisValue::Type::array;
      value.elements.reserve(reply->elements);
      for (size_t i = 0; i < reply->elements; ++i) value.elements.push_back(copy_reply(reply->element[i]));
      break;
    default:
      break;  // nil
  }
  return value;
}

// hiredis's own libuv adapter (0.14) drops a poll error (a refused connect gives POLLERR, which libuv
// reports as a status, not as an event), so a connection to a closed port would wait for ever. This
// adapter hands an error to hiredis as readiness, and hiredis then finds the socket's error itself.
struct PollEvents {
  redisAsyncContext* context = nullptr;
  uv_poll_t handle{};
  int events = 0;
  uint64_t reads = 0;  // readable events handed to hiredis: bytes arriving (RedisConnection's deadlines)
};

void on_poll(uv_poll_t* handle, int status, int events) {
  auto* p = static_cast<PollEvents*>(handle->data);
  if (p->context == nullptr) return;
  if ((events & UV_READABLE) != 0) ++p->reads;
  if (status < 0) {
    // Writable first: while connecting, that is where hiredis checks SO_ERROR and reports the failure.
    redisAsyncContext* context = p->context;
    if ((context->c.flags & REDIS_CONNECTED) == 0) redisAsyncHandleWrite(context);
    else redisAsyncHandleRead(context);
    return;
  }
  if (p->context != nullptr && (events & UV_READABLE)) redisAsyncHandleRead(p->context);
  if (p->context != nullptr && (events & UV_WRITABLE)) redisAsyncHandleWrite(p->context);
}

void update_poll(PollEvents* p, int events) {
  p->events = events;
  if (p->events != 0) uv_poll_start(&p->handle, p->events, on_poll);
  else uv_poll_stop(&p->handle);
}

void add_read(void* data) { auto* p = static_cast<PollEvents*>(data); update_poll(p, p->events | UV_READABLE); }
void del_read(void* data) { auto* p = static_cast<PollEvents*>(data); update_poll(p, p->events & ~UV_READABLE); }
void add_write(void* data) { auto* p = static_cast<PollEvents*>(data); update_poll(p, p->events | UV_WRITABLE); }
void del_write(void* data) { auto* p = static_cast<PollEvents*>(data); update_poll(p, p->events & ~UV_WRITABLE); }

void cleanup(void* data) {
  auto* p = static_cast<PollEvents*>(data);
  p->context = nullptr;  // the context is being freed
  uv_close(reinterpret_cast<uv_handle_t*>(&p->handle),
           [](uv_handle_t* handle) { delete static_cast<PollEvents*>(handle->data); });
}

// Watches the context's socket on `loop`; false when the poll cannot be set up (nothing attached).
bool attach(redisAsyncContext* context, uv_loop_t* loop) {
  if (context->ev.data != nullptr) return false;
  auto* p = new PollEvents;
  if (uv_poll_init(loop, &p->handle, context->c.fd) != 0) {
    delete p;
    return false;
  }
  p->context = context;
  p->handle.data = p;
  context->ev.addRead = add_read;
  context->ev.delRead = del_read;
  context->ev.addWrite = add_write;
  context->ev.delWrite = del_write;
  context->ev.cleanup = cleanup;
  context->ev.data = p;
  return true;
}

}  // namespace

bool parse_redis_url(std::string_view url, RedisAddress* out, std::string* error) {
  constexpr std::string_view kScheme = "redis://";
  RedisAddress address;
  if (!url.starts_with(kScheme)) {
    *error = "redis_url: must start with redis:// (" + std::string(url) + ")";
    return false;
  }
  std::string_view rest = url.substr(kScheme.size());
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    const std::string_view db = rest.substr(slash + 1);
    if (!db.empty()) {
      const auto [end, ec] = std::from_chars(db.data(), db.data() + db.size(), address.db);
      if (ec != std::errc() || end != db.data() + db.size() || address.db < 0 || address.db > 15) {
        *error = "redis_url: the database must be a number from 0 to 15";
        return false;
      }
    }
  }
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    std::string_view user_info = authority.substr(0, at);
    if (const size_t colon = user_info.find(':'); colon != std::string_view::npos) user_info.remove_prefix(colon + 1);
    address.password = std::string(user_info);
    authority.remove_prefix(at + 1);
  }
  std::string_view host = authority;
  if (const size_t colon = authority.rfind(':'); colon != std::string_view::npos && authority.find(']') == std::string_view::npos) {
    host = authority.substr(0, colon);
    const std::string_view port = authority.substr(colon + 1);
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), address.port);
    if (ec != std::errc() || end != port.data() + port.size() || address.port < 1 || address.port > 65535) {
      *error = "redis_url: bad port";
      return false;
    }
  }
  if (host.empty()) {
    *error = "redis_url: no host";
    return false;
  }
  address.host = std::string(host);
  *out = std::move(address);
  return true;
}

RedisConnection::RedisConnection(uv_loop_t* loop, RedisAddress address, std::string name, StateCallback on_state)
    : loop_(loop), address_(std::move(address)), name_(std::move(name)), on_state_(std::move(on_state)) {
  retry_timer_.adopt_init(uv_timer_init(loop_, retry_timer_.get()), this);
  reset_timer_.adopt_init(uv_timer_init(loop_, reset_timer_.get()), this);
  if (deadline_timer_.adopt_init(uv_timer_init(loop_, deadline_timer_.get()), this)) {
    uv_timer_start(
        deadline_timer_.get(), [](uv_timer_t* t) { static_cast<RedisConnection*>(t->data)->check_deadlines(); }, 100,
        100);
    uv_unref(deadline_timer_.as_handle());  // never keeps the loop alive by itself
  }
}

RedisConnection::~RedisConnection() {
  destroying_ = true;
  fail_pending();
  if (context_ != nullptr) {
    context_->data = nullptr;
    redisAsyncContext* context = context_;
    context_ = nullptr;
    redisAsyncFree(context);  // calls the pending callbacks (with no reply) and the disconnect callback
  }
}

void RedisConnection::start() { connect(); }

void RedisConnection::stop(bool graceful) {
  stopping_ = true;
  if (retry_timer_.initialised()) uv_timer_stop(retry_timer_.get());
  if (context_ == nullptr) return;
  if (graceful && up_) {
    redisAsyncDisconnect(context_);  // after the pending replies; on_disconnect follows
    return;
  }
  stopping_ = true;
  reset_pending_ = false;
  reset("stopping");
}

void RedisConnection::connect() {
  if (destroying_ || stopping_ || context_ != nullptr) return;
  redisAsyncContext* context = redisAsyncConnect(address_.host.c_str(), address_.port);
  if (context == nullptr || context->err != 0) {
    const std::string why = context != nullptr ? context->errstr : "out of memory";
    if (context != nullptr) redisAsyncFree(context);
    lost("cannot connect: " + why);
    return;
  }
  context->data = this;
  if (!attach(context, loop_)) {
    redisAsyncFree(context);
    lost("cannot watch the connection on the loop");
    return;
  }
  redisAsyncSetConnectCallback(context, &RedisConnection::on_connect);
  redisAsyncSetDisconnectCallback(context, &RedisConnection::on_disconnect);
  context_ = context;
  connecting_ = true;
  connect_started_ms_ = uv_now(loop_);
  reads_seen_ = 0;  // the new link's poll counts from 0
  last_read_ms_ = connect_started_ms_;
  // Queued now, sent once connected, answered first.
  if (!address_.password.empty()) command({"AUTH", address_.password}, [](const RedisValue*) {});
  if (address_.db != 0) command({"SELECT", std::to_string(address_.db)}, [](const RedisValue*) {});
}

void RedisConnection::on_connect(const redisAsyncContext* context, int status) {
  auto* self = static_cast<RedisConnection*>(context->data);
  if (self == nullptr) return;
  self->connecting_ = false;
  if (status != REDIS_OK) {
    self->context_ = nullptr;  // hiredis frees it after this callback
    self->fail_pending();
    self->lost(std::string("cannot connect: ") + context->errstr);
    return;
  }
  self->up_ = true;
  self->retry_ms_ = kFirstRetryMs;
  if (self->was_up_) ++self->reconnects_;
  self->was_up_ = true;
  self->last_error_.clear();
  log::info("redis: " + self->name_ + " connected", {{"redis", self->address_.host + ":" + std::to_string(self->address_.port)}});
  if (self->on_state_) self->on_state_(true);
}

void RedisConnection::on_disconnect(const redisAsyncContext* context, int status) {
  auto* self = static_cast<RedisConnection*>(context->data);
  if (self == nullptr) return;
  self->context_ = nullptr;  // hiredis frees it after this callback
  self->fail_pending();
  self->lost(status == REDIS_OK ? "disconnected" : std::string("connection lost: ") + context->errstr);
}

void RedisConnection::on_reply(redisAsyncContext* context, void* reply, void* /*privdata*/) {
  auto* self = static_cast<RedisConnection*>(context->data);
  if (self == nullptr || self->pending_.empty()) return;
  Pending pending = std::move(self->pending_.front());
  self->pending_.pop_front();
  if (reply == nullptr) {
    if (pending.callback) pending.callback(nullptr);
    return;
  }
  const RedisValue value = copy_reply(static_cast<const redisReply*>(reply));
  if (pending.callback) pending.callback(&value);
}

bool RedisConnection::command(const std::vector<std::string>& args, Callback callback, uint64_t timeout_ms) {
  if (context_ == nullptr || destroying_ || (!up_ && !connecting_)) {
    if (callback) callback(nullptr);
    return false;
  }
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const std::string& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  pending_.push_back({std::move(callback), uv_now(loop_) + timeout_ms, timeout_ms});
  if (redisAsyncCommandArgv(context_, &RedisConnection::on_reply, nullptr, static_cast<int>(argv.size()), argv.data(),
                            lengths.data()) != REDIS_OK) {
    Pending failed = std::move(pending_.back());
    // It was the last one pushed: rebuild the queue without it.
    Fifo<Pending> kept;
    while (pending_.size() > 1) {
      kept.push_back(std::move(pending_.front()));
      pending_.pop_front();
    }
    pending_ = std::move(kept);
    if (failed.callback) failed.callback(nullptr);
    return false;
  }
  return true;
}

void RedisConnection::fail_pending() {
  Fifo<Pending> failed = std::move(pending_);
  pending_ = Fifo<Pending>();
  while (!failed.empty()) {
    Pending pending = std::move(failed.front());
    failed.pop_front();
    if (pending.callback && !destroying_) pending.callback(nullptr);
  }
}

void RedisConnection::reset(std::string_view why) {
  if (context_ == nullptr || reset_pending_) return;
  if (!stopping_) log::warn("redis: " + name_ + ": " + std::string(why) + "; reconnecting");
  // redisAsyncDisconnect would wait for the pending replies; the link is dropped from a fresh loop turn
  // instead (never from inside a hiredis callback, where freeing the context is not allowed).
  reset_pending_ = true;
  uv_timer_start(
      reset_timer_.get(),
      [](uv_timer_t* t) {
        auto* self = static_cast<RedisConnection*>(t->data);
        self->reset_pending_ = false;
        if (self->context_ == nullptr) return;
        redisAsyncContext* context = self->context_;
        redisAsyncFree(context);  // pending callbacks get nullptr, then on_disconnect runs
        if (self->context_ == context) {  // never connected: no disconnect callback
          self->context_ = nullptr;
          self->fail_pending();
          self->lost("dropped");
        }
      },
      0, 0);
}

void RedisConnection::check_deadlines() {
  if (context_ != nullptr && connecting_ && uv_now(loop_) - connect_started_ms_ > kDefaultTimeoutMs) {
    reset("cannot connect: no answer in time");
    return;
  }
  if (pending_.empty() || context_ == nullptr) return;
  const uint64_t now = uv_now(loop_);
  if (const auto* poll = static_cast<const PollEvents*>(context_->ev.data); poll != nullptr && poll->reads != reads_seen_) {
    reads_seen_ = poll->reads;
    last_read_ms_ = now;
  }
  const Pending& oldest = pending_.front();
  if (now <= oldest.deadline_ms) return;
  // Bytes within its timeout: a long reply is arriving (read 16 KiB a loop turn), not a Redis that is gone.
  if (now - last_read_ms_ <= oldest.timeout_ms) return;
  reset("no answer in time");
}

void RedisConnection::lost(std::string_view why) {
  const bool was_up = up_;
  up_ = false;
  connecting_ = false;
  if (destroying_ || stopping_) return;
  const std::string message = "redis: " + name_ + " " + std::string(why);
  if (was_up || message != last_error_) log::warn(message + "; retrying");
  last_error_ = message;
  if (was_up && on_state_) on_state_(false);
  schedule_retry();
}

void RedisConnection::schedule_retry() {
  if (!retry_timer_.initialised() || uv_is_active(retry_timer_.as_handle())) return;
  uv_timer_start(
      retry_timer_.get(), [](uv_timer_t* t) { static_cast<RedisConnection*>(t->data)->connect(); }, retry_ms_, 0);
  retry_ms_ = std::min(kMaxRetryMs, retry_ms_ * 2);
}

}  // namespace ptyhub::cluster
