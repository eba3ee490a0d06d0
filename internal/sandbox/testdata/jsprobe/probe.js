// A component that exercises the host: each path is one probe the sandbox
// tests call.
import { get, set } from "aegis:platform/kv@0.1.0";
import { write } from "aegis:platform/log@0.1.0";
import { get as secret } from "aegis:platform/secrets@0.1.0";
import { get as getObject, put as putObject } from "aegis:platform/objects@0.1.0";
import { publish } from "aegis:platform/events@0.1.0";
import { call } from "aegis:platform/invoke@0.1.0";

const text = (s, status = 200, headers = {}) =>
  new Response(s, { status, headers: { "content-type": "text/plain", ...headers } });

// A refused capability throws the error case of aegis:platform/types.
const refusal = (err) => {
  const p = err && err.payload;
  return p ? `${p.tag}: ${p.val}` : String(err);
};

async function handle(request) {
  const url = new URL(request.url);
  const [, op, arg] = url.pathname.split("/");
  switch (op) {
    case "hello":
      return text("hello from a component");
    case "echo":
      return text(await request.text(), 200, { "x-method": request.method });
    case "headers": {
      const seen = {};
      for (const [k, v] of request.headers) seen[k] = v;
      return new Response(JSON.stringify(seen), { headers: { "content-type": "application/json" } });
    }
    case "query":
      return text(url.searchParams.get("q") ?? "");
    case "kv":
      try {
        if (request.method === "PUT") {
          set("notes", arg, new Uint8Array(await request.arrayBuffer()));
          return text("stored", 201);
        }
        const v = get("notes", arg);
        return v === undefined ? text("none", 404) : text(new TextDecoder().decode(v));
      } catch (err) {
        return text(refusal(err), 403);
      }
    case "denied":
      try {
        get("secret", "k");
        return text("read a table outside the grants", 200);
      } catch (err) {
        return text(refusal(err), 403);
      }
    case "secret":
      try {
        const v = secret(arg);
        return text(v === undefined ? "none" : `${v.length} bytes`);
      } catch (err) {
        return text(refusal(err), 403);
      }
    case "secret-log":
      // The value is scrubbed from the function's log.
      console.log(`the token is ${new TextDecoder().decode(secret("TOKEN"))}`);
      return text("logged");
    case "object":
      try {
        if (request.method === "PUT") {
          putObject(arg, new Uint8Array(await request.arrayBuffer()));
          return text("stored", 201);
        }
        const v = getObject(arg);
        return v === undefined ? text("none", 404) : text(new TextDecoder().decode(v));
      } catch (err) {
        return text(refusal(err), 403);
      }
    case "publish":
      try {
        publish("orders", new Uint8Array(await request.arrayBuffer()));
        return text("published", 202);
      } catch (err) {
        return text(refusal(err), 403);
      }
    case "invoke":
      try {
        const r = call("POST", `/${arg}`, [["x-from", "probe"]], new TextEncoder().encode("ping"));
        const callee = r.headers.find(([k]) => k.toLowerCase() === "x-callee");
        return text(`${r.status} ${callee ? callee[1] : ""} ${new TextDecoder().decode(r.body)}`);
      } catch (err) {
        return text(refusal(err), 403);
      }
    case "sleep": {
      const started = Date.now();
      await new Promise((resolve) => setTimeout(resolve, Number(arg)));
      return text(String(Date.now() - started));
    }
    case "race": {
      // A fetch that is answered at once against a long timer: the
      // answer must not wait for the timer.
      const fetched = fetch("https://api.example.test/").then(() => "fetch");
      const timer = new Promise((resolve) => setTimeout(() => resolve("timer"), 3000));
      const winner = await Promise.race(arg === "timer-first" ? [timer, fetched] : [fetched, timer]);
      return text(winner);
    }
    case "fetch":
      try {
        const r = await fetch(url.searchParams.get("url"));
        return text(await r.text(), r.status);
      } catch (err) {
        return text(`fetch failed: ${err}`, 502);
      }
    case "log":
      console.log("a line on stdout");
      console.error("a line on stderr");
      write("warn", "a line through the platform log");
      return text("logged");
    case "cookies": {
      const h = new Headers();
      h.append("set-cookie", "a=1");
      h.append("set-cookie", "b=2");
      return new Response("two cookies", { headers: h });
    }
    case "big":
      return text("x".repeat(Number(url.searchParams.get("n") ?? "0")));
    case "spin":
      for (;;) {}
    case "alloc": {
      const keep = [];
      for (;;) keep.push(new Array(1 << 20).fill(keep.length));
    }
    case "throw":
      throw new Error("the handler failed on purpose");
    case "event":
      return text(`${request.headers.get("aegis-kind")} ${request.headers.get("aegis-topic")} ${await request.text()}`);
  }
  return text("no such probe", 404);
}

addEventListener("fetch", (event) => event.respondWith(handle(event.request)));
