// Follows one investigation's progress stream and appends each step; reloads once it finishes to show the report.
(function () {
  "use strict";
  var list = document.getElementById("progress");
  if (!list || !window.EventSource) return;
  var wasFinished = list.dataset.finished === "true";
  var source = new EventSource(list.dataset.eventsUrl);
  source.onopen = function () { list.dataset.live = "open"; };
  source.onerror = function () { list.dataset.live = "reconnecting"; };

  function hhmmss(iso) {
    var d = new Date(iso);
    return isNaN(d) ? "" : d.toISOString().slice(11, 19);
  }

  function part(tag, cls, text) {
    var el = document.createElement(tag);
    if (cls) el.className = cls;
    el.textContent = text;
    return el;
  }

  source.addEventListener("progress", function (e) {
    var ev = JSON.parse(e.data);
    if (document.getElementById("ev-" + ev.id)) return;
    var item = document.createElement("li");
    item.id = "ev-" + ev.id;
    item.className = ev.milestone ? "milestone fresh" : "fresh";
    var time = part("time", "", hhmmss(ev.at));
    time.setAttribute("datetime", ev.at);
    item.appendChild(time);
    item.appendChild(part("span", "stage", ev.stage));
    item.appendChild(part("span", "msg", ev.message));
    list.appendChild(item);
    var empty = document.getElementById("progress-empty");
    if (empty) empty.remove();
  });

  source.addEventListener("status", function (e) {
    var st = JSON.parse(e.data);
    source.close();
    list.dataset.live = "closed";
    var badge = document.getElementById("status-badge");
    if (badge) {
      badge.textContent = st.status;
      badge.className = "badge s-" + st.status;
    }
    if (!wasFinished) setTimeout(function () { window.location.reload(); }, 1200);
  });
})();
