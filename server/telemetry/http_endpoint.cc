#include "server/telemetry/http_endpoint.h"

#include <httplib.h>
#include <sys/socket.h>

#include <charconv>
#include <chrono>

namespace backflow::server {
namespace {

constexpr int kThreads = 2;  // a scrape every few seconds and a browser or two

}  // namespace

bool SplitHostPort(const std::string& listen, std::string* host, int* port) {
  int ignored = 0;
  if (port == nullptr) port = &ignored;
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  *host = listen.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);  // an IPv6 address
  } else if (host->find(':') != std::string::npos) {
    return false;  // an IPv6 address needs its brackets; "http://..." is a URL
  }
  if (host->empty() || host->find_first_of("/[] ") != std::string::npos) return false;
  const char* first = listen.data() + colon + 1;
  const char* last = listen.data() + listen.size();
  const auto [end, error] = std::from_chars(first, last, *port);
  return error == std::errc() && end == last && first != last && *port >= 0 && *port <= 65535;
}

StatusOr<std::unique_ptr<HttpEndpoint>> HttpEndpoint::Start(const std::string& listen,
                                                            std::vector<HttpPage> pages) {
  std::unique_ptr<HttpEndpoint> endpoint(new HttpEndpoint());
  int port = 0;
  if (!SplitHostPort(listen, &endpoint->host_, &port)) {
    return InvalidArgumentError("--metrics-listen '" + listen + "' is not HOST:PORT");
  }
  auto server = std::make_unique<httplib::Server>();
  server->new_task_queue = [] { return new httplib::ThreadPool(kThreads); };
  server->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  server->set_read_timeout(5, 0);
  server->set_write_timeout(5, 0);
  server->set_keep_alive_timeout(5);
  server->set_payload_max_length(0);
  for (HttpPage& page : pages) {
    server->Get(page.path, [page](const httplib::Request&, httplib::Response& response) {
      response.set_content(page.body(), page.content_type.c_str());
    });
  }
  endpoint->port_ = port == 0 ? server->bind_to_any_port(endpoint->host_)
                              : (server->bind_to_port(endpoint->host_, port) ? port : -1);
  if (endpoint->port_ <= 0) {
    return UnavailableError("cannot listen on " + listen +
                            " for metrics (address in use, or not an address of this machine)");
  }
  endpoint->server_ = std::move(server);
  endpoint->thread_ = std::thread([s = endpoint->server_.get()] { s->listen_after_bind(); });
  // httplib's stop() does nothing until the loop has started: wait for it, so that a destructor
  // right after Start cannot leave the thread in accept() for good.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!endpoint->server_->is_running() && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  return endpoint;
}

HttpEndpoint::~HttpEndpoint() {
  if (server_ != nullptr) server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string HttpEndpoint::url() const {
  const bool ipv6 = host_.find(':') != std::string::npos;
  std::string host = host_ == "0.0.0.0" ? "127.0.0.1" : host_ == "::" ? "::1" : host_;
  if (ipv6 || host == "::1") host = "[" + host + "]";
  return "http://" + host + ":" + std::to_string(port_);
}

}  // namespace backflow::server
