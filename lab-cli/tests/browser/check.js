// Put at the top of a copy of an iolab page by tests/browser.rs: it notes every error and
// request, and once the page has loaded it measures it, sorts a table by a real click on a
// heading, and writes what it found as JSON into <pre id="iolab-check">, which
// `chromium --dump-dom` then prints.
(function () {
  var errors = [];
  window.addEventListener("error", function (e) {
    var what = e.message || (e.target && (e.target.src || e.target.href || e.target.tagName)) || "unknown";
    errors.push("error: " + what);
  }, true);
  var consoleError = console.error;
  console.error = function () {
    errors.push("console.error: " + Array.prototype.join.call(arguments, " "));
    consoleError.apply(console, arguments);
  };
  var size = function (el) {
    var r = el.getBoundingClientRect();
    return [Math.round(r.width), Math.round(r.height)];
  };
  // The values of column `c` of `table`, as the sort script reads them.
  var column = function (table, c) {
    return Array.prototype.map.call(table.tBodies[0].rows, function (row) {
      var v = row.cells[c].getAttribute("data-v");
      return v === null ? row.cells[c].textContent.trim() : (v === "" ? null : parseFloat(v));
    });
  };
  var ordered = function (values, ascending) {
    var known = values.filter(function (v) { return v !== null; });
    for (var i = 1; i < known.length; i++) {
      var a = known[i - 1], b = known[i];
      var order = typeof a === "number" ? a - b : String(a).localeCompare(String(b), undefined, { numeric: true });
      if (ascending ? order > 0 : order < 0) return false;
    }
    return true;
  };
  // Clicks the heading of the first column (of the first sortable table) whose values differ,
  // numeric ones first, and says whether the rows came out ascending, then descending.
  var sortCheck = function () {
    var table = document.querySelector("table.sortable");
    if (!table) return { sorted: false, why: "no sortable table" };
    var heads = table.querySelectorAll("thead th");
    var pick = -1;
    for (var pass = 0; pass < 2 && pick < 0; pass++) {
      for (var c = 0; c < heads.length; c++) {
        var values = column(table, c);
        var numeric = values.some(function (v) { return typeof v === "number"; });
        var distinct = values.filter(function (v, i) { return values.indexOf(v) === i; }).length;
        if (distinct > 1 && (numeric || pass === 1)) { pick = c; break; }
      }
    }
    if (pick < 0) return { sorted: false, why: "no column with differing values" };
    var before = column(table, pick);
    heads[pick].dispatchEvent(new MouseEvent("click", { bubbles: true }));
    var up = column(table, pick);
    heads[pick].dispatchEvent(new MouseEvent("click", { bubbles: true }));
    var down = column(table, pick);
    return {
      sorted: ordered(up, true) && ordered(down, false) && up.length === before.length,
      column: heads[pick].textContent, before: before, ascending: up, descending: down,
    };
  };
  window.addEventListener("load", function () {
    var found = { errors: errors };
    found.requests = performance.getEntriesByType("resource").map(function (e) { return e.name; });
    found.tables = Array.prototype.map.call(document.querySelectorAll("table"), size);
    found.charts = Array.prototype.map.call(document.querySelectorAll("svg.chart"), size);
    found.injected = document.querySelectorAll("img, iframe, object, embed, video, audio").length;
    found.pwned = window.__pwned === 1;
    found.scroll_width = document.documentElement.scrollWidth;
    found.inner_width = window.innerWidth;
    found.height = document.documentElement.scrollHeight;
    found.text = document.body.innerText;
    try {
      found.data_command = JSON.parse(document.getElementById("iolab-data").textContent).command || null;
    } catch (e) {
      found.data_command = "unparsable: " + e;
    }
    found.sort = sortCheck();
    var pre = document.createElement("pre");
    pre.id = "iolab-check";
    pre.textContent = JSON.stringify(found);
    document.body.appendChild(pre);
  });
})();
