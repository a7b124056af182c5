// HttpEndpoint: the server's plain-HTTP port for Prometheus scrapes and people (--metrics-listen;
// docs/observability.md). It serves fixed pages from callbacks, GET only, on two threads of its
// own, with cpp-httplib (Debian's libcpp-httplib-dev): a well-kept single-header HTTP server,
// where prometheus-cpp's own exposer (civetweb) could serve /metrics but nothing else.
//
// The port is this process's alone (no SO_REUSEPORT, unlike httplib's default): a second server
// asking for a taken port fails to start instead of sharing it. Idle connections are closed after
// 5 s, a request line and headers are bounded by httplib, and bodies are refused (GET only).
#ifndef BACKFLOW_SERVER_TELEMETRY_HTTP_ENDPOINT_H_
#define BACKFLOW_SERVER_TELEMETRY_HTTP_ENDPOINT_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/core/status.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace backflow::server {

struct HttpPage {
  std::string path;                   // "/metrics"
  std::string content_type;           // "text/plain; version=0.0.4; charset=utf-8"
  std::function<std::string()> body;  // called per request, on the endpoint's threads
};

// HOST and PORT (0-65535) of "HOST:PORT" ("[::1]:9464" gives "::1"); false if it is not of that
// form. `port` may be null.
bool SplitHostPort(const std::string& listen, std::string* host, int* port);

class HttpEndpoint {
 public:
  // Listens on `listen` (HOST:PORT, port 0: a free one; [::1]:PORT for IPv6). Unavailable naming
  // the address when it cannot be bound.
  static StatusOr<std::unique_ptr<HttpEndpoint>> Start(const std::string& listen,
                                                       std::vector<HttpPage> pages);
  ~HttpEndpoint();  // stops serving and joins its threads

  int port() const { return port_; }
  // http://HOST:PORT, to print and to connect to.
  std::string url() const;

 private:
  HttpEndpoint() = default;

  std::unique_ptr<httplib::Server> server_;
  std::string host_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_TELEMETRY_HTTP_ENDPOINT_H_
