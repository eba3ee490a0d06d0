// The benchmark's JavaScript echo: the request body back, as the Go echo.
addEventListener("fetch", (event) =>
  event.respondWith((async () => new Response(await event.request.arrayBuffer()))()),
);
