// hello-js: an Aegis function in JavaScript. aegis build makes it a
// WebAssembly component (WASI 0.2) that answers fetch events.
//
//   GET /js/hello/{name}  greets and counts the visits of each name in
//                         the table `visits`, the function's only grant:
//                         {"message":"hello, ada","visits":2}
//   GET /js/fetch?url=U   fetches U. The function has no egress grant, so
//                         the platform refuses the request: 502 and the
//                         error.
import { get, set } from "aegis:platform/kv@0.1.0";

addEventListener("fetch", (event) => event.respondWith(handle(event.request)));

async function handle(request) {
  const url = new URL(request.url);
  const hello = url.pathname.match(/^\/js\/hello\/([^/]+)$/);
  if (request.method === "GET" && hello) {
    return greet(hello[1]);
  }
  if (request.method === "GET" && url.pathname === "/js/fetch") {
    return fetchURL(url.searchParams.get("url"));
  }
  return json(404, { error: "not found" });
}

function greet(segment) {
  let name;
  try {
    name = decodeURIComponent(segment);
  } catch {
    return json(400, { error: "the name is not valid percent-encoding" });
  }
  let visits;
  try {
    // Values are bytes: the count is kept as its decimal text.
    const seen = get("visits", name);
    visits = (seen === undefined ? 0 : Number.parseInt(new TextDecoder().decode(seen), 10) || 0) + 1;
    set("visits", name, new TextEncoder().encode(String(visits)));
  } catch (err) {
    // A failed platform call throws its error variant as err.payload.
    if (err.payload?.tag === "invalid") {
      return json(400, { error: `not a usable name: ${err.payload.val}` });
    }
    console.error(`visits/${name}: ${err.payload?.tag ?? ""} ${err.payload?.val ?? err}`);
    return json(503, { error: "the visits table is unavailable" });
  }
  return json(200, { message: `hello, ${name}`, visits });
}

async function fetchURL(target) {
  if (!target) {
    return json(400, { error: "name what to fetch: /js/fetch?url=https://example.com/" });
  }
  try {
    const resp = await fetch(target);
    return new Response(await resp.arrayBuffer(), {
      headers: { "content-type": resp.headers.get("content-type") ?? "application/octet-stream" },
    });
  } catch (err) {
    return new Response(`fetch ${target}: ${err?.message ?? err}\n`, {
      status: 502,
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  }
}

function json(status, body) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}
