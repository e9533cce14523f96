// The dashboard's HTTP server on cpp-httplib (Debian's libcpp-httplib-dev): routing, the token,
// the Host check, a connection pool and the answer cache. Exceptions of httplib and of the JSON
// library stop here (STYLE.md habit 2): a handler that throws answers 500, it never ends the
// process.
#include "dashboard/server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <zlib.h>

#include <chrono>
#include <map>
#include <mutex>
#include <vector>

#include "base/clock.h"
#include "dashboard/assets.h"
#include "dashboard/views.h"
#include "results/store.h"

namespace hpo::dashboard {

bool is_loopback(const std::string& host) {
  if (host == "localhost" || host == "[::1]") return true;
  // Addresses only: a name such as "127.attacker.example" is a name like any other.
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

namespace {

constexpr std::size_t kCacheEntries = 512;


bool same_secret(std::string_view a, std::string_view b) {
  // Constant time in the content: a guesser learns nothing from how long a refusal takes.
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

std::string dump(const nlohmann::json& body) {
  // A stored log tail may hold invalid UTF-8: replaced, never thrown.
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// `data` in gzip format (zlib's deflate with a gzip wrapper, level 6); empty if zlib fails.
std::string gzip(std::string_view data) {
  z_stream z{};
  if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return {};
  std::string out(deflateBound(&z, static_cast<uLong>(data.size())), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return rc == Z_STREAM_END ? out : std::string();
}

bool accepts_gzip(const httplib::Request& req) {
  return req.get_header_value("Accept-Encoding").find("gzip") != std::string::npos;
}

void send_json(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(body, "application/json; charset=utf-8");
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  send_json(res, status, dump({{"error", message}}));
}

}  // namespace

struct Server::Impl {
  ServerOptions options;
  httplib::Server http;
  int port = 0;

  std::mutex mark_mutex;
  results::Store mark_store;  // only for PRAGMA data_version

  std::mutex pool_mutex;
  std::vector<results::Store> pool;  // idle read-only connections

  BriefsCache briefs;  // a study's trials, shared by the requests of one page load

  std::mutex assets_mutex;
  std::map<std::string, std::string> gzipped;  // by asset name, made on first request

  std::mutex cache_mutex;
  std::map<std::string, std::pair<std::int64_t, std::pair<int, std::string>>> cache;

  explicit Impl(results::Store store) : mark_store(std::move(store)) {}

  Result<std::int64_t> mark() {
    std::lock_guard lock(mark_mutex);
    return mark_store.data_version();
  }

  Result<results::Store> take() {
    {
      std::lock_guard lock(pool_mutex);
      if (!pool.empty()) {
        results::Store s = std::move(pool.back());
        pool.pop_back();
        return s;
      }
    }
    return results::Store::open(options.db, results::OpenMode::kReadOnly);
  }
  void give(results::Store store) {
    std::lock_guard lock(pool_mutex);
    pool.push_back(std::move(store));
  }

  bool host_allowed(const httplib::Request& req) const {
    if (!is_loopback(options.host)) return true;  // the token guards it
    std::string host = req.get_header_value("Host");
    if (host.empty()) return true;  // HTTP/1.0 clients; a browser always sends one
    if (host.starts_with('[')) {
      host = host.substr(0, host.find(']') + 1);
    } else if (auto colon = host.rfind(':'); colon != std::string::npos) {
      host = host.substr(0, colon);
    }
    return is_loopback(host);
  }

  bool token_ok(const httplib::Request& req) const {
    if (options.token.empty()) return true;
    if (req.has_param("token")) return same_secret(req.get_param_value("token"), options.token);
    const std::string auth = req.get_header_value("Authorization");
    constexpr std::string_view kBearer = "Bearer ";
    return auth.starts_with(kBearer) && same_secret(auth.substr(kBearer.size()), options.token);
  }

  void api(const httplib::Request& req, httplib::Response& res) {
    if (!token_ok(req)) {
      send_error(res, 401, "this dashboard needs its token: open the address it printed at start "
                           "(…/?token=…) or send Authorization: Bearer TOKEN");
      return;
    }
    auto version = mark();
    if (!version) return send_error(res, 500, version.error().message);
    if (req.path == "/api/changes") {
      return send_json(res, 200, dump({{"mark", std::to_string(*version)}}));
    }
    Params params;
    for (const auto& [name, value] : req.params) {
      if (name != "token") params.emplace(name, value);
    }
    const std::string key = canonical_key(req.path, params);
    {
      std::lock_guard lock(cache_mutex);
      auto it = cache.find(key);
      if (it != cache.end() && it->second.first == *version) {
        return send_json(res, it->second.second.first, it->second.second.second);
      }
    }
    auto store = take();
    if (!store) return send_error(res, 500, store.error().message);
    Answer a = answer(*store, req.path, params, SystemClock().now(), &briefs, *version);
    give(std::move(*store));
    std::string body = dump(a.body);
    {
      std::lock_guard lock(cache_mutex);
      if (cache.size() >= kCacheEntries) cache.clear();
      cache[key] = {*version, {a.status, body}};
    }
    send_json(res, a.status, body);
  }

  // An embedded file, gzip-compressed once and then sent as it is, and revalidated by its
  // ETag (the build's bytes): a reload costs a 304.
  void asset(const httplib::Request& req, const std::string& name, httplib::Response& res) {
    auto found = find_asset(name);
    if (!found) return send_error(res, 404, "no such file '" + name + "'");
    std::string etag = "\"";  // (appends: GCC 12 warns falsely on a "lit" + string chain)
    etag.append(std::to_string(std::hash<std::string_view>{}(found->data))).append("\"");
    res.set_header("Cache-Control", "no-cache");
    res.set_header("ETag", etag);
    res.set_header("Vary", "Accept-Encoding");
    if (req.get_header_value("If-None-Match") == etag) {
      res.status = 304;
      return;
    }
    if (accepts_gzip(req)) {
      std::string packed;
      {
        std::lock_guard lock(assets_mutex);
        auto it = gzipped.find(name);
        if (it == gzipped.end()) it = gzipped.emplace(name, gzip(found->data)).first;
        packed = it->second;
      }
      if (!packed.empty()) {
        // httplib compresses a response itself when the request accepts it: the request is
        // told it does not, so that these bytes go out as they are.
        const_cast<httplib::Request&>(req).headers.erase("Accept-Encoding");
        res.set_header("Content-Encoding", "gzip");
        res.set_content(std::move(packed), std::string(found->content_type));
        return;
      }
    }
    res.set_content(std::string(found->data), std::string(found->content_type));
  }
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;

int Server::port() const { return impl_->port; }

Result<std::unique_ptr<Server>> Server::open(const ServerOptions& options) {
  auto store = results::Store::open(options.db, results::OpenMode::kReadOnly);
  if (!store) return std::unexpected(store.error());
  auto impl = std::make_unique<Impl>(std::move(*store));
  impl->options = options;
  Impl* self = impl.get();
  auto& http = impl->http;
  http.set_default_headers({{"X-Content-Type-Options", "nosniff"},
                            {"X-Frame-Options", "DENY"},
                            {"Referrer-Policy", "no-referrer"}});
  http.set_pre_routing_handler([self](const httplib::Request& req, httplib::Response& res) {
    if (req.method != "GET" && req.method != "HEAD") {
      res.set_header("Allow", "GET, HEAD");
      send_error(res, 405, "the dashboard is read-only: " + req.method + " is not served");
      return httplib::Server::HandlerResponse::Handled;
    }
    // Brotli at httplib's level takes seconds for a megabyte (3.2 s for ECharts here): the
    // answers go out gzip-compressed at most. The request object is httplib's own, not const.
    auto& headers = const_cast<httplib::Request&>(req).headers;
    if (auto it = headers.find("Accept-Encoding");
        it != headers.end() && it->second.find("br") != std::string::npos) {
      const bool gz = it->second.find("gzip") != std::string::npos;
      headers.erase(it);
      if (gz) headers.emplace("Accept-Encoding", "gzip");
    }
    if (!self->host_allowed(req)) {
      send_error(res, 403, "Host '" + req.get_header_value("Host") +
                               "' is not this loopback dashboard's address");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "internal error";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what += std::string(": ") + e.what();
        } catch (...) {
        }
        send_error(res, 500, what);
      });
  http.Get("/", [self](const httplib::Request& req, httplib::Response& res) {
    self->asset(req, "index.html", res);
    // The page's own scripts and styles only: no inline script can run, nothing is fetched
    // from another origin (ECharts sets inline styles, hence 'unsafe-inline' for styles).
    res.set_header("Content-Security-Policy",
                   "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                   "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'");
  });
  http.Get(R"(/(app\.js|app\.css|echarts\.min\.js|LICENSE-echarts|NOTICE-echarts))",
           [self](const httplib::Request& req, httplib::Response& res) {
             self->asset(req, req.matches[1].str(), res);
           });
  http.Get(R"(/api/[a-z]+)", [self](const httplib::Request& req, httplib::Response& res) {
    self->api(req, res);
  });
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.body.empty()) send_error(res, res.status, "no such page '" + req.path + "'");
  });
  if (options.port == 0) {
    impl->port = http.bind_to_any_port(options.host);
    if (impl->port <= 0) return fail(ErrorCode::kIo, "cannot bind " + options.host + " (any port)");
  } else {
    if (!http.bind_to_port(options.host, options.port)) {
      return fail(ErrorCode::kIo, "cannot bind " + options.host + ":" +
                                      std::to_string(options.port) +
                                      " (in use, or not an address of this machine)");
    }
    impl->port = options.port;
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Status Server::serve() {
  if (!impl_->http.listen_after_bind()) {
    return fail(ErrorCode::kIo, "the dashboard's listening socket failed");
  }
  return {};
}

void Server::stop() { impl_->http.stop(); }

}  // namespace hpo::dashboard
