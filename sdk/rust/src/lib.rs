//! Aegis functions in Rust, over the guest ABI (docs/abi.md), with no
//! dependencies.
//!
//! A function is a `cdylib` built for `wasm32-wasi` whose handler is
//! exported with [`handler!`]:
//!
//! ```ignore
//! fn hello(req: &aegis::Request) -> aegis::Response {
//!     aegis::Response::text(200, &format!("hello, {}", req.param("name").unwrap_or("you")))
//! }
//! aegis::handler!(hello);
//! ```
//!
//! Everything outside the function's own memory (tables, objects, events,
//! secrets, logs) goes through the calls here, and the platform checks
//! each against the grants in aegis.yaml: a call that is not granted
//! fails with [`Error::PermissionDenied`].
//!
//! Off WebAssembly the crate still builds, so handlers can be unit-tested
//! on the host with [`Request::new`]; every platform call then fails with
//! [`Error::Unavailable`].

pub mod json;

use json::Json;
use std::fmt;

/// A failed platform call: the ABI's result code and the host's message.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    PermissionDenied(String),
    NotFound(String),
    InvalidArgument(String),
    LimitExceeded(String),
    Unavailable(String),
    Internal(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, msg) = match self {
            Error::PermissionDenied(m) => ("permission denied", m),
            Error::NotFound(m) => ("not found", m),
            Error::InvalidArgument(m) => ("invalid argument", m),
            Error::LimitExceeded(m) => ("limit exceeded", m),
            Error::Unavailable(m) => ("unavailable", m),
            Error::Internal(m) => ("internal error", m),
        };
        if msg.is_empty() {
            f.write_str(what)
        } else {
            f.write_str(msg)
        }
    }
}

impl std::error::Error for Error {}

/// The result of a platform call.
pub type Result<T> = std::result::Result<T, Error>;

mod abi {
    #[cfg(target_arch = "wasm32")]
    #[link(wasm_import_module = "aegis")]
    extern "C" {
        pub fn request_meta_len() -> i32;
        pub fn request_meta_read(ptr: *mut u8, len: u32) -> i32;
        pub fn request_body_len() -> i32;
        pub fn request_body_read(ptr: *mut u8, len: u32) -> i32;
        pub fn response_set(meta: *const u8, meta_len: u32, body: *const u8, body_len: u32) -> i32;
        pub fn result_len() -> i32;
        pub fn result_read(ptr: *mut u8, len: u32) -> i32;
        pub fn kv_get(t: *const u8, tl: u32, k: *const u8, kl: u32) -> i32;
        pub fn kv_put(t: *const u8, tl: u32, k: *const u8, kl: u32, v: *const u8, vl: u32) -> i32;
        pub fn kv_delete(t: *const u8, tl: u32, k: *const u8, kl: u32) -> i32;
        pub fn object_get(k: *const u8, kl: u32) -> i32;
        pub fn object_put(k: *const u8, kl: u32, d: *const u8, dl: u32) -> i32;
        pub fn publish(t: *const u8, tl: u32, d: *const u8, dl: u32) -> i32;
        pub fn secret(n: *const u8, nl: u32) -> i32;
        pub fn log(level: i32, msg: *const u8, len: u32);
    }

    // Off WebAssembly: no platform, every call unavailable (-5).
    #[cfg(not(target_arch = "wasm32"))]
    mod host {
        pub unsafe extern "C" fn request_meta_len() -> i32 { -5 }
        pub unsafe extern "C" fn request_meta_read(_: *mut u8, _: u32) -> i32 { -5 }
        pub unsafe extern "C" fn request_body_len() -> i32 { -5 }
        pub unsafe extern "C" fn request_body_read(_: *mut u8, _: u32) -> i32 { -5 }
        pub unsafe extern "C" fn response_set(_: *const u8, _: u32, _: *const u8, _: u32) -> i32 { -5 }
        pub unsafe extern "C" fn result_len() -> i32 { 0 }
        pub unsafe extern "C" fn result_read(_: *mut u8, _: u32) -> i32 { 0 }
        pub unsafe extern "C" fn kv_get(_: *const u8, _: u32, _: *const u8, _: u32) -> i32 { -5 }
        pub unsafe extern "C" fn kv_put(_: *const u8, _: u32, _: *const u8, _: u32, _: *const u8, _: u32) -> i32 { -5 }
        pub unsafe extern "C" fn kv_delete(_: *const u8, _: u32, _: *const u8, _: u32) -> i32 { -5 }
        pub unsafe extern "C" fn object_get(_: *const u8, _: u32) -> i32 { -5 }
        pub unsafe extern "C" fn object_put(_: *const u8, _: u32, _: *const u8, _: u32) -> i32 { -5 }
        pub unsafe extern "C" fn publish(_: *const u8, _: u32, _: *const u8, _: u32) -> i32 { -5 }
        pub unsafe extern "C" fn secret(_: *const u8, _: u32) -> i32 { -5 }
        pub unsafe extern "C" fn log(_: i32, _: *const u8, _: u32) {}
    }
    #[cfg(not(target_arch = "wasm32"))]
    pub use host::*;
}

/// Reads n bytes with one call of read.
fn read_exact(n: i32, read: unsafe extern "C" fn(*mut u8, u32) -> i32) -> Result<Vec<u8>> {
    if n < 0 {
        return Err(error(n));
    }
    let mut buf = vec![0u8; n as usize];
    if n > 0 {
        let got = unsafe { read(buf.as_mut_ptr(), n as u32) };
        if got != n {
            return Err(if got < 0 { error(got) } else { Error::Internal("short read".into()) });
        }
    }
    Ok(buf)
}

/// The error of a negative result code, with the host's message.
fn error(code: i32) -> Error {
    let msg = read_exact(unsafe { abi::result_len() }, abi::result_read)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default();
    match code {
        -1 => Error::PermissionDenied(msg),
        -2 => Error::NotFound(msg),
        -3 => Error::InvalidArgument(msg),
        -4 => Error::LimitExceeded(msg),
        -5 => Error::Unavailable(msg),
        _ => Error::Internal(msg),
    }
}

/// The value a call left in the result buffer, or its error.
fn result(code: i32) -> Result<Vec<u8>> {
    if code < 0 {
        return Err(error(code));
    }
    read_exact(code, abi::result_read)
}

fn status(code: i32) -> Result<()> {
    if code < 0 {
        Err(error(code))
    } else {
        Ok(())
    }
}

/// An invocation: an HTTP request routed to the function, or an event,
/// object or schedule delivery.
#[derive(Debug, Clone)]
pub struct Request {
    meta: Json,
    /// The request body, or the event's payload, as sent.
    pub body: Vec<u8>,
}

impl Request {
    /// A request as the platform would pass it, for unit tests: `meta` is
    /// the request meta document (docs/abi.md). Panics on invalid JSON,
    /// which is a bug in the test.
    pub fn new(meta: &str, body: &[u8]) -> Request {
        Request { meta: Json::parse(meta).expect("request meta must be JSON"), body: body.to_vec() }
    }

    fn read() -> Result<Request> {
        let meta = read_exact(unsafe { abi::request_meta_len() }, abi::request_meta_read)?;
        let body = read_exact(unsafe { abi::request_body_len() }, abi::request_body_read)?;
        let meta = std::str::from_utf8(&meta)
            .ok()
            .and_then(Json::parse)
            .ok_or_else(|| Error::Internal("the request meta is not JSON".into()))?;
        Ok(Request { meta, body })
    }

    fn field(&self, name: &str) -> &str {
        self.meta.get(name).and_then(Json::as_str).unwrap_or("")
    }

    /// "http", "event", "object" or "schedule".
    pub fn kind(&self) -> &str { self.field("kind") }
    /// The correlation id; include it in logs and errors.
    pub fn request_id(&self) -> &str { self.field("request_id") }
    pub fn method(&self) -> &str { self.field("method") }
    pub fn path(&self) -> &str { self.field("path") }
    /// A path parameter of the route: "/hello/{name}" gives param("name").
    pub fn param(&self, name: &str) -> Option<&str> {
        self.meta.get("params")?.get(name)?.as_str()
    }
    /// The first value of a query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        match self.meta.get("query")?.get(name)? {
            Json::Arr(vs) => vs.first()?.as_str(),
            _ => None,
        }
    }
    /// The first value of a request header (names as the gateway
    /// canonicalizes them: "Content-Type").
    pub fn header(&self, name: &str) -> Option<&str> {
        match self.meta.get("headers")?.get(name)? {
            Json::Arr(vs) => vs.first()?.as_str(),
            _ => None,
        }
    }
    /// The verified caller's scheme ("api-key", "jwt", "hmac", "function")
    /// and subject; None on a public route.
    pub fn caller(&self) -> Option<(&str, &str)> {
        let id = self.meta.get("identity")?;
        Some((id.get("scheme")?.as_str()?, id.get("subject").and_then(Json::as_str).unwrap_or("")))
    }
    /// event: the topic.
    pub fn topic(&self) -> &str { self.field("topic") }
    /// object: the key.
    pub fn key(&self) -> &str { self.field("key") }
    /// The request meta as the host sent it.
    pub fn meta(&self) -> &Json { &self.meta }
}

/// What an HTTP handler answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, body: &[u8]) -> Response {
        Response { status, headers: Vec::new(), body: body.to_vec() }
    }
    /// Plain text.
    pub fn text(status: u16, s: &str) -> Response {
        Response::new(status, s.as_bytes()).header("Content-Type", "text/plain; charset=utf-8")
    }
    /// A JSON body already encoded.
    pub fn json(status: u16, body: &str) -> Response {
        Response::new(status, body.as_bytes()).header("Content-Type", "application/json")
    }
    /// {"error": msg}, the shape the platform answers its own errors in.
    pub fn error(status: u16, msg: &str) -> Response {
        let mut s = String::from("{\"error\":");
        json::write_str(&mut s, msg);
        s.push('}');
        Response::json(status, &s)
    }
    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
    /// Adds a header line and keeps those already set under the name. A
    /// header sent several times (two Set-Cookie lines) travels as one
    /// value with its lines separated by "\n"; the gateway sends each
    /// line as its own header (docs/abi.md).
    pub fn add_header(mut self, name: &str, value: &str) -> Response {
        match self.headers.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some((_, v)) => {
                v.push('\n');
                v.push_str(value);
            }
            None => self.headers.push((name.to_string(), value.to_string())),
        }
        self
    }

    fn meta(&self) -> String {
        let mut s = format!("{{\"status\":{},\"headers\":{{", self.status);
        for (i, (n, v)) in self.headers.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            json::write_str(&mut s, n);
            s.push(':');
            json::write_str(&mut s, v);
        }
        s.push_str("}}");
        s
    }
}

/// Serves one invocation with h: the body of the exported `aegis_handle`
/// that [`handler!`] writes. Returns 0 on success, 1 on failure (logged).
#[doc(hidden)]
pub fn serve(h: fn(&Request) -> Response) -> i32 {
    let req = match Request::read() {
        Ok(r) => r,
        Err(e) => {
            log(Level::Error, &format!("read the request: {}", e));
            return 1;
        }
    };
    let resp = h(&req);
    let meta = resp.meta();
    let code = unsafe { abi::response_set(meta.as_ptr(), meta.len() as u32, resp.body.as_ptr(), resp.body.len() as u32) };
    if code < 0 {
        log(Level::Error, &format!("set the response: {}", error(code)));
        return 1;
    }
    0
}

/// Exports `f: fn(&aegis::Request) -> aegis::Response` as the function's
/// handler (`aegis_handle`).
#[macro_export]
macro_rules! handler {
    ($f:path) => {
        #[no_mangle]
        pub extern "C" fn aegis_handle() -> i32 {
            $crate::serve($f)
        }
    };
}

/// Log levels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

/// Writes a line to the function's log (`aegis logs`).
pub fn log(level: Level, msg: &str) {
    unsafe { abi::log(level as i32, msg.as_ptr(), msg.len() as u32) }
}

/// A key-value table the function's grants name.
pub struct Table<'a> {
    name: &'a str,
}

/// The table `name` (grants.kv).
pub fn kv(name: &str) -> Table<'_> {
    Table { name }
}

impl<'a> Table<'a> {
    /// The value of key; Err(NotFound) when there is none.
    pub fn get(&self, key: &str) -> Result<Vec<u8>> {
        result(unsafe { abi::kv_get(self.name.as_ptr(), self.name.len() as u32, key.as_ptr(), key.len() as u32) })
    }
    pub fn put(&self, key: &str, value: &[u8]) -> Result<()> {
        status(unsafe {
            abi::kv_put(self.name.as_ptr(), self.name.len() as u32, key.as_ptr(), key.len() as u32, value.as_ptr(), value.len() as u32)
        })
    }
    pub fn delete(&self, key: &str) -> Result<()> {
        status(unsafe { abi::kv_delete(self.name.as_ptr(), self.name.len() as u32, key.as_ptr(), key.len() as u32) })
    }
}

/// The object `key` (grants.objects); Err(NotFound) when there is none.
pub fn object_get(key: &str) -> Result<Vec<u8>> {
    result(unsafe { abi::object_get(key.as_ptr(), key.len() as u32) })
}

/// Stores the object `key`.
pub fn object_put(key: &str, data: &[u8]) -> Result<()> {
    status(unsafe { abi::object_put(key.as_ptr(), key.len() as u32, data.as_ptr(), data.len() as u32) })
}

/// Publishes an event on `topic` (grants.events.publish).
pub fn publish(topic: &str, data: &[u8]) -> Result<()> {
    status(unsafe { abi::publish(topic.as_ptr(), topic.len() as u32, data.as_ptr(), data.len() as u32) })
}

/// The value of the app secret `name` (grants.secrets). Never log it.
pub fn secret(name: &str) -> Result<Vec<u8>> {
    result(unsafe { abi::secret(name.as_ptr(), name.len() as u32) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_accessors() {
        let r = Request::new(
            r#"{"kind":"http","request_id":"r1","method":"GET","path":"/hello/ana","params":{"name":"ana"},"query":{"q":["a","b"]},"headers":{"Accept":["*/*"]},"identity":{"scheme":"api-key","subject":"ci"}}"#,
            b"",
        );
        assert_eq!((r.kind(), r.method(), r.path(), r.request_id()), ("http", "GET", "/hello/ana", "r1"));
        assert_eq!(r.param("name"), Some("ana"));
        assert_eq!(r.param("other"), None);
        assert_eq!(r.query("q"), Some("a"));
        assert_eq!(r.header("Accept"), Some("*/*"));
        assert_eq!(r.caller(), Some(("api-key", "ci")));
    }

    #[test]
    fn response_meta() {
        let r = Response::error(400, "bad \"name\"").header("X-A", "1").header("x-a", "2");
        assert_eq!(r.meta(), r#"{"status":400,"headers":{"Content-Type":"application/json","x-a":"2"}}"#);
        assert_eq!(r.body, br#"{"error":"bad \"name\""}"#.to_vec());
        let r = Response::text(200, "").add_header("Set-Cookie", "a=1").add_header("set-cookie", "b=2");
        assert_eq!(r.meta(), r#"{"status":200,"headers":{"Content-Type":"text/plain; charset=utf-8","Set-Cookie":"a=1\nb=2"}}"#);
    }

    #[test]
    fn platform_calls_off_wasm_are_unavailable() {
        assert!(matches!(kv("t").get("k"), Err(Error::Unavailable(_))));
    }
}
