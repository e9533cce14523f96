// Free TCP ports on 127.0.0.1 for network tests.
#pragma once

#include <string>

namespace hpo::test {

// A port on 127.0.0.1 that was free a moment ago (bound, read back, closed).
// Another process may take it before the test binds it; tests live with that.
int free_port();

// "tcp://127.0.0.1:<free_port()>", the endpoint form ZeroMQ and `hpo` take.
std::string local_endpoint();

}  // namespace hpo::test
