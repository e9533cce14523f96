// `hpo dashboard`'s web server: the page (assets.h) and the JSON API (views.h, API.md) over a
// database, read-only, safe while a scheduler writes it.
//
// Contract
// - GET and HEAD only; nothing it serves writes anything (every other method is refused with
//   405). The database is opened read-only (results::Store kReadOnly).
// - Bound to a loopback address it needs no token, and it answers only requests whose Host
//   header names a loopback host (a page of another site that rebinds its DNS name to
//   127.0.0.1 gets 403). Bound to any other address it requires `token` on every API request
//   (`?token=` or `Authorization: Bearer`), compared in constant time; the page and the chart
//   library need none (they hold no data).
// - Answers are cached per request until the database changes (PRAGMA data_version).
// - Threads: serve() blocks on the calling thread until stop() (from any thread, e.g. a signal
//   watcher) and serves on a pool of worker threads, each with its own read-only connection.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "base/error.h"

namespace hpo::dashboard {

struct ServerOptions {
  std::string db = "hpo.db";     // the database to show
  std::string host = "127.0.0.1";  // the address to bind
  int port = 8080;               // 0 = any free port (the one taken is in Server::port())
  std::string token;             // required on API requests when non-empty
};

// Whether `host` is a loopback address or name (127.0.0.0/8, ::1, localhost).
bool is_loopback(const std::string& host);

class Server {
 public:
  // Opens the database (read-only; errors name the file) and binds the address (errors name
  // it). Nothing is served until serve().
  static Result<std::unique_ptr<Server>> open(const ServerOptions& options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int port() const;
  // Serves until stop(); returns an error only if the listening socket fails.
  Status serve();
  void stop();

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hpo::dashboard
