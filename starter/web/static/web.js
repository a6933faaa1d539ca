// Refund Desk's pages: times in the reader's zone, the queue's refresh, and a link's token out of the URL.
"use strict";

function localTimes(root) {
  // dateStyle/timeStyle cannot be combined with timeZoneName (a TypeError): the fields one by one.
  const format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "numeric", minute: "2-digit", timeZoneName: "short",
  });
  for (const node of root.querySelectorAll("time[datetime]")) {
    const instant = new Date(node.getAttribute("datetime"));
    if (Number.isNaN(instant.getTime())) continue;
    if (!node.title) node.title = node.textContent;
    node.textContent = format.format(instant);
  }
}

function refreshing(region) {
  const seconds = Number(region.dataset.refreshSeconds || "30");
  const status = document.getElementById(region.dataset.refreshStatus || "");
  async function refresh() {
    try {
      const answer = await fetch(region.dataset.refreshUrl, {
        credentials: "same-origin", headers: { "Accept": "text/html" },
      });
      if (answer.redirected || !answer.ok) return;
      region.innerHTML = await answer.text();
      localTimes(region);
      if (status) status.textContent = "Updated " + new Date().toLocaleTimeString();
    } catch (_) {
      if (status) status.textContent = "Could not refresh; retrying.";
    }
  }
  setInterval(refresh, seconds * 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  // The link's token first: nothing that fails below may leave it in the address bar and the history.
  const url = new URL(window.location.href);
  if (url.searchParams.has("token")) {
    url.searchParams.delete("token");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  localTimes(document);
  for (const region of document.querySelectorAll("[data-refresh-url]")) refreshing(region);
});
