// The contestant upload form with a progress bar: sends the same form with XMLHttpRequest so the
// bytes sent can be shown, then follows the server's answer (the submission page, or the form
// again with the error). Without JavaScript the form posts normally, just without the bar.
(function () {
  "use strict";

  function swapMain(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var fresh = doc.getElementById("main");
    var main = document.getElementById("main");
    if (!fresh || !main) { document.body.textContent = "Upload failed; reload the page."; return; }
    main.replaceWith(document.importNode(fresh, true));
    if (doc.title) document.title = doc.title;
    init();
    var err = document.getElementById("upload-error");
    if (err) err.focus();
  }

  function init() {
    var form = document.getElementById("upload-form");
    if (!form || !window.XMLHttpRequest || !window.FormData) return;
    var err = document.getElementById("upload-error");
    if (err) err.focus();
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var data = new FormData();
      // Each form field as the browser would post it; a folder's files keep their path inside
      // the folder (what a plain form post sends as the file name), which FormData(form) drops.
      Array.prototype.forEach.call(form.elements, function (el) {
        if (!el.name || el.disabled) return;
        if (el.type === "file") {
          // An empty input is left out (the server reads an empty one the same way).
          Array.prototype.forEach.call(el.files, function (f) {
            data.append(el.name, f, el.name === "folder" && f.webkitRelativePath ? f.webkitRelativePath : f.name);
          });
        } else if ((el.tagName === "SELECT" || el.tagName === "INPUT" || el.tagName === "TEXTAREA") && el.value) {
          data.append(el.name, el.value);
        }
      });
      var box = document.getElementById("upload-progress");
      var bar = document.getElementById("upload-bar");
      var status = document.getElementById("upload-status");
      var button = document.getElementById("upload-button");
      box.hidden = false;
      button.disabled = true;
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.upload.addEventListener("progress", function (e) {
        if (!e.lengthComputable) return;
        var pct = Math.floor(100 * e.loaded / e.total);
        bar.value = pct;
        bar.textContent = pct + "%";
        status.textContent = pct < 100 ? "Sent " + pct + "% of " + Math.ceil(e.total / 1e6) + " MB"
                                       : "Sent; the server is checking the files…";
      });
      xhr.addEventListener("load", function () {
        var landed = xhr.responseURL || "";
        if (xhr.status < 400 && landed.indexOf("/me/submissions/") !== -1) {
          window.location.assign(landed);
        } else {
          swapMain(xhr.responseText);
        }
      });
      xhr.addEventListener("error", function () {
        box.hidden = true;
        button.disabled = false;
        status.textContent = "";
        var main = document.getElementById("main");
        var p = document.createElement("p");
        p.className = "notice error";
        p.setAttribute("role", "alert");
        p.textContent = "The upload did not reach the server (connection lost). Nothing was stored; try again.";
        main.insertBefore(p, main.firstChild);
      });
      xhr.send(data);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
