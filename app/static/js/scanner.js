// The scanner input layer of the scan flows (templates/operations). No dependencies, no inline code:
// the Content-Security-Policy allows scripts from this origin only, and htmx runs without eval.
//
// - The scan field keeps the focus, with inputmode="none" so no on-screen keyboard pops up, unless the
//   person tapped another input (a quantity, a lot): that focus is never taken away.
// - A keyboard-wedge scanner "types" the code and ends it with Enter or Tab: both submit the raw value,
//   which the server decodes (GS1 element strings, AZERTY-mangled digits).
// - "Manual entry" switches the field to inputmode="text" for typing a code on the screen keyboard.
// - The server answers with an HX-Trigger-After-Settle header, scan-ok or scan-error: a beep or a buzz
//   (Web Audio, no sound files) and a green or red flash of the card.
// - "Camera" (only where BarcodeDetector exists) reads a code from a video preview into the scan field.
"use strict";

(() => {
  const FIELD = "[data-scan-input]";
  const FORM = "[data-scan-form]";
  const MANUAL = "scan-manual-entry"; // sessionStorage: the mode survives each swap of the form
  const FLASH_MS = 900;
  // A wedge scanner types a character every few milliseconds; people, even fast, take 80 ms or more.
  // The gap allowed inside a scan sits between the two: a busy tablet can delay one scanner keystroke by
  // tens of milliseconds, and a gap read as "a person typing" would cut the scan's beginning off.
  const BURST_GAP_MS = 60;
  const BURST_MIN = 4;
  const CAMERA_FORMATS = ["ean_13", "ean_8", "upc_a", "upc_e", "code_128", "code_39", "itf", "data_matrix", "qr_code"];

  // From the moment a request leaves until htmx has settled the form that answers it, a finished scan
  // waits here: the old form is about to go, and the new one is not wired by htmx before it settles.
  let busy = false;
  let queued = [];
  let carried = ""; // a scan half-typed when the form was swapped
  let lastSent = "";
  let audio = null;

  const field = () => document.querySelector(FIELD);
  const manual = () => sessionStorage.getItem(MANUAL) === "1";

  function isTextEntry(element) {
    if (!element || !element.matches) return false;
    if (element.matches("textarea, select")) return true;
    return element.matches("input") && !/^(hidden|checkbox|radio|button|submit|reset)$/.test(element.type);
  }

  // Focus the scan field, unless the person is typing in another field that is still on the page.
  function focusScan(force) {
    const input = field();
    if (!input) return;
    const active = document.activeElement;
    if (!force && active && active !== input && active.isConnected && isTextEntry(active)) return;
    if (active !== input) input.focus({ preventScroll: true });
  }

  function applyMode() {
    const input = field();
    const on = manual();
    if (input) input.setAttribute("inputmode", on ? "text" : "none");
    document.querySelectorAll("[data-scan-manual]").forEach((button) => {
      button.setAttribute("aria-pressed", on ? "true" : "false");
    });
  }

  function cameraAvailable() {
    return "BarcodeDetector" in window && !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
  }

  // What the server drew hidden because it needs this script (+1 buttons, lot choices, camera).
  function enhance() {
    document.querySelectorAll("[data-needs-js]").forEach((element) => { element.hidden = false; });
    if (cameraAvailable()) document.querySelectorAll("[data-scan-camera]").forEach((b) => { b.hidden = false; });
    applyMode();
  }

  // ------------------------------------------------------------ submitting a scan

  function submitScan(input) {
    const value = input.value;
    if (!value.trim()) return;
    if (busy) {
      queued.push(value);
      input.value = "";
      return;
    }
    input.form.requestSubmit(); // no submitter: the server reads the scan, not a button
  }

  function onScanKey(event) {
    const input = event.target;
    if (event.key === "Enter" || (event.key === "Tab" && !event.shiftKey && input.value.trim())) {
      event.preventDefault(); // Tab ends a scan: it must submit, not move the focus
      submitScan(input);
    } else if (event.ctrlKey && (event.key === "]" || event.code === "BracketRight")) {
      // Some scanners send the GS1 separator (FNC1 → GS, 0x1D) as Ctrl+]: keep it in the value.
      event.preventDefault();
      input.setRangeText("\u001d", input.selectionStart, input.selectionEnd, "end");
    }
  }

  // A scan that lands in another field (the quantity the person just tapped) is still a scan: keystrokes
  // that came in a burst and end with Enter or Tab are taken out of that field and sent as a scan.
  let burst = { target: null, keys: "", last: 0 };

  function onOtherFieldKey(event) {
    const target = event.target;
    const now = performance.now();
    const fast = burst.target === target && now - burst.last < BURST_GAP_MS;
    if (event.key === "Enter" || event.key === "Tab") {
      const keys = burst.keys;
      burst = { target: null, keys: "", last: 0 };
      const input = field();
      if (!fast || keys.length < BURST_MIN || !input || !target.value.endsWith(keys)) return;
      event.preventDefault();
      target.value = target.value.slice(0, -keys.length);
      input.value = keys;
      input.focus({ preventScroll: true });
      submitScan(input);
      return;
    }
    if (event.key.length !== 1 || event.ctrlKey || event.metaKey || event.altKey) {
      burst = { target: null, keys: "", last: 0 };
      return;
    }
    burst = fast ? { target, keys: burst.keys + event.key, last: now } : { target, keys: event.key, last: now };
  }

  // A scan typed while nothing has the focus would be lost: send it to the scan field.
  function onDocumentKey(event) {
    const input = field();
    if (!input || event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target === input || isTextEntry(target)) return;
    if (event.key.length !== 1) return;
    if (event.key === " " && target.closest && target.closest("button, a, label, summary, [role=button]")) return;
    event.preventDefault();
    input.focus({ preventScroll: true });
    input.setRangeText(event.key, input.selectionStart, input.selectionEnd, "end");
  }

  // ------------------------------------------------------------ feedback

  function unlockAudio() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return null;
    if (!audio) audio = new Context();
    if (audio.state === "suspended") audio.resume();
    return audio;
  }

  function tones(frequencies, seconds, type) {
    const context = unlockAudio();
    if (!context) return;
    let at = context.currentTime + 0.01;
    for (const frequency of frequencies) {
      const oscillator = context.createOscillator();
      const gain = context.createGain();
      oscillator.type = type;
      oscillator.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.25, at + 0.01);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + seconds);
      oscillator.connect(gain).connect(context.destination);
      oscillator.start(at);
      oscillator.stop(at + seconds + 0.02);
      at += seconds + 0.05;
    }
  }

  function flash(kind) {
    document.body.dataset.scanFeedback = kind; // the last feedback given, for people and tests alike
    const card = document.querySelector("[data-scan-card]");
    if (!card) return;
    card.classList.remove("flash-ok", "flash-error");
    void card.offsetWidth; // restart the transition when two scans come back to back
    card.classList.add(`flash-${kind}`);
    window.setTimeout(() => card.classList.remove(`flash-${kind}`), FLASH_MS);
  }

  function feedback(kind, detail) {
    if (kind === "ok") {
      tones(detail && detail.recorded ? [880, 1320] : [1320], 0.08, "sine");
    } else {
      tones([196, 196], 0.16, "square");
    }
    flash(kind);
  }

  function offline(show) {
    const alert = document.querySelector("[data-scan-offline]");
    if (alert) alert.hidden = !show;
  }

  // ------------------------------------------------------------ camera

  let stream = null;
  let scanning = 0;

  async function openCamera() {
    const panel = document.querySelector("[data-scan-camera-panel]");
    const video = panel && panel.querySelector("[data-scan-video]");
    if (!video || !cameraAvailable() || stream) return;
    const supported = await window.BarcodeDetector.getSupportedFormats();
    const formats = CAMERA_FORMATS.filter((format) => supported.includes(format));
    const detector = new window.BarcodeDetector(formats.length ? { formats } : undefined);
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    } catch (error) {
      feedback("error");
      return;
    }
    video.srcObject = stream;
    panel.hidden = false;
    await video.play();
    let previous = "";
    let previousAt = 0;
    scanning = window.setInterval(async () => {
      if (video.readyState < 2) return;
      let codes = [];
      try {
        codes = await detector.detect(video);
      } catch (error) {
        return;
      }
      const value = codes.length ? codes[0].rawValue : "";
      const now = Date.now();
      if (!value || (value === previous && now - previousAt < 2500)) return; // the same label, still in view
      previous = value;
      previousAt = now;
      const input = field();
      if (!input) return;
      input.value = value;
      submitScan(input);
    }, 250);
  }

  function closeCamera() {
    window.clearInterval(scanning);
    scanning = 0;
    if (stream) stream.getTracks().forEach((track) => track.stop());
    stream = null;
    const panel = document.querySelector("[data-scan-camera-panel]");
    if (panel) {
      panel.hidden = true;
      const video = panel.querySelector("[data-scan-video]");
      if (video) video.srcObject = null;
    }
    focusScan(true);
  }

  // ------------------------------------------------------------ buttons of the form

  function stepQuantity(button) {
    const input = document.getElementById("f-quantity");
    if (!input) return;
    const step = button.dataset.qtyStep === "pack" ? Number(input.dataset.pack || 1) : Number(button.dataset.qtyStep);
    const current = /^\d+$/.test(input.value.trim()) ? Number(input.value.trim()) : 0;
    input.value = String(Math.max(0, current + step));
  }

  function onClick(event) {
    const button = event.target.closest && event.target.closest("button, input[type=checkbox], input[type=radio], label");
    if (!button) return;
    if (button.matches("[data-scan-manual]")) {
      sessionStorage.setItem(MANUAL, manual() ? "0" : "1");
      applyMode();
      focusScan(true);
      return;
    }
    if (button.matches("[data-scan-camera]")) {
      if (stream) closeCamera(); else openCamera();
      return;
    }
    if (button.matches("[data-scan-camera-close]")) {
      closeCamera();
      return;
    }
    if (button.matches("[data-qty-step]")) stepQuantity(button);
    // A [data-fill] button (a lot in stock here) fills its field in app.js.
    // A tap on anything but a submit button or a text field hands the focus back to the scanner.
    if (!(button.matches("button") && button.type === "submit") && button.closest(FORM)) {
      window.setTimeout(() => focusScan(true), 0);
    }
  }

  // ------------------------------------------------------------ htmx life cycle

  // Whether an htmx event concerns a scan form: request events come from the form, swap events from
  // the target (#flow, around the form), so look at the element that made the request.
  function fromFlow(event) {
    const detail = event.detail || {};
    const element = (detail.requestConfig && detail.requestConfig.elt) || detail.elt;
    return !!(element && element.closest && (element.closest(FORM) || element.querySelector(FORM)));
  }

  document.addEventListener("htmx:configRequest", (event) => {
    if (!fromFlow(event)) return;
    const input = field();
    if (!input) return;
    busy = true;
    lastSent = input.value; // already in the request: clear the field for the next scan right away
    input.value = "";
  });

  document.addEventListener("htmx:beforeSwap", (event) => {
    if (!fromFlow(event)) return;
    const xhr = event.detail.xhr;
    const trigger = xhr.getResponseHeader("HX-Trigger-After-Settle") || "";
    if (xhr.status >= 400 && trigger.includes("scan-error")) {
      // A refused scan or step is a form to correct, drawn by the server: show it like any answer.
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
    const input = field();
    carried = input ? input.value : "";
  });

  // Same task as the swap, so no keystroke comes in between: the new field goes on where the old one was.
  document.addEventListener("htmx:afterSwap", (event) => {
    const input = field();
    if (!input || !event.target.contains(input)) return;
    if (carried) input.value = carried + input.value;
    carried = "";
  });

  document.addEventListener("htmx:afterSettle", (event) => {
    const input = field();
    if (!input || !event.target.contains(input)) return; // not the settle of the recent list
    busy = false;
    enhance();
    focusScan(false);
    if (queued.length) {
      input.value = queued.shift();
      submitScan(input);
    }
  });

  document.addEventListener("htmx:afterRequest", (event) => {
    if (!fromFlow(event)) return;
    if (event.detail.xhr && event.detail.xhr.status) offline(false); // the server answered
    if (event.detail.failed || !event.detail.xhr || !event.detail.xhr.status) busy = false; // nothing to settle
  });

  function onNetworkFailure(event) {
    if (!fromFlow(event)) return;
    const input = field();
    if (input && !input.value && lastSent) input.value = lastSent; // the same scan, ready to send again
    offline(true);
    feedback("error");
    if (input) {
      focusScan(false);
      input.select();
    }
  }
  document.addEventListener("htmx:sendError", onNetworkFailure);
  document.addEventListener("htmx:timeout", onNetworkFailure);

  document.addEventListener("scan-ok", (event) => feedback("ok", event.detail));
  document.addEventListener("scan-error", (event) => feedback("error", event.detail));

  // ------------------------------------------------------------ wiring

  function start() {
    if (!field()) return;
    enhance();
    focusScan(false);
    document.addEventListener("keydown", (event) => {
      const target = event.target;
      if (target && target.matches && target.matches(FIELD)) onScanKey(event);
      else if (isTextEntry(target) && target.closest(FORM)) onOtherFieldKey(event);
      else onDocumentKey(event);
    });
    document.addEventListener("click", onClick);
    // The first touch or key press unlocks sound: browsers refuse audio before a gesture.
    document.addEventListener("pointerdown", unlockAudio, { once: true });
    document.addEventListener("keydown", unlockAudio, { once: true });
    // Tapping an empty part of the screen drops the focus: give it back so the next scan lands.
    document.addEventListener("focusout", (event) => {
      if (!event.target.matches || !event.target.matches(FIELD)) return;
      window.setTimeout(() => {
        if (document.activeElement === document.body || document.activeElement === null) focusScan(false);
      }, 0);
    });
    window.addEventListener("pagehide", closeCamera);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
