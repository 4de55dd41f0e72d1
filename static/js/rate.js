/* emorate rating page: keyboard input, drafts that survive a reload, active time, htmx glue.
 *
 * Contracts:
 * - The draft of an assignment (values + active seconds) lives in localStorage under
 *   "emorate:draft:<project>:<assignment>" from the first change until the server accepts the
 *   submit; drafts of other assignments of the project are dropped when a new stage appears.
 * - Active time counts only while the tab is visible and the rater interacted in the last 60 s.
 * - Each stage gets one client token (sent with every retry of its submit); the server is
 *   idempotent per assignment, so retries never store a second rating.
 */
(function () {
  "use strict";
  var IDLE_MS = 60000;
  var page = document.querySelector(".rate-page");
  var project = page ? page.getAttribute("data-project") || "" : "";
  var state = null; // {stage, form, key, active, lastInput, lastTick, token}

  function draftKey(id) { return "emorate:draft:" + project + ":" + id; }
  function sliders() { return state && state.form ? Array.prototype.slice.call(state.form.querySelectorAll("input[type=range]")) : []; }
  function anchors() {
    var out = {};
    document.querySelectorAll(".scale-legend .anchor").forEach(function (a) {
      var b = a.querySelector("b");
      if (b) out[b.textContent.trim()] = a.textContent.replace(b.textContent, "").trim();
    });
    return out;
  }

  function show(slider) {
    var row = slider.closest(".emo");
    var out = row && row.querySelector("output");
    var v = parseInt(slider.value, 10) || 0;
    if (out) out.textContent = String(v);
    if (row) row.classList.toggle("nz", v > 0);
    var a = anchors()[String(v)];
    slider.setAttribute("aria-valuetext", a ? v + ", " + a : String(v));
  }

  function summarize() {
    if (!state || !state.form) return;
    var box = state.form.querySelector(".nonzero-summary");
    if (!box) return;
    var parts = sliders().filter(function (s) { return parseInt(s.value, 10) > 0; })
      .map(function (s) { return "<span class=\"chip\">" + escapeHtml(s.getAttribute("aria-label")) + " <b>" + s.value + "</b></span>"; });
    box.innerHTML = parts.length ? parts.join(" ") : "<span class=\"muted\">Nothing marked yet — untouched emotions count as 0.</span>";
  }

  function escapeHtml(t) {
    return String(t).replace(/[&<>"]/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;" }[c]; });
  }

  function saveDraft() {
    if (!state || !state.key) return;
    var values = {};
    sliders().forEach(function (s) { values[s.getAttribute("data-emotion")] = parseInt(s.value, 10) || 0; });
    try {
      localStorage.setItem(state.key, JSON.stringify({ values: values, active: state.active, token: state.token }));
    } catch (e) { /* storage full or disabled: the page still works, only the draft is not kept */ }
  }

  function loadDraft() {
    try { return JSON.parse(localStorage.getItem(state.key) || "null"); } catch (e) { return null; }
  }

  function dropOtherDrafts(keep) {
    var prefix = "emorate:draft:" + project + ":";
    for (var i = localStorage.length - 1; i >= 0; i--) {
      var k = localStorage.key(i);
      if (k && k.indexOf(prefix) === 0 && k !== keep) localStorage.removeItem(k);
    }
  }

  function newToken() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return String(Date.now()) + Math.random().toString(16).slice(2);
  }

  function init() {
    var stage = document.querySelector(".rate-stage");
    if (!stage) { state = null; return; }
    // htmx binds hx-post on swapped-in content only in its settle step (~20 ms later); bind it now,
    // so a key pressed right after the swap submits through htmx, not as a full page POST.
    try { if (window.htmx) window.htmx.process(stage); } catch (e) { /* htmx binds it on settle anyway */ }
    var id = stage.getAttribute("data-assignment");
    state = { stage: stage, form: stage.querySelector("#rate-form"), key: id ? draftKey(id) : null, active: 0,
              lastInput: Date.now(), lastTick: performance.now(), token: newToken() };
    if (state.key) {
      dropOtherDrafts(state.key);
      var d = loadDraft();
      if (d) {
        state.active = d.active || 0;
        state.token = d.token || state.token;
        sliders().forEach(function (s) {
          var v = d.values && d.values[s.getAttribute("data-emotion")];
          if (typeof v === "number") s.value = String(v);
        });
      }
    }
    sliders().forEach(show);
    summarize();
    var next = stage.querySelector("[data-next-image]");
    if (next) { var img = new Image(); img.src = next.getAttribute("data-next-image"); }
    var first = sliders()[0] || (state.form && state.form.querySelector("button.yes"));
    if (first && (!document.activeElement || document.activeElement === document.body || !document.body.contains(document.activeElement))) {
      first.focus({ preventScroll: true });
    }
    stage.setAttribute("data-ready", "1");  // keyboard input is live (browser tests wait for this)
  }

  // Active time: sampled four times a second.
  function touch() { if (state) state.lastInput = Date.now(); }
  ["keydown", "pointerdown", "pointermove", "wheel", "input", "touchstart"].forEach(function (ev) {
    document.addEventListener(ev, touch, { passive: true, capture: true });
  });
  setInterval(function () {
    if (!state) return;
    var now = performance.now();
    if (document.visibilityState === "visible" && Date.now() - state.lastInput < IDLE_MS) {
      state.active += (now - state.lastTick) / 1000;
    }
    state.lastTick = now;
  }, 250);
  document.addEventListener("visibilitychange", function () { if (state) state.lastTick = performance.now(); });

  document.addEventListener("input", function (e) {
    if (e.target && e.target.matches && e.target.matches(".rate-form input[type=range]")) {
      show(e.target); summarize(); saveDraft();
    }
  });

  function focusSlider(i) {
    var all = sliders();
    if (!all.length) return;
    i = Math.max(0, Math.min(all.length - 1, i));
    all[i].focus();
    all[i].closest(".emo").scrollIntoView({ block: "nearest" });
  }
  function groupStart(dir) {
    var all = sliders();
    var cur = all.indexOf(document.activeElement);
    var groups = Array.prototype.slice.call(state.form.querySelectorAll("fieldset.group"));
    var g = cur < 0 ? -1 : groups.indexOf(all[cur].closest("fieldset.group"));
    var target = groups[Math.max(0, Math.min(groups.length - 1, g + dir))];
    if (target) { var s = target.querySelector("input[type=range]"); focusSlider(all.indexOf(s)); }
  }
  function typing(el) {
    return el && (el.tagName === "TEXTAREA" || el.tagName === "SELECT" || (el.tagName === "INPUT" && el.type !== "range"));
  }

  // Type-to-find (as in a file list): letters typed within a second of each other make a prefix;
  // the focus moves to the first emotion whose name (or one of its names, "Astonishment/Surprise")
  // starts with it, else the first whose descriptors have a word group starting with it.
  var find = { text: "", at: 0 };
  function names(slider) {
    return slider.getAttribute("aria-label").toLowerCase().split(/\s*(?:\/|&| and )\s*/);
  }
  function descriptors(slider) {
    var d = document.getElementById(slider.getAttribute("aria-describedby"));
    return d ? d.textContent.toLowerCase().split(/\s*,\s*/) : [];
  }
  function typeToFind(ch) {
    var now = Date.now();
    find.text = (now - find.at > 1000 ? "" : find.text) + ch.toLowerCase();
    find.at = now;
    var all = sliders(), text = find.text, i;
    var starts = function (w) { return w.indexOf(text) === 0; };
    var hit = -1;
    for (i = 0; i < all.length && hit < 0; i++) { if (names(all[i]).some(starts)) hit = i; }
    for (i = 0; i < all.length && hit < 0; i++) { if (descriptors(all[i]).some(starts)) hit = i; }
    var status = state.form.querySelector(".find-status");
    if (hit >= 0) {
      focusSlider(hit);
      if (status) status.textContent = "“" + text + "”: " + all[hit].getAttribute("aria-label");
    } else if (status) {
      status.textContent = "“" + text + "”: no emotion starts with this";
    }
  }

  function submitForm() {
    if (!state || !state.form) return;
    var btn = state.form.querySelector("button[type=submit]");
    if (btn && !btn.disabled) btn.click();
  }

  document.addEventListener("keydown", function (e) {
    var help = document.getElementById("rate-help");
    if (e.key === "?" && !typing(e.target)) {
      e.preventDefault();
      if (help) { if (help.open) help.close(); else help.showModal(); }
      return;
    }
    if (!state || !state.form || (help && help.open) || typing(e.target)) {
      return;
    }
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); submitForm(); return; }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var mode = state.stage.getAttribute("data-mode");
    if (mode === "binary") {
      var k = e.key.toLowerCase();
      if (k === "y" || k === "n") {
        e.preventDefault();
        var b = state.form.querySelector(k === "y" ? "button.yes" : "button.no");
        if (b && !b.disabled) b.click();
        return;
      }
    }
    // Skip and flag: Shift+S / Shift+F (letters alone find emotions); plain s / f on yes/no pages.
    var skipKey = e.key === "S" || (mode === "binary" && e.key === "s");
    var flagKey = e.key === "F" || (mode === "binary" && e.key === "f");
    if (skipKey && state.stage.querySelector("#skip-reason")) { e.preventDefault(); state.stage.querySelector("#skip-reason").focus(); return; }
    if (flagKey && state.stage.querySelector("#flag-reason")) { e.preventDefault(); state.stage.querySelector("#flag-reason").focus(); return; }
    if (mode === "binary") return;
    if (/^[a-z]$/.test(e.key)) { e.preventDefault(); typeToFind(e.key); return; }
    var all = sliders();
    var cur = all.indexOf(document.activeElement);
    var max = parseInt(state.stage.getAttribute("data-scale-max"), 10) || 7;
    if (/^[0-9]$/.test(e.key)) {
      var v = parseInt(e.key, 10);
      if (v > max) return;
      e.preventDefault();
      if (cur < 0) { focusSlider(0); cur = 0; }
      all[cur].value = String(v);
      show(all[cur]); summarize(); saveDraft();
      return;
    }
    if (e.key === "ArrowDown") { e.preventDefault(); focusSlider(cur + 1); return; }
    if (e.key === "ArrowUp") { e.preventDefault(); focusSlider(cur < 0 ? 0 : cur - 1); return; }
    if (e.key === "]" || e.key === "PageDown") { e.preventDefault(); groupStart(1); return; }
    if (e.key === "[" || e.key === "PageUp") { e.preventDefault(); groupStart(-1); return; }
    if ((e.key === "Backspace" || e.key === "Delete") && cur >= 0) {
      e.preventDefault(); all[cur].value = "0"; show(all[cur]); summarize(); saveDraft();
    }
  });

  document.addEventListener("click", function (e) {
    var t = e.target.closest && e.target.closest("[data-rate-help]");
    if (t) { var help = document.getElementById("rate-help"); if (help) help.showModal(); }
  });

  // The same token and the measured active time go with every (re)try of this stage's submit.
  document.addEventListener("submit", function (e) {
    if (!state || e.target !== state.form) return;
    var t = state.form.querySelector("input[name=client_token]");
    var a = state.form.querySelector("input[name=active_seconds]");
    if (t) t.value = state.token;
    if (a) a.value = state.active.toFixed(2);
    saveDraft();
  }, true);

  function message(html) {
    var box = document.getElementById("rate-message");
    if (box) box.innerHTML = html;
  }
  if (window.htmx) {
    // The rating form (hx-ext="emorate-json") sends its fields as one JSON object, which the
    // server parses in a fraction of the time of 43 urlencoded fields (views_rate._fields).
    htmx.defineExtension("emorate-json", {
      onEvent: function (name, evt) {
        if (name === "htmx:configRequest") evt.detail.headers["Content-Type"] = "application/json";
      },
      encodeParameters: function (xhr, parameters) {
        xhr.overrideMimeType("text/json");
        return JSON.stringify(Object.fromEntries(parameters));
      }
    });
    document.body.addEventListener("htmx:configRequest", function (e) {
      if (!state || e.detail.elt !== state.form) return;
      e.detail.parameters["client_token"] = state.token;
      e.detail.parameters["active_seconds"] = state.active.toFixed(2);
    });
    document.body.addEventListener("htmx:beforeSwap", function (e) {
      var status = e.detail.xhr.status;
      if (status >= 400 && status < 500) {
        // A refusal: show why above the stage, keep the stage (and the rater's values) as they are.
        e.detail.shouldSwap = false;
        message(e.detail.xhr.responseText);
      } else if (status >= 200 && status < 300) {
        message("");
      }
    });
    document.body.addEventListener("htmx:afterSwap", function (e) {
      if (e.detail.target && e.detail.target.id === "rate-stage" || (e.detail.elt && e.detail.elt.id === "rate-stage")) init();
    });
    document.body.addEventListener("htmx:afterSettle", function () {
      if (state && !document.body.contains(state.stage)) init();
    });
    document.body.addEventListener("htmx:sendError", function () {
      message("<div class=\"rate-error\"><strong>Not saved:</strong> the server could not be reached. " +
              "Your values are kept in this browser — press Submit again.</div>");
    });
    document.body.addEventListener("htmx:responseError", function (e) {
      if (e.detail.xhr.status >= 500) {
        message("<div class=\"rate-error\"><strong>Not saved:</strong> the server had a problem (" + e.detail.xhr.status +
                "). Your values are kept — press Submit again.</div>");
      }
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
