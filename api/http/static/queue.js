// Review queue: a "select all" box for the bulk form. Without JavaScript the box stays hidden and
// rows are ticked one by one; the bulk form works the same either way.
(function () {
  "use strict";
  function init() {
    var all = document.getElementById("select-all");
    if (!all) return;
    var picks = document.querySelectorAll("input.pick");
    all.hidden = false;
    all.addEventListener("change", function () {
      for (var i = 0; i < picks.length; i++) picks[i].checked = all.checked;
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
