/* stacktrail web UI: small enhancements; every page works without them. */
(function () {
  "use strict";

  /* Filter the rows of a table by a search field: <input data-filter="table-id">. */
  function setupFilter(input) {
    var table = document.getElementById(input.getAttribute("data-filter"));
    if (!table) { return; }
    var rows = Array.prototype.slice.call(table.querySelectorAll("tbody tr"));
    var empty = document.querySelector('[data-filter-empty="' + table.id + '"]');
    var count = document.getElementById(input.getAttribute("aria-describedby"));
    var total = count ? count.textContent : "";
    function apply() {
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      var shown = 0;
      rows.forEach(function (row) {
        var name = row.getAttribute("data-name") || "";
        var match = words.every(function (w) { return name.indexOf(w) !== -1; });
        row.hidden = !match;
        if (match) { shown += 1; }
      });
      if (empty) { empty.hidden = shown !== 0; }
      if (count) {
        count.textContent = words.length ? shown + " of " + rows.length + " event types shown." : total;
      }
    }
    input.addEventListener("input", apply);
    /* Enter in the filter field must not submit the surrounding form. */
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); }
    });
    apply();
  }

  /* Ask before destructive forms: <form data-confirm="question">. */
  function setupConfirm(form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  }

  /* Prevent double submission while a form is being saved. */
  function setupBusy(form) {
    form.addEventListener("submit", function (event) {
      if (event.defaultPrevented) { return; }
      var buttons = form.querySelectorAll("button[type=submit]");
      window.setTimeout(function () {
        buttons.forEach(function (b) { b.disabled = true; b.setAttribute("aria-busy", "true"); });
      }, 0);
    });
  }

  /* Move focus to the first field with an error, so keyboard users land on it. */
  function focusFirstError() {
    var invalid = document.querySelector("[aria-invalid=true]");
    if (!invalid) { return; }
    var details = invalid.closest("details");
    if (details) { details.open = true; }
    if (invalid.tagName === "FIELDSET") { invalid = invalid.querySelector("input, select, textarea") || invalid; }
    if (invalid.focus) { invalid.focus(); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("input[data-filter]").forEach(setupFilter);
    document.querySelectorAll("form[data-confirm]").forEach(setupConfirm);
    document.querySelectorAll("form[method=post]").forEach(setupBusy);
    focusFirstError();
  });
})();

// A running job's page (data-poll="ms") reloads itself until the job is over.
(function () {
  var poll = document.querySelector("[data-poll]");
  if (poll) {
    window.setTimeout(function () { window.location.reload(); }, Number(poll.dataset.poll) || 2000);
  }
})();
