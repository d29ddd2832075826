// Filters for the tables of a smartsync report: every row stays in the page, filtering only hides.
// The page is complete without this script; the location hash (#year=Year%207&kind=Classes)
// presets the filters so that a link can point at one year group.
(function () {
  "use strict";
  var form = document.querySelector("form.filters");
  if (!form) { return; }
  var controls = Array.prototype.slice.call(form.querySelectorAll("[data-filter]"));
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-row]"));
  var shown = document.getElementById("shown");

  function apply() {
    var wanted = {};
    controls.forEach(function (c) { wanted[c.getAttribute("data-filter")] = c.value.trim().toLowerCase(); });
    var count = 0;
    rows.forEach(function (row) {
      var visible = Object.keys(wanted).every(function (name) {
        var value = wanted[name];
        if (!value) { return true; }
        var cell = (row.getAttribute("data-" + name) || "").toLowerCase();
        return name === "person" ? cell.indexOf(value) !== -1 : cell === value;
      });
      row.hidden = !visible;
      if (visible) { count += 1; }
    });
    if (shown) { shown.textContent = "Showing " + count + " of " + rows.length + "."; }
  }

  function fromHash() {
    var hash = window.location.hash.replace(/^#/, "");
    if (!hash) { return; }
    hash.split("&").forEach(function (pair) {
      var parts = pair.split("=");
      var name = decodeURIComponent(parts[0] || "");
      var value = decodeURIComponent((parts[1] || "").replace(/\+/g, " "));
      controls.forEach(function (c) {
        if (c.getAttribute("data-filter") === name) { c.value = value; }
      });
    });
  }

  form.hidden = false;
  controls.forEach(function (c) { c.addEventListener("input", apply); c.addEventListener("change", apply); });
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  fromHash();
  apply();
}());
