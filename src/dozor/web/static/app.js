// Live states: rows and the monitor page follow the server's state changes (server-sent
// events). Everything still reads without this script; it only keeps the page current.
"use strict";
(function () {
  if (!window.EventSource || !document.querySelector("[data-state]")) return;
  const texts = document.getElementById("texts");
  const word = (state) => (texts && texts.dataset[state]) || state;
  const source = new EventSource("/events");
  source.addEventListener("state", (message) => {
    const change = JSON.parse(message.data);
    const holder = document.getElementById("m" + change.id);
    if (!holder) return;
    const badge = holder.querySelector("[data-state]");
    badge.className = "state s-" + change.state;
    badge.textContent = word(change.state);
    const since = holder.querySelector("[data-since]");
    if (since) since.textContent = "0s";
  });
  source.addEventListener("reload", () => window.location.reload());
})();
