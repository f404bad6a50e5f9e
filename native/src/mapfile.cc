// mapFile(path): a whole file as an ArrayBuffer over a private memory map, so that a checkpoint's tensors can be
// views of the page cache instead of copies. Reading a 2 GB file into fresh memory costs more in page faults than
// in copying (every 4 KB page of a new buffer is zeroed and faulted in once); a file mapping faults in page-cache
// pages that already exist, many at a time. The mapping is private (MAP_PRIVATE) and writable: a write to a
// tensor copies that page for this process and never reaches the file. V8 unmaps it when the last view is
// collected. Returns null where memory maps are not available (not POSIX) so the caller reads the file instead.
#include <napi.h>
#include <v8.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define DIFFUSE_HAVE_MMAP 1
#endif

namespace diffuse {

namespace {

Napi::Value MapFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "mapFile: expected a path");
#if defined(DIFFUSE_HAVE_MMAP)
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Napi::Error::New(env, path + ": cannot open: " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    throw Napi::Error::New(env, path + ": cannot stat: " + std::strerror(err));
  }
  const std::size_t bytes = static_cast<std::size_t>(st.st_size);
  if (bytes == 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return env.Null();  // nothing to map (or not a regular file): the caller reads it instead
  }
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  const int err = errno;
  close(fd);  // the mapping keeps the file's pages; the descriptor is not needed
  if (p == MAP_FAILED) throw Napi::Error::New(env, path + ": cannot map: " + std::strerror(err));
#if defined(MADV_WILLNEED)
  // the loader reads every tensor once, front to back: start the readahead of what is not cached yet
  madvise(p, bytes, MADV_WILLNEED);
#endif
  // a V8 backing store, not napi_create_external_arraybuffer, so the unmap happens when the GC frees the buffer
  // rather than later on the event loop (see pool.cc)
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  std::unique_ptr<v8::BackingStore> store = v8::ArrayBuffer::NewBackingStore(
      p, bytes, [](void* data, std::size_t length, void*) { munmap(data, length); }, nullptr);
  v8::Local<v8::ArrayBuffer> buffer = v8::ArrayBuffer::New(isolate, std::move(store));
  return Napi::Value(env, reinterpret_cast<napi_value>(*buffer));
#else
  return env.Null();
#endif
}

}  // namespace

void register_mapfile(Napi::Env env, Napi::Object exports) {
  exports.Set("mapFile", Napi::Function::New(env, MapFile));
}

}  // namespace diffuse
