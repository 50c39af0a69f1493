//! libpq's OpenSSL, told not to clean up when the process exits.
//!
//! libpq uses OpenSSL (and TLS whenever the server offers it, loopback
//! included), and OpenSSL frees its global state from an `atexit`
//! handler. That handler runs while threads that used OpenSSL may still
//! be ending (r2d2's connection workers, tokio's blocking threads, which
//! cannot be joined), and a thread's end runs OpenSSL's per-thread
//! cleanup: the race crashed processes after their work was done
//! (SIGSEGV in `OPENSSL_cleanup`: a server stopped cleanly, a test binary
//! after its test passed). The memory is the kernel's to free anyway.

use std::sync::Once;

/// `OPENSSL_INIT_NO_ATEXIT` of `openssl/crypto.h` (1.1.1 and 3.x).
#[cfg(unix)]
const OPENSSL_INIT_NO_ATEXIT: u64 = 0x0008_0000;

/// Tells OpenSSL not to register its exit-time cleanup. It takes effect
/// only before OpenSSL's first initialisation in the process, so call it
/// before the first PostgreSQL connection; later calls do nothing. Without
/// OpenSSL in the process it does nothing.
pub fn skip_openssl_exit_cleanup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(init_without_atexit);
}

#[cfg(unix)]
#[allow(unsafe_code)]
fn init_without_atexit() {
    type InitCrypto = unsafe extern "C" fn(u64, *const libc::c_void) -> libc::c_int;
    // SAFETY: `dlsym` gets a NUL-terminated name. The symbol, when some
    // loaded library (libpq's libcrypto) has it, is OpenSSL's
    // `int OPENSSL_init_crypto(uint64_t opts, const OPENSSL_INIT_SETTINGS
    // *settings)`, which accepts a null `settings`.
    unsafe {
        let symbol = libc::dlsym(libc::RTLD_DEFAULT, c"OPENSSL_init_crypto".as_ptr());
        if symbol.is_null() {
            return;
        }
        let init = std::mem::transmute::<*mut libc::c_void, InitCrypto>(symbol);
        init(OPENSSL_INIT_NO_ATEXIT, std::ptr::null());
    }
}

#[cfg(not(unix))]
fn init_without_atexit() {}
