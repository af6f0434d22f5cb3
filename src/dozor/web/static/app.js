// Live states: rows and the monitor page follow the server's state changes (server-sent
// events). Everything still reads without this script; it only keeps the page current.
"use strict";
(function () {
  if (!window.EventSource || !document.querySelector("[data-state]")) return;
  const texts = document.getElementById("texts");
  const word = (state) => (texts && texts.dataset[state]) || state;
  // The page's monitors: the stream starts with their states as they are now.
  const ids = Array.from(document.querySelectorAll("[data-id]"), (el) => el.dataset.id);
  const source = new EventSource("/events?ids=" + ids.join(","));
  source.addEventListener("state", (message) => {
    const change = JSON.parse(message.data);
    const holder = document.getElementById("m" + change.id);
    if (!holder) return;
    const badge = holder.querySelector("[data-state]");
    const changed = badge.className !== "state s-" + change.state;
    badge.className = "state s-" + change.state;
    badge.textContent = word(change.state);
    const since = holder.querySelector("[data-since]");
    if (since && changed) since.textContent = "0s";
  });
  source.addEventListener("reload", () => window.location.reload());
})();
