// The console's only script. Every page works without it; it adds the
// live follow of the logs page and a confirmation before a revocation.
// No inline script anywhere: the Content-Security-Policy allows this file
// alone.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form.revoke")) {
    form.addEventListener("submit", (e) => {
      if (!window.confirm("Revoke this key? Clients using it are refused at once.")) e.preventDefault();
    });
  }
  const follow = document.getElementById("follow");
  if (follow) setUpFollow(follow);
});

// setUpFollow polls the feed every two seconds for lines newer than the
// newest shown and puts them on top, until the button is pressed again.
function setUpFollow(button) {
  const body = document.getElementById("log-lines");
  const state = document.getElementById("follow-state");
  let since = button.dataset.since || new Date().toISOString();
  let timer = null;
  button.hidden = false;

  const cell = (text) => {
    const td = document.createElement("td");
    td.textContent = text;
    return td;
  };
  const row = (l) => {
    const tr = document.createElement("tr");
    tr.className = "level-" + (l.level || "info");
    let msg = l.msg || "";
    if (l.trigger) msg += " · " + l.trigger;
    if (l.duration_ms) msg += " · " + l.duration_ms.toFixed(1) + " ms";
    if (l.status) msg += " · " + l.status;
    if (l.error) msg += " · " + l.error;
    if (l.capability) msg += " · " + l.capability + " " + (l.resource || "") + ": " + (l.reason || "");
    tr.append(cell(l.time), cell(l.level || ""), cell(l.app + "/" + l.function), cell(msg));
    const td = document.createElement("td");
    if (l.trace_id) {
      const a = document.createElement("a");
      a.href = "/console/traces/" + encodeURIComponent(l.trace_id);
      a.textContent = "trace";
      td.append(a);
    }
    tr.append(td);
    return tr;
  };
  const poll = async () => {
    try {
      const url = button.dataset.feed + "&since=" + encodeURIComponent(since);
      const res = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!res.ok) {
        state.textContent = "Following stopped: " + res.status + (res.status === 401 ? " (signed out)" : "");
        stop();
        return;
      }
      const lines = await res.json();
      for (const l of lines) {
        body.prepend(row(l));
        if (l.time > since) since = l.time;
      }
      const none = document.getElementById("no-lines");
      if (none && lines.length) none.remove();
      state.textContent = "Following: " + lines.length + " new line(s) at " + new Date().toLocaleTimeString();
    } catch (err) {
      state.textContent = "Following paused: " + err;
    }
  };
  const stop = () => {
    clearInterval(timer);
    timer = null;
    button.setAttribute("aria-pressed", "false");
    button.textContent = "Follow live";
  };
  button.addEventListener("click", () => {
    if (timer) {
      stop();
      state.textContent = "Not following.";
      return;
    }
    button.setAttribute("aria-pressed", "true");
    button.textContent = "Stop following";
    poll();
    timer = setInterval(poll, 2000);
  });
}
