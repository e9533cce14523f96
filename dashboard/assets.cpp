// The bytes of the embedded files (assets.h), included by the assembler's .incbin: fast to build
// at any size, and the object is rebuilt when a file changes (CMake's OBJECT_DEPENDS; ccache
// is off for this file, which cannot see those bytes). HPO_ASSETS_DIR and HPO_ECHARTS_DIR come
// from dashboard/CMakeLists.txt.
#include "dashboard/assets.h"

#include <array>

// Each file as [name_begin, name_end), followed by a NUL byte that is not part of it.
#define HPO_INCBIN(name, file)                                          \
  __asm__(".pushsection .rodata\n"                                     \
          ".balign 16\n"                                               \
          "hpo_asset_" #name "_begin:\n"                               \
          ".incbin \"" file "\"\n"                                     \
          "hpo_asset_" #name "_end:\n"                                 \
          ".byte 0\n"                                                  \
          ".popsection\n");                                            \
  extern "C" const char hpo_asset_##name##_begin[] __asm__("hpo_asset_" #name "_begin"); \
  extern "C" const char hpo_asset_##name##_end[] __asm__("hpo_asset_" #name "_end")

HPO_INCBIN(index_html, HPO_ASSETS_DIR "/index.html");
HPO_INCBIN(app_js, HPO_ASSETS_DIR "/app.js");
HPO_INCBIN(app_css, HPO_ASSETS_DIR "/app.css");
HPO_INCBIN(echarts_js, HPO_ECHARTS_DIR "/echarts.min.js");
HPO_INCBIN(echarts_license, HPO_ECHARTS_DIR "/LICENSE");
HPO_INCBIN(echarts_notice, HPO_ECHARTS_DIR "/NOTICE");

namespace hpo::dashboard {
namespace {

std::string_view bytes(const char* begin, const char* end) {
  return std::string_view(begin, static_cast<std::size_t>(end - begin));
}

}  // namespace

std::optional<Asset> find_asset(std::string_view name) {
  constexpr std::string_view kText = "text/plain; charset=utf-8";
  constexpr std::string_view kJs = "text/javascript; charset=utf-8";
  const std::array<Asset, 6> all = {{
      {"index.html", "text/html; charset=utf-8", bytes(hpo_asset_index_html_begin, hpo_asset_index_html_end)},
      {"app.js", kJs, bytes(hpo_asset_app_js_begin, hpo_asset_app_js_end)},
      {"app.css", "text/css; charset=utf-8", bytes(hpo_asset_app_css_begin, hpo_asset_app_css_end)},
      {"echarts.min.js", kJs, bytes(hpo_asset_echarts_js_begin, hpo_asset_echarts_js_end)},
      {"LICENSE-echarts", kText, bytes(hpo_asset_echarts_license_begin, hpo_asset_echarts_license_end)},
      {"NOTICE-echarts", kText, bytes(hpo_asset_echarts_notice_begin, hpo_asset_echarts_notice_end)},
  }};
  for (const auto& a : all) {
    if (a.name == name) return a;
  }
  return std::nullopt;
}

}  // namespace hpo::dashboard
