//! hello-rust: GET /hello/{name} greets and counts the greetings of each
//! name in the table `greetings` (the only grant the function has).

use aegis::{kv, Request, Response};

fn hello(req: &Request) -> Response {
    let name = req.param("name").unwrap_or("you");
    let table = kv("greetings");
    let seen = match table.get(name) {
        Ok(v) => String::from_utf8_lossy(&v).parse::<u64>().unwrap_or(0),
        Err(aegis::Error::NotFound(_)) => 0,
        Err(e) => {
            aegis::log(aegis::Level::Error, &format!("read greetings/{}: {}", name, e));
            return Response::error(503, "the greetings table is unavailable");
        }
    };
    if let Err(e) = table.put(name, (seen + 1).to_string().as_bytes()) {
        aegis::log(aegis::Level::Error, &format!("write greetings/{}: {}", name, e));
        return Response::error(503, "the greetings table is unavailable");
    }
    let mut body = String::from("{\"message\":");
    aegis::json::write_str(&mut body, &format!("hello, {}", name));
    body.push_str(&format!(",\"times\":{}}}", seen + 1));
    Response::json(200, &body)
}

aegis::handler!(hello);

#[cfg(test)]
mod tests {
    use super::*;

    // Off WebAssembly the table is unavailable: the handler says so.
    #[test]
    fn answers_503_without_the_platform() {
        let r = hello(&Request::new(r#"{"kind":"http","method":"GET","path":"/hello/ana","params":{"name":"ana"}}"#, b""));
        assert_eq!(r.status, 503);
    }
}
