// Printable documents (templates/documents): a Print button, shown only where this script runs.
"use strict";

(() => {
  function start() {
    document.querySelectorAll("[data-print]").forEach((button) => {
      button.hidden = false;
      button.addEventListener("click", () => window.print());
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
