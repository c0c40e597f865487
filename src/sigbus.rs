//! The SIGBUS guard: a data file truncated while mapped must not kill the server (README
//! "Limits and known gaps").
//!
//! Touching a mapped page past the new end of a truncated file raises SIGBUS. The design is
//! systemd's (`src/basic/sigbus.c`) and sapling's `indexedlog`: every map is registered in a
//! fixed global table ([`GuardedMap`]), and a handler installed once at startup
//! ([`install`]) answers a fault inside a registered map by
//!
//! 1. setting that map's *poisoned* flag, then
//! 2. mapping anonymous zero pages (`MAP_FIXED`) from the faulting page to the end of the map,
//!
//! and returning, so the faulting read restarts and reads zeros. The flag is set before the
//! remap, so any thread that reads a zero page sees the flag when it checks afterwards. Every
//! reader checks [`GuardedMap::poisoned`] after each step it copies or reduces, before the
//! result is used: a poisoned chunk is never sent, a poisoned reduction never answered.
//! Faults the table does not explain (other signals' codes, addresses outside every map) go
//! to the handler that was installed before ours, normally std's stack-overflow handler,
//! which resets SIGBUS to the default and returns so the fault repeats and kills the process.
//!
//! A poisoned map stays poisoned: its zero pages are never replaced, so every later request
//! on the dataset fails until a rescan maps the file anew (`Registry::rescan`).
//!
//! The handler uses only atomics and the `mmap`/`sigaction` system calls, all
//! async-signal-safe: no allocation, no locks, no thread-locals.

// The one module besides `registry::map_file` and the two calls in `dataset` that needs
// `unsafe`: signal handling has no safe interface in std or libc.
#![allow(unsafe_code)]

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering::SeqCst};
use std::sync::Once;

use memmap2::Mmap;

/// Maps that can be registered at once. Each is one mapped data file; a data directory with
/// more files than this fails to register the rest (logged and skipped by the scan).
pub const MAX_MAPS: usize = 4096;

/// One registered map. `seq` is a sequence lock: odd while the slot is being written, so the
/// handler never matches an address against half of an old range and half of a new one.
struct Slot {
    /// Claimed by a live [`GuardedMap`].
    used: AtomicBool,
    /// Even when `start`/`len` are stable.
    seq: AtomicUsize,
    /// First byte of the map; 0 when free.
    start: AtomicUsize,
    /// Bytes mapped.
    len: AtomicUsize,
    /// Set by the handler before it zero-fills any of the map.
    poisoned: AtomicBool,
}

impl Slot {
    const fn free() -> Slot {
        Slot {
            used: AtomicBool::new(false),
            seq: AtomicUsize::new(0),
            start: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            poisoned: AtomicBool::new(false),
        }
    }
}

static SLOTS: [Slot; MAX_MAPS] = [const { Slot::free() }; MAX_MAPS];

/// [`page_size`] copied by [`install`] for the handler, which may only load atomics
/// (`sysconf` is not async-signal-safe).
static PAGE: AtomicUsize = AtomicUsize::new(4096);

/// The system page size (a power of two; 4096 if `sysconf` says otherwise), read once.
pub(crate) fn page_size() -> usize {
    static SIZE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *SIZE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(page)
            .ok()
            .filter(|p| p.is_power_of_two())
            .unwrap_or(4096)
    })
}

/// Faults the handler has turned into zero pages, for tests and logs.
static HANDLED: AtomicUsize = AtomicUsize::new(0);

/// How many faults in registered maps the handler has answered with zero pages since the
/// process started: each is a truncation that a reader raced.
pub fn faults_handled() -> usize {
    HANDLED.load(SeqCst)
}

/// The SIGBUS action before ours: its handler address and its `sa_flags`.
static PREV_HANDLER: AtomicUsize = AtomicUsize::new(libc::SIG_DFL);
static PREV_FLAGS: AtomicI32 = AtomicI32::new(0);

/// A read-only memory map registered with the SIGBUS guard for exactly its lifetime.
#[derive(Debug)]
pub struct GuardedMap {
    // Declared first so it drops first: the slot is freed before the munmap, so a later map
    // at the same address never matches this one's stale entry.
    slot: Option<usize>,
    map: Mmap,
}

impl GuardedMap {
    /// Registers `map`.
    ///
    /// # Errors
    /// When [`MAX_MAPS`] maps are registered already.
    pub fn new(map: Mmap) -> std::io::Result<GuardedMap> {
        if map.is_empty() {
            // No pages, nothing to fault.
            return Ok(GuardedMap { slot: None, map });
        }
        let Some(i) = SLOTS
            .iter()
            .position(|s| s.used.compare_exchange(false, true, SeqCst, SeqCst).is_ok())
        else {
            return Err(std::io::Error::other(format!(
                "more than {MAX_MAPS} data files are mapped"
            )));
        };
        let slot = &SLOTS[i];
        slot.seq.fetch_add(1, SeqCst);
        slot.poisoned.store(false, SeqCst);
        slot.start.store(map.as_ptr() as usize, SeqCst);
        slot.len.store(map.len(), SeqCst);
        slot.seq.fetch_add(1, SeqCst);
        Ok(GuardedMap { slot: Some(i), map })
    }

    /// Whether a page of this map was lost to a truncation and replaced by zeros. Once true,
    /// it stays true, and no byte read from the map since the truncation can be trusted.
    pub fn poisoned(&self) -> bool {
        self.slot.is_some_and(|i| SLOTS[i].poisoned.load(SeqCst))
    }
}

impl Deref for GuardedMap {
    type Target = Mmap;

    fn deref(&self) -> &Mmap {
        &self.map
    }
}

impl Drop for GuardedMap {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            let slot = &SLOTS[i];
            slot.seq.fetch_add(1, SeqCst);
            slot.start.store(0, SeqCst);
            slot.len.store(0, SeqCst);
            slot.seq.fetch_add(1, SeqCst);
            slot.used.store(false, SeqCst);
        }
    }
}

/// Installs the SIGBUS handler; later calls do nothing. Call it before the first map is read:
/// `main` does, first thing. It must run after std's runtime set its own handler (it has,
/// before `main`), so that handler is the one unknown faults chain to.
///
/// # Panics
/// When `sigaction` fails, which it cannot for a valid signal and action.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        PAGE.store(page_size(), SeqCst);
        // SAFETY: an all-zero `sigaction` is a valid value of the plain C struct; the fields
        // that matter are set below.
        let (mut action, mut prev): (libc::sigaction, libc::sigaction) =
            unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
        let handler: Handler = handler;
        action.sa_sigaction = handler as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        // The previous action is read and saved first, so a fault that arrives as soon as
        // ours is in place already has somewhere to go.
        // SAFETY: a null new action only queries; `prev` is a valid pointer for the call.
        let rc = unsafe { libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut prev) };
        assert_eq!(
            rc,
            0,
            "sigaction(SIGBUS): {}",
            std::io::Error::last_os_error()
        );
        PREV_FLAGS.store(prev.sa_flags, SeqCst);
        PREV_HANDLER.store(prev.sa_sigaction, SeqCst);
        // SAFETY: `action.sa_mask` is a valid set to empty; `action` is a valid pointer for
        // the call; `handler` has the three-argument signature SA_SIGINFO asks for and is
        // async-signal-safe (see its documentation).
        let rc = unsafe {
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut())
        };
        assert_eq!(
            rc,
            0,
            "sigaction(SIGBUS): {}",
            std::io::Error::last_os_error()
        );
    });
}

/// An SA_SIGINFO signal handler.
type Handler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);

/// The index of the registered map holding `addr`, if any.
fn find(addr: usize) -> Option<usize> {
    SLOTS.iter().position(|s| {
        let seq = s.seq.load(SeqCst);
        if seq % 2 == 1 {
            return false;
        }
        let (start, len) = (s.start.load(SeqCst), s.len.load(SeqCst));
        s.seq.load(SeqCst) == seq && start != 0 && addr >= start && addr - start < len
    })
}

/// The SIGBUS handler. Only atomics and the `mmap` and `sigaction` system calls: all
/// async-signal-safe.
extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid `siginfo_t` to an SA_SIGINFO handler; for SIGBUS,
    // `si_addr` is the member in use.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    if code == libc::BUS_ADRERR {
        if let Some(i) = find(addr) {
            let slot = &SLOTS[i];
            // Poisoned first: a reader that sees a zero page must see the flag too.
            slot.poisoned.store(true, SeqCst);
            let page = PAGE.load(SeqCst);
            let from = addr & !(page - 1);
            let end_exc = (slot.start.load(SeqCst) + slot.len.load(SeqCst)).next_multiple_of(page);
            // SAFETY: `[from, end_exc)` lies inside a live registered map (its slot is freed
            // before the munmap, and the faulting read holds the map alive), page-aligned at
            // both ends. Replacing it with private zero pages is what the readers expect: they
            // discard what they read once the flag is set.
            let rc = unsafe {
                libc::mmap(
                    from as *mut libc::c_void,
                    end_exc - from,
                    libc::PROT_READ,
                    libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if rc != libc::MAP_FAILED {
                HANDLED.fetch_add(1, SeqCst);
                // The faulting read restarts and reads zeros.
                return;
            }
        }
    }
    chain(sig, info, ctx);
}

/// Hands a fault we do not handle to the previous handler; with none, restores the default
/// action and returns, so the fault repeats and kills the process with SIGBUS as usual.
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let prev = PREV_HANDLER.load(SeqCst);
    if prev == libc::SIG_DFL || prev == libc::SIG_IGN {
        // SAFETY: an all-zero `sigaction` with `SIG_DFL` (0) is the default action;
        // sigaction is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
        return;
    }
    if PREV_FLAGS.load(SeqCst) & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous action had SA_SIGINFO, so its handler has this signature and
        // expects these arguments, which the kernel gave us.
        let f: Handler = unsafe { std::mem::transmute::<usize, Handler>(prev) };
        f(sig, info, ctx);
    } else {
        // SAFETY: without SA_SIGINFO, the previous handler takes the signal number only.
        let f = unsafe { std::mem::transmute::<usize, extern "C" fn(libc::c_int)>(prev) };
        f(sig);
    }
}
