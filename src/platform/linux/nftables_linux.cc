// nftables through libnftables (platform/nftables.h).
//
//   run(script) ─► nft_run_cmd_from_buffer ─► one netlink batch (one transaction)
//               ─► error buffer ─► Status
//
// Output and errors go to buffers of the context, never to our stdout/stderr. The library
// does not report errno; its message names the cause, and we map the two an operator meets
// (no permission, no such table) to codes callers can test.
#include <nftables/libnftables.h>

#include <cerrno>
#include <string>

#include "platform/nftables.h"

namespace warren::platform {
namespace {

struct CtxDeleter {
  void operator()(nft_ctx* c) const { nft_ctx_free(c); }
};

std::string trimmed(const char* s) {
  std::string t = s ? s : "";
  while (!t.empty() && (t.back() == '\n' || t.back() == ' '))
    t.pop_back();
  return t;
}

int code_of(const std::string& message) {
  if (message.find("Operation not permitted") != std::string::npos)
    return EPERM;
  if (message.find("No such file or directory") != std::string::npos)
    return ENOENT;
  return EIO;
}

class LinuxNftables final : public Nftables {
 public:
  explicit LinuxNftables(nft_ctx* ctx) : ctx_(ctx) {}

  Status run(const std::string& script) override {
    auto r = run_buffer(script);
    if (!r)
      return r.error();
    return ok();
  }

  Result<std::string> list_table(const std::string& family, const std::string& name) override {
    return run_buffer("list table " + family + " " + name);
  }

 private:
  Result<std::string> run_buffer(const std::string& script) {
    // The buffers collect one command's output each: reset them before and read after.
    nft_ctx_buffer_output(ctx_.get());
    nft_ctx_buffer_error(ctx_.get());
    const int rc = nft_run_cmd_from_buffer(ctx_.get(), script.c_str());
    std::string out = nft_ctx_get_output_buffer(ctx_.get());
    std::string err = trimmed(nft_ctx_get_error_buffer(ctx_.get()));
    nft_ctx_unbuffer_output(ctx_.get());
    nft_ctx_unbuffer_error(ctx_.get());
    if (rc != 0) {
      // The first line is the error; the next two quote a line of the script with a caret
      // underneath, which nft 1.0.6 picks wrongly for multi-line scripts: left out.
      err = err.substr(0, err.find('\n'));
      if (err.empty())
        err = "nft failed";
      return Error(code_of(err), "nftables: " + err);
    }
    return out;
  }

  std::unique_ptr<nft_ctx, CtxDeleter> ctx_;
};

}  // namespace

Result<std::unique_ptr<Nftables>> open_nftables() {
  nft_ctx* ctx = nft_ctx_new(NFT_CTX_DEFAULT);
  if (!ctx)
    return Error(ENOMEM, "cannot create an nftables context");
  return std::unique_ptr<Nftables>(std::make_unique<LinuxNftables>(ctx));
}

}  // namespace warren::platform
