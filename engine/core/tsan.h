// Happens-before annotations for ThreadSanitizer builds; no-ops otherwise.
//
// Debian's libtbb is not built with -fsanitize=thread, so TSAN cannot see the synchronisation
// inside it: the flow graph does order a node after its predecessors and wait_for_all after
// every node, but TSAN would report those accesses as races. The executor states those edges
// with these annotations; tests/tsan.supp silences the races left inside TBB's own templates.
#ifndef BACKFLOW_ENGINE_CORE_TSAN_H_
#define BACKFLOW_ENGINE_CORE_TSAN_H_

#if defined(BACKFLOW_TSAN)
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#define BF_TSAN_ACQUIRE(addr) __tsan_acquire(static_cast<void*>(addr))
#define BF_TSAN_RELEASE(addr) __tsan_release(static_cast<void*>(addr))
#else
#define BF_TSAN_ACQUIRE(addr) ((void)(addr))
#define BF_TSAN_RELEASE(addr) ((void)(addr))
#endif

#endif  // BACKFLOW_ENGINE_CORE_TSAN_H_
