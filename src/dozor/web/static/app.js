// Live states: rows and the monitor page follow the server's state changes and regional
// problems (server-sent events). Everything still reads without this script; it only
// keeps the page current.
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
  // A regional problem: the page holds a hidden badge for each monitor checked from
  // locations; an empty list hides it.
  source.addEventListener("regional", (message) => {
    const news = JSON.parse(message.data);
    const holder = document.getElementById("m" + news.id);
    const badge = holder && holder.querySelector("[data-regional]");
    if (!badge) return;
    badge.querySelector("[data-where]").textContent = news.regional.join(", ");
    badge.hidden = news.regional.length === 0;
  });
  source.addEventListener("reload", () => window.location.reload());
})();
