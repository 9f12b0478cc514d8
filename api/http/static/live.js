// Live progress on the reviewer's submission page: while the submission is queued or running,
// re-fetch the server-rendered progress + charts fragment and swap it in. Without JavaScript the
// page still shows the state as of loading it (reload to refresh).
(function () {
  "use strict";
  var INTERVAL_MS = 2000;
  var RUNNING = { received: 1, queued: 1, checking: 1, evaluating: 1 };

  function tick() {
    var box = document.getElementById("live");
    if (!box) return;
    var url = box.getAttribute("data-live-url");
    if (!url) return;
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (resp) {
        if (!resp.ok) throw new Error("HTTP " + resp.status);
        return resp.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("live");
        if (!fresh) return;
        var state = fresh.getAttribute("data-state");
        if (!RUNNING[state]) {
          // Finished: reload once so results, rule verdicts and actions all update together.
          window.location.reload();
          return;
        }
        box.replaceWith(document.importNode(fresh, true));
        window.setTimeout(tick, INTERVAL_MS);
      })
      .catch(function () {
        window.setTimeout(tick, INTERVAL_MS * 5); // server restarting or offline: back off
      });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { window.setTimeout(tick, INTERVAL_MS); });
  } else {
    window.setTimeout(tick, INTERVAL_MS);
  }
})();
