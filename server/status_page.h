// The status page on --metrics-listen (docs/observability.md#the-status-page): GET / is one HTML
// page (server/status_page.html: inline CSS and script, no external scripts, fonts or images)
// that draws the models' table, a loss curve per model (SVG) and the server's throughput and
// latency, and refreshes itself every two seconds from GET /api/status, the JSON below.
//
// Note [Status page]
// The page is built in the browser from the JSON, and the first JSON is written into the page
// itself, so it shows everything on its first paint, with or without a later fetch (a headless
// browser's --dump-dom sees the same page a person does). /api/status is bounded whatever the
// server holds: at most --max-models models, each curve cut to kStatusCurvePoints evenly spaced
// points of its history (Note [Training history]; GetModel with history gives all of it), and
// per method only counts and quantiles. Everything a client named (model ids and names) reaches
// the page as JSON strings, set into the page with textContent, never as markup.
// Like /metrics, the page shows every model to whoever reaches the port, with or without
// --auth-tokens: keep --metrics-listen on loopback or a network you trust.
#ifndef BACKFLOW_SERVER_STATUS_PAGE_H_
#define BACKFLOW_SERVER_STATUS_PAGE_H_

#include <string>

namespace backflow::server {

struct ServiceEnv;

inline constexpr int kStatusCurvePoints = 256;

// GET /api/status: {"server": {...}, "methods": [...], "models": [...], "damaged": [...]}.
// env.metrics must be set.
std::string StatusJson(const ServiceEnv& env);
// GET /: the page, with StatusJson's answer inline.
std::string StatusPage(const ServiceEnv& env);

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_STATUS_PAGE_H_
