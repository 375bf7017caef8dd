/*
 * Conduit's only script. The pages work without it; it adds:
 *
 * 1. window.__conduit_debug__ (getToken / getAuthState / getCurrentUser), from
 *    the server's view of the logged-in user, which the layout puts in
 *    <script type="application/json" id="conduit-state">; the token is also
 *    kept in localStorage["jwtToken"] as the RealWorld contract asks.
 * 2. The editor's tag input: Enter (or a comma) turns what was typed into a
 *    pill, and the pill's x removes it. Without the script, tags are typed
 *    comma-separated and a pill's x unticks its hidden checkbox (CSS hides it).
 */
(function () {
  "use strict";

  function readState() {
    var node = document.getElementById("conduit-state");
    if (!node) { return { user: null }; }
    try { return JSON.parse(node.textContent) || { user: null }; } catch (e) { return { user: null }; }
  }

  var user = readState().user || null;

  window.__conduit_debug__ = {
    getToken: function () { return user ? user.token : null; },
    getAuthState: function () { return user ? "authenticated" : "unauthenticated"; },
    getCurrentUser: function () {
      if (!user) { return null; }
      return { username: user.username, email: user.email, bio: user.bio, image: user.image, token: user.token };
    }
  };

  try {
    if (user) { window.localStorage.setItem("jwtToken", user.token); }
    else { window.localStorage.removeItem("jwtToken"); }
  } catch (e) { /* storage disabled: nothing to keep in sync */ }

  function pill(name) {
    var label = document.createElement("label");
    label.className = "tag-default tag-pill";
    var box = document.createElement("input");
    box.type = "checkbox";
    box.name = "tagList";
    box.value = name;
    box.checked = true;
    box.hidden = true;
    var icon = document.createElement("i");
    icon.className = "ion-close-round";
    icon.title = "Remove " + name;
    label.appendChild(box);
    label.appendChild(icon);
    label.appendChild(document.createTextNode(" " + name));
    return label;
  }

  function enhanceTags(input) {
    var form = input.form;
    var list = form && form.querySelector("[data-tag-list]");
    if (!list) { return; }

    function present() {
      return Array.prototype.map.call(
        list.querySelectorAll('input[name="tagList"]:checked'),
        function (box) { return box.value; }
      );
    }

    function addTyped() {
      var have = present();
      input.value.split(",").forEach(function (raw) {
        var name = raw.trim();
        if (name && have.indexOf(name) === -1) {
          list.appendChild(pill(name));
          have.push(name);
        }
      });
      input.value = "";
    }

    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === ",") {
        event.preventDefault();
        addTyped();
      }
    });
    list.addEventListener("click", function (event) {
      var icon = event.target.closest ? event.target.closest(".ion-close-round") : null;
      if (!icon) { return; }
      event.preventDefault();
      var tag = icon.closest(".tag-pill");
      if (tag) { tag.parentNode.removeChild(tag); }
    });
  }

  function ready() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-tag-input]"), enhanceTags);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }

  /* 3. Export progress: poll the job's JSON status and move the bar; without
   *    the script the page offers a "Refresh" link instead. */
  var job = document.querySelector("[data-job-status-url]");
  if (job && window.fetch) {
    var url = job.getAttribute("data-job-status-url");
    var poll = function () {
      fetch(url, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          var j = data.job;
          job.querySelector(".export-progress").value = j.progress;
          job.querySelector(".export-percent").textContent = j.progress;
          job.querySelector(".export-state").textContent = j.status;
          if (j.error) {
            var e = job.querySelector(".export-error");
            e.textContent = j.error;
            e.hidden = false;
          }
          if (j.downloadUrl) {
            var d = job.querySelector(".export-download");
            d.querySelector("a").href = j.downloadUrl;
            d.hidden = false;
          }
          var refresh = job.querySelector(".export-refresh");
          if (j.done && refresh) { refresh.hidden = true; }
          if (!j.done) { window.setTimeout(poll, 1000); }
        })
        .catch(function () { window.setTimeout(poll, 3000); });
    };
    window.setTimeout(poll, 500);
  }
})();
