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
