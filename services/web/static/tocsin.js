// Tocsin's only script of its own (no inline script anywhere, for a strict CSP):
// the theme toggle, collapsible domains, the title/favicon that count critical tasks, the
// focus and opened sections kept across live refreshes, and the reasons of htmx requests
// that failed.
(function () {
  "use strict";
  var root = document.documentElement;
  var THEME = "tocsin-theme";
  var FOLDED = "tocsin-folded";
  var SEVERITY = { o: "ok", w: "warning", c: "critical", u: "unknown", p: "pending" };

  function stored(key) {
    try { return window.localStorage.getItem(key); } catch (e) { return null; }
  }
  function store(key, value) {
    try { window.localStorage.setItem(key, value); } catch (e) { /* private mode */ }
  }

  // Before the first paint: the theme chosen earlier, otherwise the system's.
  var chosen = stored(THEME);
  if (chosen === "light" || chosen === "dark") root.setAttribute("data-theme", chosen);

  function effectiveTheme() {
    var t = root.getAttribute("data-theme");
    if (t) return t;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function folded() {
    try { return JSON.parse(stored(FOLDED) || "[]"); } catch (e) { return []; }
  }

  // Domains folded by the operator stay folded across live refreshes and reloads.
  function applyFolds(scope) {
    var names = folded();
    scope.querySelectorAll("tbody.domain-group").forEach(function (group) {
      var fold = names.indexOf(group.getAttribute("data-domain")) >= 0;
      group.classList.toggle("folded", fold);
      var button = group.querySelector("button.fold");
      if (button) button.setAttribute("aria-expanded", fold ? "false" : "true");
    });
  }

  // The page title and favicon count critical tasks; the live block carries the count.
  function applyCount(scope) {
    var live = scope.querySelector("[data-critical]");
    if (!live) return;
    var n = parseInt(live.getAttribute("data-critical"), 10) || 0;
    var base = document.title.replace(/^\(\d+\) /, "");
    document.title = n > 0 ? "(" + n + ") " + base : base;
    var icon = document.getElementById("favicon");
    if (!icon) return;
    var href = icon.getAttribute("data-href");  // with the site's root path
    icon.setAttribute("href", n > 0 ? href + "?critical=" + Math.min(n, 99) : href);
  }

  function refresh(scope) {
    applyFolds(scope);
    applyCount(scope);
  }

  // An htmx request answered 4xx/5xx (swapped as an error: responseHandling in base.html)
  // shows the server's reason: in the request's target when that is a result area
  // (data-errors="here", as below "Check now"), else in the page's alert region, never in
  // place of the page's content (a live refresh that failed leaves the page as it was).
  function showErrors(body) {
    var region = document.getElementById("htmx-error");
    body.addEventListener("htmx:beforeSwap", function (ev) {
      if (!ev.detail.isError) return;
      ev.detail.swapOverride = "innerHTML";
      var target = ev.detail.target;
      if (target && target.getAttribute("data-errors") === "here") return;
      if (!region) { ev.detail.shouldSwap = false; return; }
      ev.detail.target = region;
      region.errorOf = ev.detail.elt;
    });
    // No answer at all (the server or the network is down).
    body.addEventListener("htmx:sendError", function (ev) {
      if (!region) return;
      region.innerHTML = "";
      var p = document.createElement("p");
      p.className = "error http-error";
      p.setAttribute("role", "alert");
      p.textContent = "The server could not be reached; retry in a moment.";
      region.appendChild(p);
      region.errorOf = ev.detail.elt;
    });
    // The next answer of the same element that succeeds clears its error.
    body.addEventListener("htmx:afterRequest", function (ev) {
      if (region && ev.detail.successful && region.errorOf === ev.detail.elt) {
        region.innerHTML = "";
        region.errorOf = null;
      }
    });
  }

  // What names an element across a re-render: its id, else its tag and link/name, and
  // which of the elements so named it is (a task's two links differ by href).
  function nameOf(el) {
    return el.tagName + " " + (el.getAttribute("href") || el.getAttribute("name") ||
      el.getAttribute("data-domain") || "");
  }
  function sameNamed(scope, name) {
    return Array.prototype.filter.call(scope.querySelectorAll("*"), function (e) {
      return nameOf(e) === name;
    });
  }
  // An opened section is named by its closest ancestor with an id and its rank there.
  function detailsKey(d, scope) {
    var owner = d.parentElement.closest("[id]");
    if (!owner || !scope.contains(owner)) owner = scope;
    return [owner === scope ? "" : owner.id,
      Array.prototype.indexOf.call(owner.querySelectorAll("details"), d)];
  }

  // A live refresh replaces the whole live block: the keyboard focus and the sections the
  // operator opened would go with it (focus back on <body>, every <details> closed). They
  // are noted before the swap and put back on their counterparts after it.
  function keepState(body) {
    var kept = null;
    body.addEventListener("htmx:beforeSwap", function (ev) {
      kept = null;
      var target = ev.detail.target;
      if (!ev.detail.shouldSwap || ev.detail.isError || !target || !target.id) return;
      var focused = document.activeElement;
      var state = { id: target.id, focus: null, open: [] };
      if (focused && focused !== target && target.contains(focused)) {
        state.focus = focused.id ? { id: focused.id } : {
          name: nameOf(focused), rank: sameNamed(target, nameOf(focused)).indexOf(focused)
        };
      }
      target.querySelectorAll("details[open]").forEach(function (d) {
        state.open.push(detailsKey(d, target));
      });
      kept = state;
    });
    body.addEventListener("htmx:afterSwap", function () {
      var state = kept;
      kept = null;
      var scope = state && document.getElementById(state.id);
      if (!scope) return;
      state.open.forEach(function (key) {
        var owner = key[0] ? document.getElementById(key[0]) : scope;
        var d = owner && scope.contains(owner) && owner.querySelectorAll("details")[key[1]];
        if (d) d.open = true;
      });
      var active = document.activeElement;
      if (!state.focus || (active && active !== document.body && document.contains(active))) return;
      var el = state.focus.id ? document.getElementById(state.focus.id)
        : sameNamed(scope, state.focus.name)[state.focus.rank];
      if (el && scope.contains(el)) el.focus({ preventScroll: true });
    });
  }

  // A live refresh asks for the page as the address bar shows it now (a filter typed since
  // the page was rendered changed it). An answer whose target was replaced meanwhile (the
  // filter's, when a refresh was swapped while it was on its way) goes to the target's
  // successor, and a refresh's answer to an address the page has left since is dropped:
  // the list always matches the filter shown, whichever answer comes first.
  function here() { return window.location.pathname + window.location.search; }
  function followAddress(body) {
    // Only the live block's own refresh (its hx-get): a request another script sends to it
    // (htmx.ajax) keeps its address. The request's config is the swap's requestConfig.
    body.addEventListener("htmx:configRequest", function (ev) {
      var elt = ev.detail.elt;
      if (elt.id === "live" && ev.detail.verb === "get" &&
          ev.detail.path === elt.getAttribute("hx-get")) {
        ev.detail.path = here();
        ev.detail.liveRefresh = true;
      }
    });
    body.addEventListener("htmx:beforeSwap", function (ev) {
      var target = ev.detail.target;
      if (target && target.id && !document.contains(target)) {
        ev.detail.target = target = document.getElementById(target.id);
        if (!target) { ev.detail.shouldSwap = false; return; }
      }
      var config = ev.detail.requestConfig;
      if (config && config.liveRefresh && config.path !== here()) {
        ev.detail.shouldSwap = false;
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var toggle = document.getElementById("theme-toggle");
    if (toggle) {
      toggle.setAttribute("aria-pressed", effectiveTheme() === "dark" ? "true" : "false");
      toggle.addEventListener("click", function () {
        var next = effectiveTheme() === "dark" ? "light" : "dark";
        root.setAttribute("data-theme", next);
        store(THEME, next);
        toggle.setAttribute("aria-pressed", next === "dark" ? "true" : "false");
      });
    }
    document.addEventListener("click", function (ev) {
      var button = ev.target.closest && ev.target.closest("button.fold");
      if (!button) return;
      var name = button.getAttribute("data-domain");
      var names = folded().filter(function (d) { return d !== name; });
      if (button.getAttribute("aria-expanded") === "true") names.push(name);
      store(FOLDED, JSON.stringify(names));
      applyFolds(document);
    });
    // A heartbeat's hover text, spelled out from its strip's data when the pointer is on it.
    document.addEventListener("mouseover", function (ev) {
      var cell = ev.target;
      if (cell.tagName !== "I" || cell.title || !cell.parentNode.hasAttribute("data-beats")) return;
      var strip = cell.parentNode;
      var index = Array.prototype.indexOf.call(strip.children, cell);
      var beat = (strip.getAttribute("data-beats").split(" ")[index] || "").split(",");
      var at = new Date((parseInt(strip.getAttribute("data-t0"), 10) + parseInt(beat[0], 10)) * 1000);
      var status = { f: "failure", e: "error" }[beat[3]] || "success";
      var text = at.toISOString().replace("T", " ").slice(0, 19) + " UTC · " +
        (SEVERITY[cell.className] || "") + " (" + status + (beat[2] ? " " + beat[2] : "") + ")";
      if (beat[1]) text += " · " + beat[1] + " ms";
      cell.title = text;
    });
    refresh(document);
    document.body.addEventListener("htmx:afterSwap", function () { refresh(document); });
    followAddress(document.body);
    showErrors(document.body);
    keepState(document.body);
  });
})();
