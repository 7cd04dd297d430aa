// Behaviour shared by every page. No inline script anywhere: the Content-Security-Policy forbids it.
"use strict";

document.addEventListener("htmx:responseError", (event) => {
  // An htmx request that fails shows the server's message where the swap would have gone,
  // instead of failing silently (htmx does not swap 4xx/5xx bodies by default).
  const target = event.detail.target;
  const xhr = event.detail.xhr;
  if (target && xhr && xhr.responseText && xhr.getResponseHeader("content-type")?.startsWith("text/html")) {
    target.innerHTML = xhr.responseText;
  }
});

document.addEventListener("htmx:sendError", (event) => {
  const target = event.detail.target;
  if (target) {
    target.setAttribute("data-offline", "true");
  }
});

// A button that fills a field: a product offered for a new order's line, a lot in stock on a scan screen.
// The field takes the button's value as if it had been typed (a change the field's own lookup answers),
// and the focus moves on to the field named by data-next, if any.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-fill]");
  const field = button && document.getElementById(button.dataset.fill);
  if (!field) { return; }
  field.value = button.dataset.value || "";
  field.dispatchEvent(new Event("change", { bubbles: true }));
  const next = button.dataset.next && document.getElementById(button.dataset.next);
  if (next) { next.focus(); }
});

// Live boards. The stream's state shows on the board ("Live" / "Reconnecting…"); while the stream is cut
// (a proxy that blocks server-sent events, a network drop), the panels are refreshed by polling instead.
// A stream that reopens redraws every panel itself (the server sends them all first).
function watchBoard(board) {
  let open = false;
  let downSince = Date.now();
  const show = () => {
    // A stream closing to be reopened (every few minutes, by design) is not worth a warning: wait 3 s.
    board.dataset.live = open ? "on" : (Date.now() - downSince > 3000 ? "off" : board.dataset.live || "");
  };
  board.addEventListener("htmx:sseOpen", () => { open = true; show(); });
  const lost = () => {
    if (open) { downSince = Date.now(); }
    open = false;
    window.setTimeout(show, 3100);
  };
  board.addEventListener("htmx:sseError", lost);
  board.addEventListener("htmx:sseClose", lost);
  window.setTimeout(show, 3100);
  const every = Number(board.dataset.pollSeconds || "30") * 1000;
  window.setInterval(() => {
    const panels = board.querySelector("#board-panels");
    if (!open && panels && document.visibilityState === "visible") {
      htmx.ajax("GET", board.dataset.pollUrl, { target: panels, swap: "outerHTML" });
    }
  }, every);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".board[data-poll-url]").forEach(watchBoard);
  // A wall screen rotating between sites moves on to the next one after its time.
  const rotation = document.querySelector("[data-rotate-to]");
  if (rotation) {
    window.setTimeout(() => window.location.assign(rotation.dataset.rotateTo),
      Number(rotation.dataset.rotateAfter) * 1000);
  }
});
