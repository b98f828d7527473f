// Sorts a table by the column whose heading is clicked (again: the other way). A cell's
// data-v is its number; without one the cell's text is compared. No framework, no network.
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.querySelectorAll("thead th");
  heads.forEach(function (th, column) {
    th.tabIndex = 0;
    var sort = function () {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var key = function (row) {
        var cell = row.cells[column];
        if (!cell) return "";
        var v = cell.getAttribute("data-v");
        return v === null ? cell.textContent.trim() : (v === "" ? NaN : parseFloat(v));
      };
      rows.sort(function (a, b) {
        var x = key(a), y = key(b), order;
        if (typeof x === "number" && typeof y === "number") {
          // Not measured (NaN) goes last either way.
          if (isNaN(x) || isNaN(y)) return isNaN(x) - isNaN(y);
          order = x - y;
        } else {
          order = String(x).localeCompare(String(y), undefined, { numeric: true });
        }
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    };
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
  });
});
